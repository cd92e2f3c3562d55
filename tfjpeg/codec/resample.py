"""Exact resizing and blurring on the TensorFlow graph.

`resize` reproduces Pillow's `Image.resize` pixel for pixel (bilinear,
bicubic, Lanczos, box, Hamming; antialiased when shrinking, as Pillow does);
`gaussian_blur` reproduces scipy's `ndimage.gaussian_filter` on a uint8 image
(what CNNDetection's blur augmentation calls, channel by channel). Both run
eagerly, under `tf.function` and inside `tf.data.Dataset.map`, on images whose
size is only known at run time, and take their size, factor or sigma as Python
values or tensors (a draw per image).

Why not `tf.image.resize(..., antialias=True)`: against Pillow on a Kodak
photo it is off by up to 7 grey levels shrinking with Lanczos and by 28
enlarging twofold, and a detector tested on images resized "the same way" then
sees a different resampler than the published protocols used.

How Pillow resizes (src/libImaging/Resample.c), and so how this does: one
pass per axis, each rounded to 8 bits: width first, unless the height loses
more than twice as many pixels as the width (Pillow 13's order). Output pixel x of an axis
scaled by s = in/out is centred on (x + 0.5) s; the filter is stretched by
max(s, 1) (its antialiasing when shrinking) and sampled at each input pixel
under its support; the weights, normalised in double precision, become
integers with 22 fraction bits (rounded half away from zero); the sum of
integer products starts at 2^21 and is shifted down by 22, clipped to 0..255.
Here the weights are computed the same way in float64, on the CPU, so they
are the same integers, and each pass is one matrix product over chunks of
rows in float32 (twice the speed of a loop over the taps in TensorFlow ops,
about Pillow's own: docs/detectors.md#speed). float32 rounds the products,
so every sum that lands within float32's error bound of a rounding boundary
is redone in int32 as Pillow does it: under one in a thousand for common
shrinks, a few percent for shrinks by tens, every other pixel for a box
halving of a photo (half levels). The results are Pillow's integers.
"""

import math
import os
from typing import Any

import numpy as np
import tensorflow as tf

# What the ops take: a tensor, or anything tf.convert_to_tensor takes.
TensorLike = Any

# Pillow's fixed point: 32 bits less 8 for the pixel, less 2 for the sign and
# the headroom of negative lobes.
_PRECISION_BITS = 32 - 8 - 2


def _box(x):
  return tf.where(tf.logical_and(x > -0.5, x <= 0.5), tf.ones_like(x), tf.zeros_like(x))


def _bilinear(x):
  x = tf.abs(x)
  return tf.where(x < 1.0, 1.0 - x, tf.zeros_like(x))


_HAMMING_A, _HAMMING_B = float(np.float32(0.54)), float(np.float32(0.46))


def _hamming(x):
  x = tf.abs(x)
  safe = tf.where(tf.equal(x, 0.0), tf.ones_like(x), x)
  # Pillow's constants are C floats: 0.54f and 0.46f.
  value = (
    tf.sin(safe * math.pi) / (safe * math.pi) * (_HAMMING_A + _HAMMING_B * tf.cos(safe * math.pi))
  )
  value = tf.where(tf.equal(x, 0.0), tf.ones_like(x), value)
  return tf.where(x < 1.0, value, tf.zeros_like(x))


_CUBIC_A = -0.5  # Pillow's (and Keys's) bicubic


def _bicubic(x):
  a = _CUBIC_A
  x = tf.abs(x)
  near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
  far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
  return tf.where(x < 1.0, near, tf.where(x < 2.0, far, tf.zeros_like(x)))


def _sinc(x):
  safe = tf.where(tf.equal(x, 0.0), tf.ones_like(x), x) * math.pi
  return tf.where(tf.equal(x, 0.0), tf.ones_like(x), tf.sin(safe) / safe)


def _lanczos(x):
  inside = tf.logical_and(x >= -3.0, x < 3.0)
  return tf.where(inside, _sinc(x) * _sinc(x / 3.0), tf.zeros_like(x))


# name: (filter, support), as Pillow defines them.
KERNELS = {
  "box": (_box, 0.5),
  "bilinear": (_bilinear, 1.0),
  "hamming": (_hamming, 1.0),
  "bicubic": (_bicubic, 2.0),
  "lanczos": (_lanczos, 3.0),
}


