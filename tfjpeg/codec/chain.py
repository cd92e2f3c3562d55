"""Applying a processing chain (tfjpeg.codec.chains) to a whole image, on the graph.

    image, record = apply(image, chains.parse("resize:0.5>jpeg:75"), seed)

`record` says what was drawn (`chains.draw_columns` names its entries) and
where the grid of the last compression lies in the result: after a JPEG it
starts at the top-left pixel; a later crop moves it (aligned patches then
follow it, `record["grid_origin"]`); a later resize leaves no grid, and the
origin goes back to (0, 0), where a later save would put it.

Every step runs eagerly, under `tf.function` and inside `Dataset.map`; every
draw is a stateless function of `seed` and the step's place in the chain.
"""

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfjpeg.codec import chains
from tfjpeg.codec import jpeg
from tfjpeg.codec import resample
from tfjpeg.core import seeds

TensorLike = Any

# Grid origins are kept modulo the largest MCU (16), which holds the 8x8 grid.
_GRID = 16


def _coin(step, seed):
  if step.probability >= 1.0:
    return tf.constant(True)
  return tf.random.stateless_uniform([], seed, dtype=tf.float32) < step.probability


def draw(value: chains.Value, seed: TensorLike, whole: bool) -> tf.Tensor:
  """A draw of `value`: itself when fixed, uniform in its range (whole
  numbers: each equally likely), or one of its choices."""
  if value.choices:
    pick = tf.random.stateless_uniform(
      [], seed, minval=0, maxval=len(value.choices), dtype=tf.int32
    )
    out = tf.gather(tf.constant(value.choices, tf.float64), pick)
  elif value.high is None:
    out = tf.constant(value.low, tf.float64)
  elif whole:
    out = tf.cast(
      tf.random.stateless_uniform(
        [], seed, minval=int(value.low), maxval=int(value.high) + 1, dtype=tf.int32
      ),
      tf.float64,
    )
  else:
    unit = tf.random.stateless_uniform([], seed, dtype=tf.float64)
    out = value.low + unit * (value.high - value.low)
  return out


def _resize_size(image, step, seed):
  """The size a resize step draws for `image`."""
  if step.size is not None:
    height_seed, width_seed = seeds.split(seed, 2)
    return tf.stack(
      [
        tf.cast(draw(step.size[0], height_seed, True), tf.int32),
        tf.cast(draw(step.size[1], width_seed, True), tf.int32),
      ]
    )
  return resample.scaled_size(tf.shape(image)[:2], draw(step.factor, seed, False))


def _resize(image, size, kernel):
  if kernel != "auto":
    return resample.resize(image, size, kernel)
  # Corvi et al.'s choice: Pillow's antialiasing Lanczos to shrink, bicubic to enlarge.
  return tf.cond(
    tf.reduce_any(size < tf.shape(image)[:2]),
    lambda: resample.resize(image, size, "lanczos"),
    lambda: resample.resize(image, size, "bicubic"),
  )


def _crop_window(image, step, seed):
  """(offset, size) of a crop step's window: a square's side drawn in its
  range cut to the image's smaller side, or a drawn HxW cut to the image;
  the position uniform over the places it fits."""
  side_seed, width_seed, y_seed, x_seed = seeds.split(seed, 4)
  image_size = tf.shape(image)[:2]
  height, width = step.size
  if height == width and height.high is not None:
    smallest = tf.reduce_min(image_size)
    low = tf.minimum(int(height.low), smallest)
    high = tf.maximum(tf.minimum(int(height.high), smallest), low)
    side = tf.random.stateless_uniform([], side_seed, minval=low, maxval=high + 1, dtype=tf.int32)
    size = tf.stack([side, side])
  elif height == width:
    side = tf.cast(draw(height, side_seed, True), tf.int32)
    size = tf.stack([side, side])
  else:
    size = tf.stack(
      [
        tf.cast(draw(height, side_seed, True), tf.int32),
        tf.cast(draw(width, width_seed, True), tf.int32),
      ]
    )
  size = tf.minimum(size, image_size)
  room = image_size - size + 1
  y = tf.random.stateless_uniform([], y_seed, minval=0, maxval=room[0], dtype=tf.int32)
  x = tf.random.stateless_uniform([], x_seed, minval=0, maxval=room[1], dtype=tf.int32)
  return tf.stack([y, x]), size


