"""A trained classifier in any of its forms, as one object: class names, patch
size, and the probabilities of uint8 RGB patches.

`load(path)` takes
  - a run directory of this project (its run.json and selected weights);
  - a SavedModel exported by `tfjpeg.serving.export` (its `metadata` and
    `serve_patches` signatures);
  - any other SavedModel whose serving signature maps [N, H, W, 3] patches to
    class probabilities, or any `.keras` file that does;
  - an `.onnx` file (`tfjpeg.serving.onnx_model`, run with onnxruntime): a
    PyTorch detector as its users export it, or a run `bin/export --format=onnx`
    wrote;
with the class names and patch size from the model's own metadata when it has
them, else from the arguments (flags). `Preprocessing` says how uint8 RGB
images become the model's input (layout, scale, mean and std; patches, or
the whole image resized or centre-cropped to the input size, as the
detector's authors test it) and how its outputs become probabilities (a
softmax of logits; a single logit's sigmoid as the second class, "fake").
"""

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import MissingError
from tfjpeg.data import tasks
from tfjpeg.models import nets
from tfjpeg.serving import onnx_model
from tfjpeg.train import rundir

# How a model takes an image: patches cut by the caller (tfjpeg's own), or
# the whole image resized to its input size, or centre-cropped to it
# (torchvision's CenterCrop: padded with black where the image is smaller).
INPUTS = ("patches", "resize", "centre_crop")
LAYOUTS = ("nhwc", "nchw")
SCALES = ("0..255", "0..1")
OUTPUTS = ("probabilities", "logits")
RESIZE_KERNELS = ("bilinear", "bicubic", "lanczos", "box", "hamming")
# torchvision's ImageNet normalisation, in units of the 0..1 scale.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# A one-output detector's classes: its score is of the second.
ONE_SCORE_NAMES = ("real", "fake")


def _channels(values, what):
  if values in ("imagenet", ("imagenet",), ["imagenet"]):
    return IMAGENET_MEAN if what == "mean" else IMAGENET_STD
  if isinstance(values, (int, float)) and not isinstance(values, bool):
    values = (values,)  # one number for every channel
  try:
    numbers = tuple(float(v) for v in values)
  except (TypeError, ValueError):
    raise ConfigError(f"{what}: {values!r} is not three numbers or 'imagenet'") from None
  if len(numbers) not in (0, 1, 3):
    raise ConfigError(f"{what}: give one number or three (R, G, B), not {len(numbers)}")
  return numbers * 3 if len(numbers) == 1 else numbers


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """How uint8 RGB images become a model's input, and its outputs class
  probabilities. None: the model's own (its metadata; an ONNX file's input
  layout; else 0..255 NHWC probabilities for Keras and SavedModel forms,
  0..1 logits for ONNX files, PyTorch's convention)."""

  input: str | None = None  # INPUTS; patches by default
  layout: str | None = None  # LAYOUTS
  scale: str | None = None  # SCALES
  mean: tuple = ()  # per channel, in the scale's units; () none
  std: tuple = ()
  kernel: str = "bilinear"  # of input "resize" (Pillow's, as torchvision's on PIL images)
  outputs: str | None = None  # OUTPUTS

  def __post_init__(self):
    for name, allowed in (
      ("input", INPUTS),
      ("layout", LAYOUTS),
      ("scale", SCALES),
      ("outputs", OUTPUTS),
      ("kernel", RESIZE_KERNELS),
    ):
      value = getattr(self, name)
      if value is not None and value not in allowed:
        raise ConfigError(f"{name}: {value!r} is none of {', '.join(allowed)}")
    object.__setattr__(self, "mean", _channels(self.mean, "mean"))
    object.__setattr__(self, "std", _channels(self.std, "std"))
    if bool(self.mean) != bool(self.std):
      raise ConfigError("give mean and std together (or 'imagenet' for both)")
    if any(v <= 0 for v in self.std):
      raise ConfigError(f"std: {self.std} has a value that is not above 0")

  def filled(self, **defaults: Any) -> "Preprocessing":
    """This, with every field left unset (None; no mean and std) set from
    `defaults` (a model's own metadata, then a form's conventions)."""
    changes = {
      k: v
      for k, v in defaults.items()
      if v is not None and v != [] and getattr(self, k) in (None, ())
    }
    return dataclasses.replace(self, **changes)

  def as_dict(self) -> dict:
    return dict(dataclasses.asdict(self), mean=list(self.mean), std=list(self.std))

  @property
  def whole_image(self) -> bool:
    """Whether the model takes whole images (resized or centre-cropped)."""
    return self.input in ("resize", "centre_crop")

  def describe(self, size: int) -> str:
    """In words, for the report."""
    taken = {
      "patches": f"{size}-pixel patches",
      "resize": f"the whole image resized to {size}x{size} ({self.kernel}, Pillow's)",
      "centre_crop": f"the whole image centre-cropped to {size}x{size} (torchvision's)",
    }[self.input or "patches"]
    normalised = f", mean {list(self.mean)} and std {list(self.std)}" if self.mean else ""
    return (
      f"{taken}; {(self.layout or 'nhwc').upper()}, {self.scale or '0..255'}{normalised}; "
      f"outputs {self.outputs or 'probabilities'}"
    )

  def normalise(self, patches: tf.Tensor) -> tf.Tensor:
    """uint8 [N, H, W, 3] patches as the model takes them (float32)."""
    x = tf.cast(patches, tf.float32)
    if self.scale == "0..1":
      x = x / 255.0
    if self.mean:
      x = (x - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)
    return tf.transpose(x, [0, 3, 1, 2]) if self.layout == "nchw" else x

  def probabilities(self, outputs: tf.Tensor) -> tf.Tensor:
    """[N, C] probabilities of the model's [N, K] outputs: a softmax of
    logits; one output is the second class's score (its sigmoid, for a
    logit), the first class getting the rest."""
    outputs = tf.cast(outputs, tf.float32)
    if outputs.shape[-1] == 1:
      score = tf.sigmoid(outputs) if self.outputs == "logits" else outputs
      return tf.concat([1.0 - score, score], -1)
    return tf.nn.softmax(outputs, -1) if self.outputs == "logits" else outputs