def _check_kernel(kernel):
  if kernel not in KERNELS:
    raise ValueError(f"resize kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")


def _coefficients(in_size, out_size, kernel):
  """Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc` for one axis.

  Returns (first, weights, last): for output pixel x, the taps are input
  pixels first[x] + k, k < K, with int32 fixed-point weights[x, k] (0 past
  the support, which ends before last[x]). K is the largest support any
  output pixel has. On the CPU: a GPU's cumulative sum adds in another order."""
  with tf.device("/CPU:0"):
    return _cpu_coefficients(in_size, out_size, kernel)


def _cpu_coefficients(in_size, out_size, kernel):
  function, support = KERNELS[kernel]
  in_size = tf.cast(in_size, tf.float64)
  out_size64 = tf.cast(out_size, tf.float64)
  scale = in_size / out_size64
  stretch = tf.maximum(scale, 1.0)
  reach = support * stretch
  taps = tf.cast(tf.math.ceil(reach), tf.int32) * 2 + 1
  centre = (tf.cast(tf.range(out_size), tf.float64) + 0.5) * scale
  # C's (int) cast truncates towards zero, then Pillow clamps to the image.
  first = tf.maximum(tf.cast(centre - reach + 0.5, tf.int32), 0)
  last = tf.minimum(tf.cast(centre + reach + 0.5, tf.int32), tf.cast(in_size, tf.int32))
  count = last - first
  k = tf.range(taps)
  position = tf.cast(first[:, None] + k[None, :], tf.float64)
  weights = function((position - centre[:, None] + 0.5) * (1.0 / stretch))
  weights = tf.where(k[None, :] < count[:, None], weights, tf.zeros_like(weights))
  # Summed tap after tap, as Pillow's loop does (a tree sum can differ in the
  # last bit): a cumulative sum on the CPU is that sequential sum.
  total = tf.math.cumsum(weights, axis=1)[:, -1:]
  weights = tf.where(tf.equal(total, 0.0), weights, weights / total)
  scaled = weights * float(1 << _PRECISION_BITS)
  # Rounded half away from zero, as Pillow's normalize_coeffs_8bpc.
  fixed = tf.where(scaled < 0.0, -tf.floor(0.5 - scaled), tf.floor(scaled + 0.5))
  return first, tf.cast(fixed, tf.int32), last


_FPMATH_VARIABLES = (
  "ONEDNN_DEFAULT_FPMATH_MODE",
  "DNNL_DEFAULT_FPMATH_MODE",
  "TF_SET_ONEDNN_FPMATH_MODE",
)
# Grappler rewrites that may turn a float32 product into bfloat16 or float16.
_MIXED_PRECISION_REWRITES = (
  "auto_mixed_precision",
  "auto_mixed_precision_mkl",
  "auto_mixed_precision_onednn_bfloat16",
  "auto_mixed_precision_cpu",
)


def _product_dtype():
  """float32, unless oneDNN or a graph rewrite is told to compute float32
  products in fewer bits (bfloat16, TF32), which the error bound does not
  cover: then float64, whose sums of these products are exact."""
  for variable in _FPMATH_VARIABLES:
    if os.environ.get(variable, "STRICT").upper() not in ("", "STRICT"):
      return tf.float64
  options = tf.config.optimizer.get_experimental_options()
  if any(options.get(rewrite) for rewrite in _MIXED_PRECISION_REWRITES):
    return tf.float64
  return tf.float32