def _step(image, step, applied, seed, origin, chroma):
  """One drawn step where `applied`: (image, grid origin, values drawn)."""
  if step.name == "jpeg":
    quality = tf.where(applied, tf.cast(draw(step.quality, seed, True), tf.int32), 0)
    return jpeg.compress_if(image, quality, chroma), tf.zeros([2], tf.int32), [quality]
  if step.name == "blur":
    sigma = step.sigma.low if step.sigma.fixed else draw(step.sigma, seed, False)
    blurred = tf.cond(applied, lambda: resample.gaussian_blur(image, sigma), lambda: image)
    return blurred, origin, [sigma]  # a blur keeps the blocks where they were
  if step.name == "resize":
    size = _resize_size(image, step, seed)
    resized = tf.cond(applied, lambda: _resize(image, size, step.kernel), lambda: image)
    # No grid survives a resize; a later save starts one at the top-left.
    return resized, tf.zeros([2], tf.int32), [size[0], size[1]]
  offset, size = _crop_window(image, step, seed)
  cropped = tf.slice(image, tf.concat([offset, [0]], 0), tf.concat([size, [-1]], 0))
  cropped = tf.cond(applied, lambda: cropped, lambda: image)
  return cropped, (origin - offset) % _GRID, [offset[0], offset[1], size[0], size[1]]


def apply(
  image: TensorLike,
  chain: chains.Chain | Sequence[chains.Step],
  seed: TensorLike,
  chroma: str = "4:2:0",
) -> tuple[tf.Tensor, dict]:
  """`image` (uint8 HxWx3) put through the steps of `chain`, in order.

  Step k draws from `seeds.for_example(seed, k)`. A jpeg step with `given`
  (the pipeline's own: a lattice QF, a double compression's first save, a
  swap) saves at that QF, a Python int or an int32 tensor with 0 for none.

  Returns:
    (image, record): record["draws"] is a float64 vector, one entry per name
    of `chains.draw_columns`; record["grid_origin"] the (y, x) of the last
    compression's grid in the result, modulo 16.

  Examples:
    >>> image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)
    >>> chain = tfjpeg.codec.chains.parse("resize:0.5>jpeg:75")
    >>> out, record = tfjpeg.codec.chain.apply(image, chain, seed=(0, 1))
    >>> out.shape, [float(v) for v in record["draws"]]
    (TensorShape([32, 48, 3]), [1.0, 32.0, 48.0, 1.0, 75.0])
  """
  steps = chain.steps if isinstance(chain, chains.Chain) else tuple(chain)
  image = tf.convert_to_tensor(image)
  origin = tf.zeros([2], tf.int32)
  draws = []
  for number, step in enumerate(steps):
    step_seed = seeds.for_example(seed, number)
    coin_seed, value_seed = seeds.split(step_seed, 2)
    if step.name == "jpeg" and step.given is not None:
      # The pipeline's own saves keep the exact ops they always had.
      if isinstance(step.given, int):
        image = jpeg.compress(image, step.given, chroma)
        origin = tf.zeros([2], tf.int32)
      else:
        image = jpeg.compress_if(image, step.given, chroma)
        origin = tf.where(step.given > 0, tf.zeros([2], tf.int32), origin)
      applied = tf.cast(step.given, tf.float64) > 0
      draws += [tf.cast(applied, tf.float64), tf.cast(step.given, tf.float64)]
      continue
    applied = _coin(step, coin_seed)
    image, new_origin, values = _step(image, step, applied, value_seed, origin, chroma)
    origin = tf.where(applied, new_origin, origin)
    draws += [tf.cast(applied, tf.float64)] + [
      tf.where(applied, tf.cast(v, tf.float64), tf.constant(0.0, tf.float64)) for v in values
    ]
  image.set_shape([None, None, 3])
  record = dict(
    draws=tf.stack(draws) if draws else tf.zeros([0], tf.float64),
    grid_origin=origin,
  )
  return image, record