@dataclasses.dataclass
class Classifier:
  class_names: list
  patch_size: int
  source: str  # the path loaded
  form: str  # "run", "tfjpeg-savedmodel", "savedmodel", "keras" or "onnx"
  forward: Callable  # uint8 [N, P, P, 3] tensor -> [N, C] probabilities
  keras_model: keras.Model | None = None  # run and .keras forms
  preprocessing: Preprocessing = dataclasses.field(
    default_factory=lambda: Preprocessing(input="patches", layout="nhwc", scale="0..255")
  )
  # The config of the run the model was trained in (a run directory, an ONNX
  # file bin/export wrote): a report tests it on that run's test split.
  run_config: config_lib.Config | None = None

  @property
  def num_classes(self):
    return len(self.class_names)

  def probabilities(self, patches, batch_size=64):
    """[N, C] float probabilities of uint8 patches [N, P, P, 3]."""
    patches = np.asarray(patches)
    if len(patches) == 0:
      return np.zeros((0, self.num_classes), np.float32)
    return np.concatenate(
      [
        np.asarray(self.forward(tf.constant(patches[i : i + batch_size])))
        for i in range(0, len(patches), batch_size)
      ]
    )

  def fingerprint(self):
    """What a report names, so a reader can check the model is the one
    measured (`file_fingerprint`)."""
    return file_fingerprint(self.source)


