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

from tfjpeg.codec import images
from tfjpeg.core import runlock
from tfjpeg.serving import classifier


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


def export_run(workdir: str, path: str | None = None) -> str:
  """Exports the selected weights of the run in `workdir` (to workdir/export by
  default), from the run directory alone: no dataset is read. Holds the run
  directory's lock, as training does: a run being trained is refused."""
  with runlock.hold(workdir, create=False):
    about, model = classifier.load_model(workdir)
    return export(
      model, about["class_names"], about["patch_size"], path or os.path.join(workdir, "export")
    )