def _chunk_products(values, first, weights, dtype):
  """The sums of Pillow's pass in `dtype`, plus the half it rounds with:
  (sums, a row per slot; slot_of_output, output x's row of them).

  The rows are cut into chunks of K (the taps) rows, so that an output's taps
  lie in its chunk and the next: one batched matrix product of each chunk
  with the weights of the outputs that start in it (first half) and of those
  that started in the chunk before (second half)."""
  rows_in, rows_out = tf.shape(values)[0], tf.shape(first)[0]
  width, taps = tf.shape(values)[1], tf.shape(weights)[1]
  chunks = rows_in // taps + 2  # the last output's second chunk exists
  chunk = first // taps  # nondecreasing, as first is
  start = tf.searchsorted(chunk, tf.range(chunks), side="left")
  slot = tf.range(rows_out) - tf.gather(start, chunk)
  slots = tf.reduce_max(slot) + 1
  row = first[:, None] - chunk[:, None] * taps + tf.range(taps)[None, :]  # in [0, 2 taps)
  second = tf.cast(row >= taps, tf.int32)
  at = tf.stack([chunk[:, None] + second, slot[:, None] + slots * second, row - taps * second], -1)
  scaled = tf.cast(weights, dtype) * (1.0 / (1 << _PRECISION_BITS))  # exact: a power of two
  matrices = tf.scatter_nd(
    tf.reshape(at, [-1, 3]), tf.reshape(scaled, [-1]), tf.stack([chunks, 2 * slots, taps])
  )
  padded = tf.pad(values, [[0, chunks * taps - rows_in], [0, 0]])
  sums = tf.linalg.matmul(matrices, tf.reshape(tf.cast(padded, dtype), [chunks, taps, width]))
  # Chunk q's outputs: its rows by the first half, the next chunk's by the second.
  sums = sums[:-1, :slots] + sums[1:, slots:]
  return tf.reshape(sums, [-1, width]) + 0.5, chunk * slots + slot


def _error_bound(weights, dtype):
  """How far a float32 sum of `_chunk_products` can be from the exact one:
  n rounded operations (the nonzero products and their sums, the halves'
  sum, the half) err by at most n u / (1 - n u) times the sum of the sizes
  they add (u = 2^-24, float32's unit roundoff), computed in float64."""
  magnitude = tf.reduce_max(tf.reduce_sum(tf.abs(tf.cast(weights, tf.float64)), 1))
  magnitude = magnitude * 255.0 / (1 << _PRECISION_BITS) + 0.5
  steps = tf.cast(tf.shape(weights)[1] + 2, tf.float64) * 2.0**-24
  return tf.cast(steps / (1.0 - steps) * magnitude, dtype)


def _resample_rows_at(values, first, weights):
  """Pillow's one-axis pass along axis 0 of a 2-D uint8 `values`: output row
  x sums rows first[x] + k with weights[x, k] (int32, 22 fraction bits).

  The sums are a matrix product (`_chunk_products`); every one within
  float32's error bound of a rounding boundary is redone in int32, as Pillow
  sums it. Pinned to the CPU: a GPU would take float32 products in TF32."""
  with tf.device("/CPU:0"):
    dtype = _product_dtype()
    # Rows before the first output's first tap are never read (a window
    # larger than the outputs need): the chunks start there.
    values, first = values[first[0] :], first - first[0]
    sums, slot_of_output = _chunk_products(values, first, weights, dtype)
    rounded = tf.floor(sums)
    bound = _error_bound(weights, dtype)
    # A sum whose floor float32 cannot decide; a padding slot (0.5) never is.
    near = tf.where((sums - rounded < bound) | (sums - rounded > 1.0 - bound))
    rows_in, width = tf.shape(values)[0], tf.shape(values)[1]
    owner = tf.scatter_nd(slot_of_output[:, None], tf.range(tf.shape(first)[0]), tf.shape(sums)[:1])
    output = tf.gather(owner, tf.cast(near[:, 0], tf.int32))
    taps = tf.range(tf.shape(weights)[1])
    tap_rows = tf.minimum(tf.gather(first, output)[:, None] + taps[None, :], rows_in - 1)
    flat = tf.cast(tap_rows, tf.int64) * tf.cast(width, tf.int64) + near[:, 1:]
    taps_values = tf.cast(tf.gather(tf.reshape(values, [-1]), flat), tf.int32)
    exact = tf.reduce_sum(taps_values * tf.gather(weights, output), 1)
    exact = tf.bitwise.right_shift(exact + (1 << (_PRECISION_BITS - 1)), _PRECISION_BITS)
    result = tf.tensor_scatter_nd_update(tf.cast(rounded, tf.int32), near, exact)
    return tf.gather(tf.cast(tf.clip_by_value(result, 0, 255), tf.uint8), slot_of_output)