def file_fingerprint(path):
  """SHA-256 of a model file, or of a folder's model files with their names:
  a run directory's description and selected weights (not its results or
  logs), every file of a SavedModel."""
  if os.path.isfile(path):
    files = [path]
  elif _is_run_directory(path):
    files = [os.path.join(path, rundir.DESCRIPTION), os.path.join(path, rundir.SELECTED_WEIGHTS)]
  else:
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
  digest = hashlib.sha256()
  for name in files:
    digest.update(os.path.relpath(name, path).encode())
    with open(name, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
  return digest.hexdigest()


def _is_run_directory(path):
  return os.path.isdir(path) and os.path.exists(os.path.join(path, rundir.DESCRIPTION))


def _names(class_names, count, source):
  if class_names:
    if len(class_names) != count:
      raise ConfigError(
        f"{source} gives {count} class probabilities but {len(class_names)} "
        f"class names were given ({', '.join(class_names)})"
      )
    return list(class_names)
  return [f"class{k}" for k in range(count)]


def _patch_size(shape, patch_size, source):
  height, width = shape[1], shape[2]
  if height is not None and width is not None:
    if height != width:
      raise ConfigError(f"{source} takes {height}x{width} inputs; only square patches are cut")
    if patch_size and patch_size != height:
      raise ConfigError(f"{source} takes {height}-pixel patches, not {patch_size}")
    return int(height)
  if not patch_size:
    raise ConfigError(
      f"{source} takes inputs of any size: give the side it takes them at (--patch_size)"
    )
  return int(patch_size)


def _keras_defaults(preprocessing):
  return (preprocessing or Preprocessing()).filled(
    input="patches", layout="nhwc", scale="0..255", outputs="probabilities"
  )


def _patches_function(forward, size):
  """`forward` traced once for any number of uint8 `size`x`size` patches: a
  trace per batch size, or one relaxed from the sizes seen first, can differ
  in the last bits, and a file's scores must not depend on which files came
  before it (bin/predict's Beam workers see them in another order)."""
  return tf.function(forward, input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])


def _from_keras(model, source, form, class_names, patch_size, preprocessing=None):
  preprocessing = _keras_defaults(preprocessing)
  count = int(model.output_shape[-1])
  shape = model.input_shape
  if preprocessing.layout == "nchw":
    shape = (shape[0], shape[2], shape[3], shape[1])
  size = _patch_size(shape, patch_size, source)
  forward = _patches_function(
    lambda x: preprocessing.probabilities(model(preprocessing.normalise(x), training=False)), size
  )
  return Classifier(
    _names(class_names, 2 if count == 1 else count, source),
    size,
    source,
    form,
    forward,
    model,
    preprocessing,
  )


def _from_onnx(path, class_names, patch_size, preprocessing=None):
  model = onnx_model.OnnxModel(path)
  meta = model.metadata
  preprocessing = (preprocessing or Preprocessing()).filled(**meta.get("preprocessing", {}))
  if model.dtype == np.uint8:  # the pixels as they are
    if preprocessing.scale == "0..1" or preprocessing.mean:
      raise ConfigError(f"{path} takes uint8 pixels: --scale=0..1, --mean and --std do not apply")
    preprocessing = preprocessing.filled(scale="0..255")
  layout = preprocessing.layout or model.layout
  if layout is None:
    raise ConfigError(
      f"{path} takes {model.input.shape} inputs: say which axis holds the colours (--layout)"
    )
  preprocessing = preprocessing.filled(
    input="patches", layout=layout, scale="0..1", outputs="logits"
  )
  fixed = model.size(layout)
  size = _patch_size((None, *fixed, 3), patch_size or meta.get("patch_size"), path)
  count = model.outputs_for(layout, size)
  names = class_names or meta.get("class_names") or (ONE_SCORE_NAMES if count == 1 else None)

  def run(batch):
    return model(batch)

  def forward(x):
    outputs = tf.numpy_function(run, [preprocessing.normalise(x)], tf.float32, stateful=False)
    outputs.set_shape([None, count])
    return preprocessing.probabilities(outputs)

  run_config = meta.get("run_config")
  return Classifier(
    _names(names, 2 if count == 1 else count, path),
    size,
    path,
    "onnx",
    _patches_function(forward, size),
    None,
    preprocessing,
    config_lib.Config.from_json(run_config) if run_config else None,
  )


def _own_preprocessing(preprocessing, path):
  """tfjpeg's own exported models take uint8 patches as they are: only the
  input (patches, resized or centre-cropped images) is the caller's."""
  defaults = _keras_defaults(None)
  given = preprocessing or Preprocessing()
  asked = [
    name
    for name in ("layout", "scale", "outputs")
    if getattr(given, name) not in (None, getattr(defaults, name))
  ] + (["mean", "std"] if given.mean else [])
  if asked:
    raise ConfigError(
      f"{path} is tfjpeg's own export, which takes uint8 patches: "
      f"--{', --'.join(asked)} do not apply"
    )
  return dataclasses.replace(defaults, input=given.input or "patches", kernel=given.kernel)


