"""An ONNX classifier run with onnxruntime: the form PyTorch detectors are
exchanged in (`torch.onnx.export`), and the form `bin/export --format=onnx`
writes tfjpeg's own runs in.

The file's single input is read for its layout (a dimension of 3 second:
NCHW, last: NHWC), its fixed height and width, its fixed batch size if it
has one (a model exported with a dummy batch of 1 is run one image at a
time) and its element type. Class names, patch size and preprocessing come
from the file's metadata when tfjpeg wrote it (`METADATA`), else from the
caller (`tfjpeg.serving.classifier.Preprocessing`).
"""

import json
import os
from collections.abc import Sequence

import numpy as np

from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import MissingError

# The metadata keys tfjpeg writes into the ONNX files it exports.
METADATA = "tfjpeg"  # JSON: class_names, patch_size, preprocessing
_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}


def _session(path):
  try:
    import onnxruntime  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise MissingError(
      f"{path} is an ONNX model: install onnxruntime (pip install 'tfjpeg[onnx]') to run it"
    ) from None
  available = onnxruntime.get_available_providers()
  # A GPU where onnxruntime has one; the CPU always, last.
  providers = [p for p in ("CUDAExecutionProvider",) if p in available] + ["CPUExecutionProvider"]
  try:
    return onnxruntime.InferenceSession(path, providers=providers)
  except Exception as e:  # onnxruntime's own error types: a file it cannot read
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise ConfigError(f"{path} is not an ONNX model onnxruntime can run ({first})") from None


class OnnxModel:
  """An ONNX file as a function of a batch laid out as it asks (float or
  uint8, NCHW or NHWC) to its first output, as a float32 [N, K] array."""

  def __init__(self, path: str):
    if not os.path.isfile(path):
      raise MissingError(f"no ONNX model at {path}")
    self.path = path
    self.session = _session(path)
    inputs = self.session.get_inputs()
    if len(inputs) != 1:
      names = ", ".join(i.name for i in inputs)
      raise ConfigError(f"{path} takes {len(inputs)} inputs ({names}); an image batch alone is run")
    self.input = inputs[0]
    if len(self.input.shape) != 4:
      raise ConfigError(
        f"{path} takes a rank-{len(self.input.shape)} input {self.input.shape}; "
        "an image batch [N, C, H, W] or [N, H, W, C] is run"
      )
    if self.input.type not in _TYPES:
      raise ConfigError(f"{path} takes {self.input.type} inputs; float, float16 or uint8 is run")
    self.dtype = _TYPES[self.input.type]
    self.output = self.session.get_outputs()[0].name
    meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA)
    try:
      self.metadata = json.loads(meta) if meta else {}
    except ValueError:
      raise ConfigError(f"{path}: its {METADATA} metadata is not JSON") from None

  @staticmethod
  def _fixed(dim):
    return dim if isinstance(dim, int) and dim > 0 else None

  @property
  def layout(self) -> str | None:
    """ "nchw" or "nhwc" from where a dimension of 3 sits; None if neither or both."""
    shape = [self._fixed(d) for d in self.input.shape]
    first, last = shape[1] == 3, shape[3] == 3
    return "nchw" if first and not last else "nhwc" if last and not first else None

  def size(self, layout: str) -> tuple[int | None, int | None]:
    """The fixed (height, width) of the input, None where it is free."""
    shape = [self._fixed(d) for d in self.input.shape]
    return (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])

  @property
  def batch(self) -> int | None:
    """The fixed batch size, None where any batch is taken."""
    return self._fixed(self.input.shape[0])

  def outputs_for(self, layout: str, size: int) -> int:
    """How many values the model gives per image (one batch of zeros run)."""
    return int(self(np.zeros(self._shape(layout, size), self.dtype)).shape[-1])

  def _shape(self, layout, size):
    batch = self.batch or 1
    return (batch, 3, size, size) if layout == "nchw" else (batch, size, size, 3)

  def __call__(self, batch: np.ndarray) -> np.ndarray:
    """The first output for `batch`, [N, K] float32 (a [N] output as [N, 1])."""
    batch = np.asarray(batch, self.dtype)
    step = self.batch or len(batch) or 1
    outputs = []
    for start in range(0, len(batch), step):
      chunk = batch[start : start + step]
      missing = step - len(chunk) if self.batch else 0
      if missing:  # a fixed batch size: the last chunk padded, the padding dropped
        chunk = np.concatenate([chunk, np.zeros((missing,) + chunk.shape[1:], chunk.dtype)])
      (out,) = self.session.run([self.output], {self.input.name: chunk})
      out = np.asarray(out, np.float32).reshape(len(chunk), -1)
      outputs.append(out[: len(chunk) - missing])
    if not outputs:
      return np.zeros((0, 1), np.float32)
    return np.concatenate(outputs)


def write_metadata(
  path: str,
  class_names: Sequence[str],
  patch_size: int,
  preprocessing: dict,
  run_config: str | None = None,
):
  """Adds tfjpeg's metadata (`METADATA`) to the ONNX file at `path`: class
  names, patch size, preprocessing, and the config of the run it was
  exported from (its config.json text), so that a report of the file tests
  it on the run's own test split, as a report of the run does."""
  import onnx  # pylint: disable=g-import-not-at-top

  model = onnx.load(path)
  value = json.dumps(
    dict(
      class_names=list(class_names),
      patch_size=int(patch_size),
      preprocessing=preprocessing,
      run_config=run_config,
    )
  )
  kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA]
  del model.metadata_props[:]
  for key, text in kept + [(METADATA, value)]:
    model.metadata_props.add(key=key, value=text)
  onnx.save(model, path)