def resize(image: TensorLike, size: TensorLike, kernel: str = "bicubic") -> tf.Tensor:
  """`image` (uint8 HxWxC) resized to `size` = (height, width) as Pillow's
  `Image.resize((width, height), kernel)` does it, pixel for pixel.

  `kernel` is one of `KERNELS` (bilinear, bicubic, lanczos, box, hamming);
  `size` a pair of Python ints or an int tensor. An axis left at its size is
  not resampled (as in Pillow).

  Examples:
    >>> image = np.random.default_rng(0).integers(0, 256, (60, 90, 3), np.uint8)
    >>> tfjpeg.codec.resample.resize(image, (30, 45), "lanczos").shape
    TensorShape([30, 45, 3])
  """
  _check_kernel(kernel)
  image = tf.convert_to_tensor(image)
  if image.dtype != tf.uint8:
    raise TypeError(f"resize takes uint8 images, got {image.dtype.name}")
  size = tf.cast(tf.convert_to_tensor(size), tf.int32)
  with tf.control_dependencies(
    [tf.debugging.assert_positive(size, message="a resized image needs a positive size")]
  ):
    height, width = tf.identity(size[0]), size[1]
  size = tf.stack([height, width])
  # The whole image is its own window: one code path for both.
  origin = tf.zeros([2], tf.int32)
  out = resize_window(image, origin, tf.shape(image)[:2], size, kernel, origin, size)
  static = tf.get_static_value(size)
  out.set_shape(
    [None if static is None else int(static[0]), None if static is None else int(static[1])]
    + image.shape[2:].as_list()
  )
  return out


def _height_first(image_size, size):
  """Pillow 13 takes the height pass first when the height loses more than
  twice as many pixels as the width does; else the width pass first."""
  lost_rows, lost_columns = image_size[0] - size[0], image_size[1] - size[1]
  return tf.logical_and(lost_rows > 0, lost_rows > 2 * lost_columns)


def _axis_window(in_size, out_size, kernel, start, count):
  """For output pixels [start, start + count) of one axis: (first, weights)
  of their taps, and the input range [low, high) they read; an axis that
  keeps its size is not resampled (Pillow skips the pass): its taps are the
  pixels themselves."""
  first, weights, last = _coefficients(in_size, out_size, kernel)
  first = first[start : start + count]
  weights = weights[start : start + count]
  low = tf.where(tf.equal(in_size, out_size), start, first[0])
  high = tf.where(tf.equal(in_size, out_size), start + count, last[start + count - 1])
  return first, weights, low, high


def resize_input_box(
  image_size: TensorLike, size: TensorLike, kernel: str, offset: TensorLike, box: TensorLike
) -> tuple[tf.Tensor, tf.Tensor]:
  """The part of an image of `image_size` that the `box` (its (y, x) `offset`
  and (h, w) size) of `resize(image, size, kernel)` is computed from:
  (offset, size) in the input's pixels."""
  image_size, size = (tf.cast(v, tf.int32) for v in (image_size, size))
  offset, box = tf.cast(offset, tf.int32), tf.cast(box, tf.int32)
  _, _, top, bottom = _axis_window(image_size[0], size[0], kernel, offset[0], box[0])
  _, _, left, right = _axis_window(image_size[1], size[1], kernel, offset[1], box[1])
  return tf.stack([top, left]), tf.stack([bottom - top, right - left])