def _from_saved_model(path, class_names, patch_size, preprocessing=None):
  module = tf.saved_model.load(path)
  if hasattr(module, "metadata") and hasattr(module, "serve_patches"):  # tfjpeg.serving.export's
    metadata = module.metadata()
    names = [n.decode() for n in metadata["class_names"].numpy()]
    return Classifier(
      names,
      int(metadata["patch_size"]),
      path,
      "tfjpeg-savedmodel",
      lambda x: module.serve_patches(x)["probabilities"],
      None,
      _own_preprocessing(preprocessing, path),
    )
  preprocessing = _keras_defaults(preprocessing)
  if "serving_default" not in module.signatures:
    raise ConfigError(f"{path} is a SavedModel without a serving signature")
  signature = module.signatures["serving_default"]
  ((name, spec),) = signature.structured_input_signature[1].items()
  outputs = signature.structured_outputs
  if len(outputs) != 1:
    raise ConfigError(
      f"{path}'s serving signature has {len(outputs)} outputs "
      f"({', '.join(outputs)}); one of class probabilities is needed"
    )
  ((output, out_spec),) = outputs.items()
  shape = spec.shape.as_list()
  if preprocessing.layout == "nchw":
    shape = [shape[0], shape[2], shape[3], shape[1]]
  size = _patch_size(shape, patch_size, path)

  def forward(x):
    inputs = preprocessing.normalise(x)
    return preprocessing.probabilities(signature(**{name: tf.cast(inputs, spec.dtype)})[output])

  count = int(out_spec.shape[-1])
  return Classifier(
    _names(class_names, 2 if count == 1 else count, path),
    size,
    path,
    "savedmodel",
    forward,
    None,
    preprocessing,
  )


def load(
  path: str,
  class_names: Sequence[str] | None = None,
  patch_size: int | None = None,
  preprocessing: Preprocessing | None = None,
) -> "Classifier":
  """The classifier at `path` (see the module docstring). `patch_size` is the
  model's input size where the model leaves it free; `preprocessing`'s set
  fields override the model's own."""
  if not os.path.exists(path):
    raise MissingError(f"no model at {path}")
  if path.endswith(".onnx"):
    return _from_onnx(path, class_names, patch_size, preprocessing)
  if _is_run_directory(path):
    about, model = load_model(path)
    loaded = _from_keras(
      model, path, "run", about["class_names"], about["patch_size"], preprocessing
    )
    return dataclasses.replace(loaded, run_config=config_lib.saved(path))
  if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
    return _from_saved_model(path, class_names, patch_size, preprocessing)
  if path.endswith(".keras"):
    return _from_keras(
      keras.models.load_model(path, compile=False),
      path,
      "keras",
      class_names,
      patch_size,
      preprocessing,
    )
  raise ConfigError(
    f"{path} is neither a run directory (run.json), a SavedModel (saved_model.pb), "
    "a .keras nor an .onnx file"
  )


def load_model(workdir):
  """(description, Keras model with the run's selected weights), from the run
  directory alone."""
  about = rundir.description(workdir)
  weights = os.path.join(workdir, about["weights"])
  if not os.path.exists(weights):
    raise MissingError(f"{workdir} has no trained weights ({weights}); train it first")
  # Runs described before the setting existed are plain nets.
  model = nets.build(
    about["net"],
    about["patch_size"],
    about["num_classes"],
    antialias=about.get("antialias", "none"),
    antialias_filter=about.get("antialias_filter", 4),
  )
  model.load_weights(weights)
  return about, model


def load_run(workdir: str, **overrides: Any) -> tuple:
  """(config, task, model with its selected weights) of a trained run, to test
  it on its task; `overrides` (None values ignored) change the config, e.g.
  its test conditions."""
  config = config_lib.override(config_lib.saved(workdir), **overrides)
  task = tasks.task_for(config, logging.info)
  about, model = load_model(workdir)
  if list(task.class_names) != about["class_names"] or task.patch_size != about["patch_size"]:
    raise ConfigError(
      f"{workdir} was trained on classes {about['class_names']} at "
      f"{about['patch_size']} px, but its task now has {task.class_names} at "
      f"{task.patch_size} px (has the data folder changed?)"
    )
  return config, task, model
