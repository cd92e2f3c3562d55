"""(n) The Keras layers in a user's `tf.data` pipeline, against what a Keras
user would write instead, in the same map and the same process.

Each measure maps a repeated batch of 32 images of 224 px (cut from the
sources: generated scenes, or camera originals with `--sources`) with
`Dataset.map(fn, num_parallel_calls=AUTOTUNE)`, and counts images per second:

  (n1) `RandomJpegQuality(quality_range=(50, 100))` against
       `tf.image.random_jpeg_quality(image, 50, 100)` on each image of the
       batch (TensorFlow's own, with the fast, inexact IDCT), cast to float32
       as the layer returns. The accurate IDCT that makes the layer exact
       costs a little: the goal is 0.9 of the baseline.
  (n2) The same, then a 64 px crop: `GridCrop(64, mode="random",
       chain="jpeg:50..100")`, which saves only the MCUs around each crop,
       against the baseline then `keras.layers.RandomCrop(64, 64)`. Goal: faster.
  (n3) A chain: `ProcessingChain("resize:160x160>blur:0..2@0.5>jpeg:65..100")`
       (Pillow's resize, scipy's blur, libjpeg) against Keras's
       `Resizing(160, 160, "bicubic", antialias=True)`, `RandomGaussianBlur`
       (a 17-tap kernel, scipy's reach at sigma 2) and the baseline's JPEG, in
       the same map. Goal: at least as fast, while exact.

The ratio of each is the layer's rate over the baseline's, the median of
`repeats` runs, the two measured one after the other in each run.
"""

import time

import numpy as np

GOALS = {"layer_jpeg/tf": 0.9, "layer_jpeg_crop/tf": 1.0, "layer_chain/keras": 1.0}
BATCH = 32
SIDE = 224


def batch_of(paths, count=BATCH, side=SIDE):
  """`count` images of `side` px cut from the files of `paths` (centre and
  corner tiles of each, in turn), as one uint8 batch."""
  import cv2  # pylint: disable=g-import-not-at-top

  tiles = []
  while len(tiles) < count:
    for path in paths:
      image = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]
      height, width = image.shape[:2]
      if min(height, width) < side:
        continue
      for y, x in (
        ((height - side) // 2, (width - side) // 2),
        (0, 0),
        (height - side, width - side),
      ):
        tiles.append(image[y : y + side, x : x + side])
      if len(tiles) >= count:
        break
    if not tiles:
      raise ValueError(f"no source is {side} px on each side")
  return np.ascontiguousarray(np.stack(tiles[:count]))


def images_per_second(batch, fn, seconds):
  """Images per second out of `Dataset.map(fn)` over `batch`, repeated."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  dataset = (
    tf.data.Dataset.from_tensors(tf.constant(batch))
    .repeat()
    .map(fn, num_parallel_calls=tf.data.AUTOTUNE)
    .prefetch(2)
  )
  batches = iter(dataset)
  next(batches)  # traced and warm
  done, started = 0, time.perf_counter()
  while time.perf_counter() - started < seconds:
    next(batches)
    done += 1
  return done * len(batch) / (time.perf_counter() - started)


def contenders():
  """{measure: (the layer's map function, the baseline's)}."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from tfjpeg import layers  # pylint: disable=g-import-not-at-top

  def tf_jpeg(images, low=50, high=100):
    saved = tf.map_fn(lambda image: tf.image.random_jpeg_quality(image, low, high), images)
    return tf.cast(tf.ensure_shape(saved, images.shape), tf.float32)  # it loses the shape

  keras_crop = keras.layers.RandomCrop(64, 64, seed=0)
  keras_resize = keras.layers.Resizing(160, 160, interpolation="bicubic", antialias=True)
  keras_blur = keras.layers.RandomGaussianBlur(
    factor=(0.5, 0.5), kernel_size=17, sigma=(0.0, 2.0), seed=0
  )

  def keras_chain(images):
    blurred = keras_blur(keras_resize(images))
    pixels = tf.cast(tf.clip_by_value(tf.round(blurred), 0, 255), tf.uint8)
    return tf_jpeg(pixels, 65, 100)

  return {
    "jpeg": (layers.RandomJpegQuality(quality_range=(50, 100), seed=0), tf_jpeg),
    "jpeg_crop": (
      layers.GridCrop(64, mode="random", chain="jpeg:50..100", seed=0),
      lambda images: keras_crop(tf_jpeg(images)),
    ),
    "chain": (
      layers.ProcessingChain("resize:160x160>blur:0..2@0.5>jpeg:65..100", seed=0),
      keras_chain,
    ),
  }


NAMES = {
  "jpeg": ("(n1) RandomJpegQuality", "(n1) tf.image.random_jpeg_quality", "layer_jpeg/tf"),
  "jpeg_crop": (
    "(n2) GridCrop through jpeg:50..100",
    "(n2) random_jpeg_quality, RandomCrop",
    "layer_jpeg_crop/tf",
  ),
  "chain": (
    "(n3) ProcessingChain resize>blur>jpeg",
    "(n3) Keras Resizing, RandomGaussianBlur, random_jpeg_quality",
    "layer_chain/keras",
  ),
}


def measure(report, sets, seconds, step, repeats=1):
  """(n1)-(n3) on each of `sets` ({name: paths}), in `report`."""
  pairs = contenders()
  for name, paths in sets.items():
    batch = batch_of(paths)
    for key, (ours, theirs) in pairs.items():
      ratios, rates = [], []
      for _ in range(repeats):
        rates.append(
          (images_per_second(batch, ours, seconds), images_per_second(batch, theirs, seconds))
        )
        ratios.append(rates[-1][0] / rates[-1][1])
      step()
      mine, baseline, goal_key = NAMES[key]
      report.add(f"{mine}, {name}", float(np.median([r[0] for r in rates])), "images/s")
      report.add(f"{baseline}, {name}", float(np.median([r[1] for r in rates])), "images/s")
      if repeats > 1:
        report.add(f"(n) runs' ratios {goal_key}, {name}", float(np.min(ratios)), "lowest")
      report.ratio(f"{goal_key} on {name}", float(np.median(ratios)), goal_key, GOALS)