def resize_window(
  window: TensorLike,
  window_offset: TensorLike,
  image_size: TensorLike,
  size: TensorLike,
  kernel: str,
  offset: TensorLike,
  box: TensorLike,
) -> tf.Tensor:
  """The `box` (at `offset`) of `resize(image, size, kernel)`, pixel-equal,
  computed from `window`: the part of `image` (of `image_size`) at
  `window_offset` that holds `resize_input_box` (or more)."""
  _check_kernel(kernel)
  image_size, size = (tf.cast(v, tf.int32) for v in (image_size, size))
  offset, box = tf.cast(offset, tf.int32), tf.cast(box, tf.int32)
  window_offset = tf.cast(window_offset, tf.int32)
  first_v, weights_v, _, _ = _axis_window(image_size[0], size[0], kernel, offset[0], box[0])
  first_h, weights_h, _, _ = _axis_window(image_size[1], size[1], kernel, offset[1], box[1])
  first_v, first_h = first_v - window_offset[0], first_h - window_offset[1]
  window = tf.cast(window, tf.uint8)
  channels = tf.shape(window)[2]
  # Both passes run along axis 0 of a 2-D tensor: rows x (columns, channels)
  # for the height, columns x (channels, rows) for the width.
  rows = tf.reshape(window, [tf.shape(window)[0], -1])

  def down(v):
    kept = lambda: v[offset[0] - window_offset[0] :][: box[0]]  # noqa: E731
    resampled = lambda: _resample_rows_at(v, first_v, weights_v)  # noqa: E731
    return tf.cond(tf.equal(image_size[0], size[0]), kept, resampled)

  def across(v):  # v: rows x (columns, channels), and so returned
    height = tf.shape(v)[0]

    def kept():
      pixels = tf.reshape(v, [height, -1, channels])[:, offset[1] - window_offset[1] :]
      return tf.reshape(pixels[:, : box[1]], [height, -1])

    def resampled():
      columns = tf.reshape(tf.transpose(v), [-1, channels * height])
      columns = _resample_rows_at(columns, first_h, weights_h)
      return tf.transpose(tf.reshape(columns, [-1, height]))

    return tf.cond(tf.equal(image_size[1], size[1]), kept, resampled)

  rows = tf.cond(
    _height_first(image_size, size), lambda: across(down(rows)), lambda: down(across(rows))
  )
  return tf.reshape(rows, tf.stack([box[0], box[1], channels]))


def scaled_size(image_size: TensorLike, factor: TensorLike) -> tf.Tensor:
  """The size an image of `image_size` (height, width) has once scaled by
  `factor`: each side rounded to the nearest pixel (half up), at least 1."""
  sides = tf.cast(image_size, tf.float64) * tf.cast(factor, tf.float64)
  return tf.maximum(tf.cast(tf.floor(sides + 0.5), tf.int32), 1)


def resize_by(image: TensorLike, factor: TensorLike, kernel: str = "bicubic") -> tf.Tensor:
  """`image` scaled by `factor` (0.5 halves each side), Pillow-exact: the
  output size is `scaled_size`."""
  image = tf.convert_to_tensor(image)
  return resize(image, scaled_size(tf.shape(image)[:2], factor), kernel)


# scipy.ndimage.gaussian_filter's default: the kernel reaches 4 sigma.
TRUNCATE = 4.0
_NO_BLUR = 1e-15  # scipy skips an axis whose sigma is not above this


def _numpy_gaussian_weights(sigma, radius):
  """scipy's `_gaussian_kernel1d`: exp(-x^2 / 2 sigma^2), normalised, in float64."""
  x = np.arange(-radius, radius + 1)
  phi = np.exp(-0.5 / (float(sigma) ** 2) * x**2)
  return phi / phi.sum()


def _gaussian_weights(sigma, radius):
  """The blur's weights in numpy's arithmetic, scipy's own, so that they are
  the same doubles and the blur the same integers: TensorFlow's exp differs
  from numpy's in the last bit for about half of all sigmas, and where a
  photo is flat a sum lands that close to an integer (1% of a Kodak photo's
  pixels one or two levels off at sigma 0.5). A tensor sigma (a draw per
  image) computes them in numpy too, a few dozen numbers per image."""
  if not tf.is_tensor(sigma):
    return tf.constant(_numpy_gaussian_weights(sigma, radius), tf.float64)
  weights = tf.numpy_function(_numpy_gaussian_weights, [sigma, radius], tf.float64, stateful=False)
  return tf.reshape(weights, [2 * radius + 1])


def _reflected(start, stop, size):
  """Indices of positions [start, stop) of an axis of `size` pixels extended
  by scipy's "reflect" mode (d c b a | a b c d | d c b a), repeated as often
  as the reach needs (a kernel wider than the image reflects again)."""
  index = tf.range(start, stop) % (2 * size)
  return tf.where(index >= size, 2 * size - 1 - index, index)


