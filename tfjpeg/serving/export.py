"""SavedModel export with the evaluation's preprocessing: usable without tfjpeg.

Three signatures:
  serve_patches(patches: uint8 [N, H, W, 3]) -> {"probabilities": [N, C]}
  serve_bytes(encoded: string []) -> {"probabilities": [C], "log_probabilities": [C],
      "class_names": [C], "num_patches": [], "offsets": [P, 2]}
  metadata() -> {"class_names": [C], "patch_size": []}
`serve_bytes` decodes exactly (accurate IDCT), tiles the image with
non-overlapping patches aligned to the JPEG grid from the top-left pixel,
averages the patches' log-probabilities, and normalises them.
"""

import os

import keras
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.codec import images
from tfjpeg.core import runlock
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import MissingError
from tfjpeg.serving import classifier
from tfjpeg.serving import onnx_model


def grid_tiles(image, patch_size):
  """Non-overlapping patches from the top-left (aligned when patch_size % 8 == 0)."""
  shape = tf.shape(image)
  rows, cols = shape[0] // patch_size, shape[1] // patch_size
  check = tf.debugging.Assert(
    tf.logical_and(rows > 0, cols > 0),
    ["image smaller than the patch: image shape", shape, "patch", patch_size],
  )
  with tf.control_dependencies([check]):
    tiles = image[: rows * patch_size, : cols * patch_size]
  tiles = tf.reshape(tiles, [rows, patch_size, cols, patch_size, 3])
  tiles = tf.reshape(tf.transpose(tiles, [0, 2, 1, 3, 4]), [-1, patch_size, patch_size, 3])
  grid = tf.stack(tf.meshgrid(tf.range(rows), tf.range(cols), indexing="ij"), -1)
  return tiles, tf.reshape(grid, [-1, 2]) * patch_size


def export(model, class_names, patch_size, path):
  """Writes `model` as a SavedModel at `path` with both signatures."""
  names = tf.constant(list(class_names))
  archive = keras.export.ExportArchive()
  archive.track(model)

  def serve_patches(patches):
    return {"probabilities": model(tf.cast(patches, tf.float32), training=False)}

  def serve_bytes(encoded):
    tiles, offsets = grid_tiles(images.decode_native(encoded), patch_size)
    probabilities = model(tf.cast(tiles, tf.float32), training=False)
    log_probabilities = tf.reduce_mean(tf.math.log(tf.maximum(probabilities, 1e-12)), 0)
    return {
      "probabilities": tf.nn.softmax(log_probabilities),
      "log_probabilities": log_probabilities,
      "class_names": names,
      "num_patches": tf.shape(tiles)[0],
      "offsets": offsets,
    }

  archive.add_endpoint(
    "serve_patches",
    serve_patches,
    input_signature=[tf.TensorSpec([None, patch_size, patch_size, 3], tf.uint8, name="patches")],
  )
  archive.add_endpoint(
    "serve_bytes", serve_bytes, input_signature=[tf.TensorSpec([], tf.string, name="encoded")]
  )
  # What a user of the SavedModel alone needs to cut patches and name classes.
  archive.add_endpoint(
    "metadata",
    lambda: {"class_names": names, "patch_size": tf.constant(patch_size)},
    input_signature=[],
  )
  archive.write_out(path, verbose=False)
  return path


FORMATS = ("savedmodel", "onnx")
# What the nets of this project take and give, for an ONNX file's metadata.
RUN_PREPROCESSING = dict(input="patches", layout="nhwc", scale="0..255", outputs="probabilities")


def export_onnx(model, class_names, patch_size, path, run_config=None):
  """Writes `model` as an ONNX file at `path` (Keras's own export, through
  tf2onnx): float32 [N, P, P, 3] patches at 0..255 in, probabilities out,
  with tfjpeg's metadata (`tfjpeg.serving.onnx_model.write_metadata`)."""
  try:
    import onnx  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
    import tf2onnx  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise MissingError("writing ONNX needs onnx and tf2onnx: pip install 'tfjpeg[onnx]'") from None
  model(tf.zeros([1, patch_size, patch_size, 3]), training=False)  # Keras exports called models
  model.export(path, format="onnx", verbose=False)
  onnx_model.write_metadata(path, class_names, patch_size, RUN_PREPROCESSING, run_config)
  return path


def export_run(workdir: str, path: str | None = None, file_format: str = "savedmodel") -> str:
  """Exports the selected weights of the run in `workdir` (to workdir/export,
  or workdir/model.onnx, by default), from the run directory alone: no
  dataset is read. `file_format` is "savedmodel" (with the signatures of
  `export`) or "onnx" (`export_onnx`, carrying the run's config, so that
  `bin/report` of the file tests it as `bin/report` of the run does). Holds
  the run directory's lock, as training does: a run being trained is refused."""
  if file_format not in FORMATS:
    raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {file_format!r}")
  with runlock.hold(workdir, create=False):
    about, model = classifier.load_model(workdir)
    if file_format == "onnx":
      run_config = config_lib.saved(workdir).to_json()
      return export_onnx(
        model,
        about["class_names"],
        about["patch_size"],
        path or os.path.join(workdir, "model.onnx"),
        run_config,
      )
    return export(
      model, about["class_names"], about["patch_size"], path or os.path.join(workdir, "export")
    )