def _blur_rows_at(values, weights, radius, start, count, size, first=0):
  """scipy's `correlate1d` for rows [start, start + count) of an axis of
  `size` rows, `values` holding rows [first, ...) of it (all that the reach
  needs): mirrored at the axis's ends, summed in scipy's order for a
  symmetric kernel (the centre tap, then pairs from the outermost in), then
  truncated to uint8 as scipy stores into a uint8 output."""
  padded = tf.gather(values, _reflected(start - radius, start + count + radius, size) - first)
  shape = tf.concat([[count], tf.shape(padded)[1:]], 0)
  at = lambda row: tf.slice(padded, tf.stack([row, 0, 0]), shape)  # noqa: E731

  def add_pair(j, total):
    return j - 1, total + (at(radius - j) + at(radius + j)) * weights[radius - j]

  _, total = tf.while_loop(lambda j, _: j > 0, add_pair, (radius, at(radius) * weights[radius]))
  return tf.floor(tf.clip_by_value(total, 0.0, 255.0))


def blur_radius(sigma: TensorLike) -> tf.Tensor:
  """The reach of `gaussian_blur(image, sigma)` in pixels: int(4 sigma + 0.5),
  scipy's; 0 for no blur."""
  sigma = tf.cast(sigma, tf.float64)
  radius = tf.cast(tf.floor(TRUNCATE * sigma + 0.5), tf.int32)
  return tf.where(sigma > _NO_BLUR, radius, 0)


def gaussian_blur(image: TensorLike, sigma: TensorLike) -> tf.Tensor:
  """`image` (uint8 HxWxC) blurred as scipy's `ndimage.gaussian_filter(channel,
  sigma, output=channel)` blurs each channel of it (CNNDetection's blur):
  the kernel reaches `int(4 sigma + 0.5)` pixels, edges are mirrored (again
  and again where the kernel is wider than the image), the rows pass comes
  first and each pass is stored as uint8. A `sigma` of 0 (or below 1e-15, as
  scipy) leaves the image as it is.

  Examples:
    >>> image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)
    >>> tfjpeg.codec.resample.gaussian_blur(image, 1.5).shape
    TensorShape([40, 40, 3])
  """
  image = tf.convert_to_tensor(image)
  if image.dtype != tf.uint8:
    raise TypeError(f"gaussian_blur takes uint8 images, got {image.dtype.name}")
  if not tf.is_tensor(sigma) and float(sigma) < 0:
    raise ValueError(f"a blur's sigma must be >= 0, got {sigma}")
  shape = tf.shape(image)
  out = blur_window(
    image, tf.zeros([2], tf.int32), shape[:2], sigma, tf.zeros([2], tf.int32), shape[:2]
  )
  out.set_shape(image.shape)
  return out


def blur_window(
  window: TensorLike,
  window_offset: TensorLike,
  image_size: TensorLike,
  sigma: TensorLike,
  offset: TensorLike,
  box: TensorLike,
) -> tf.Tensor:
  """The `box` (at `offset`) of `gaussian_blur(image, sigma)`, pixel-equal,
  computed from `window`: the part of `image` (of `image_size`) at
  `window_offset` that holds the box and `blur_radius` pixels around it,
  within the image."""
  image_size = tf.cast(image_size, tf.int32)
  offset, box = tf.cast(offset, tf.int32), tf.cast(box, tf.int32)
  window_offset = tf.cast(window_offset, tf.int32)
  window = tf.convert_to_tensor(window)
  radius = blur_radius(sigma)

  def kept():
    local = offset - window_offset
    return window[local[0] :][: box[0]][:, local[1] :][:, : box[1]]

  if not tf.is_tensor(sigma) and float(sigma) <= _NO_BLUR:
    return kept()

  def blur():
    if tf.is_tensor(sigma):
      weights = _gaussian_weights(tf.cast(sigma, tf.float64), radius)
    else:
      weights = _gaussian_weights(float(sigma), int(TRUNCATE * float(sigma) + 0.5))
    values = tf.cast(window, tf.float64)
    rows = _blur_rows_at(
      values, weights, radius, offset[0], box[0], image_size[0], window_offset[0]
    )
    columns = _blur_rows_at(
      tf.transpose(rows, [1, 0, 2]),
      weights,
      radius,
      offset[1],
      box[1],
      image_size[1],
      window_offset[1],
    )
    return tf.cast(tf.transpose(columns, [1, 0, 2]), tf.uint8)

  return tf.cond(radius > 0, blur, kept)
