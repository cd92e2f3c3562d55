"""Patch cropping with full control of where the JPEG grid falls.

The JPEG grid of an image starts at its top-left pixel. A patch whose offset
is a multiple of 8 on both axes keeps its 8x8 blocks intact ("aligned"); any
other offset cuts across them. With 4:2:0 chroma a chroma block spans 16x16
pixels, so pass `grid=16` to keep chroma aligned too.

Every function returns the patch and its (y, x) offset, so analyses can group
results by offset mod 8. Randomness is stateless (see `tfjpeg.core.seeds`).
"""

from typing import Any

import tensorflow as tf

from tfjpeg.codec import resample
from tfjpeg.core import seeds

# What the ops take: a tensor, or anything tf.convert_to_tensor takes.
TensorLike = Any
Size = int | tuple[int, int]  # a side, or (height, width)


MODES = ("aligned", "random", "misaligned")


def crop_at(image: TensorLike, size: Size, offset: TensorLike) -> tf.Tensor:
  """Cuts the `size` patch whose top-left corner is `offset` = (y, x).

  Examples:
    >>> image = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    >>> tfjpeg.crop_at(image, 4, (2, 3)).shape
    TensorShape([4, 4, 3])
  """
  height, width = _pair(size)
  image = tf.convert_to_tensor(image)
  offset = tf.cast(tf.convert_to_tensor(offset), tf.int32)
  _assert_fits(image.shape[:2], size)
  with tf.control_dependencies(_assert_fits(tf.shape(image)[:2], size)):
    image_h, image_w = tf.shape(image)[0], tf.shape(image)[1]
    inside = tf.logical_and(
      tf.reduce_all(offset >= 0),
      tf.logical_and(offset[0] + height <= image_h, offset[1] + width <= image_w),
    )
    check = tf.debugging.Assert(
      inside,
      [
        "crop offset (y, x) =",
        offset,
        "puts the",
        height,
        "x",
        width,
        "patch outside the image of shape",
        tf.shape(image),
      ],
    )
  with tf.control_dependencies([check]):
    patch = tf.slice(image, [offset[0], offset[1], 0], [height, width, -1])
  patch.set_shape([height, width, image.shape[-1]])
  return patch


def crop(
  image: TensorLike, size: Size, mode: str, grid: int | TensorLike = 8, seed: TensorLike = 0
) -> tuple[tf.Tensor, tf.Tensor]:
  """Cuts one `size` patch at a position chosen by `mode` (see `choose_offset`).

  Returns:
    (patch, offset) with offset an int32 [y, x] tensor.

  Examples:
    >>> image = np.zeros((100, 100, 3), np.uint8)
    >>> patch, offset = tfjpeg.crop(image, 32, "aligned", seed=(0, 7))
    >>> patch.shape, [int(v) % 8 for v in offset]
    (TensorShape([32, 32, 3]), [0, 0])
  """
  image = tf.convert_to_tensor(image)
  _assert_fits(image.shape[:2], size)
  offset = choose_offset(tf.shape(image)[:2], size, mode, grid, seed)
  return crop_at(image, size, offset), offset


def choose_offset(
  image_size: TensorLike,
  size: Size,
  mode: str,
  grid: int | TensorLike = 8,
  seed: TensorLike = 0,
) -> tf.Tensor:
  """Where a `size` patch of an image of `image_size` = (height, width) goes.

  Modes:
    aligned: offset a multiple of `grid` on both axes, uniform over such offsets.
    random: any offset, uniform over all positions.
    misaligned: not a multiple of `grid` on at least one axis. The grid phase
      (offset mod `grid`) is uniform over the feasible non-zero phases, then
      the position is uniform over the offsets with that phase.

  `grid` is one period for both axes, or (height, width) per axis: a file's
  own MCU (`tfjpeg.codec.jpeg.mcu_size`: 8 high x 16 wide at 4:2:2).

  Only the image's size is needed, so a JPEG's patch can be placed before it
  is decoded. Returns an int32 [y, x] tensor.

  Examples:
    >>> offset = tfjpeg.choose_offset((480, 640), 64, "misaligned", seed=(0, 3))
    >>> [int(v) % 8 for v in offset] != [0, 0]
    True
  """
  if mode not in MODES:
    raise ValueError(f"crop mode must be one of {MODES}, got {mode!r}")
  if isinstance(grid, bool) or (isinstance(grid, int) and grid < 1):
    raise ValueError(f"grid must be a positive int or a (height, width) pair, got {grid!r}")
  if not isinstance(grid, int):
    if not tf.is_tensor(grid) and min(int(g) for g in grid) < 1:
      raise ValueError(f"grid must be a positive int or a (height, width) pair, got {grid!r}")
    grid = tf.ensure_shape(tf.cast(grid, tf.int32), [2])
  height, width = _pair(size)
  image_size = tf.cast(tf.convert_to_tensor(image_size), tf.int32)
  with tf.control_dependencies(_assert_fits(image_size, (height, width))):
    # Number of extra pixels on each axis: offsets run over 0..margin.
    margin = image_size[:2] - tf.constant([height, width])
  seed = seeds.as_seed(seed)
  if mode == "random":
    return _uniform_below(margin + 1, seed)
  if mode == "aligned":
    return grid * _uniform_below(margin // grid + 1, seed)
  return _misaligned_offset(margin, grid, seed)


def _misaligned_offset(margin, grid, seed):
  phase_seed, block_seed = seeds.split(seed, 2)
  max_phase = tf.minimum(margin, grid - 1)  # largest feasible phase per axis
  num_x = max_phase[1] + 1
  num_phases = (max_phase[0] + 1) * num_x
  check = tf.debugging.Assert(
    num_phases > 1, ["no misaligned crop exists: the image is exactly the patch size"]
  )
  with tf.control_dependencies([check]):
    # Phase 0 (aligned on both axes) is excluded by drawing from 1.
    index = tf.random.stateless_uniform(
      [], phase_seed, minval=1, maxval=tf.maximum(num_phases, 2), dtype=tf.int32
    )
  phase = tf.stack([index // num_x, index % num_x])
  return phase + grid * _uniform_below((margin - phase) // grid + 1, block_seed)


def _uniform_below(bounds, seed):
  """Uniform ints in [0, bounds[i]) for each of the two axes."""
  y_seed, x_seed = seeds.split(seed, 2)
  draw = lambda n, s: tf.random.stateless_uniform([], s, minval=0, maxval=n, dtype=tf.int32)
  return tf.stack([draw(bounds[0], y_seed), draw(bounds[1], x_seed)])


def _assert_fits(image_size, size):
  """Checks the image is at least the patch size, statically when it can.

  `image_size` is a static shape (raises ValueError) or a tensor (returns the
  run-time assertion).
  """
  height, width = _pair(size)
  if isinstance(image_size, tf.TensorShape) or not tf.is_tensor(image_size):
    static_h, static_w = tuple(image_size)[:2]
    if (static_h is not None and static_h < height) or (static_w is not None and static_w < width):
      raise ValueError(
        f"image of {static_h}x{static_w} pixels is smaller than the {height}x{width} patch"
      )
    return []
  return [
    tf.debugging.Assert(
      tf.logical_and(image_size[0] >= height, image_size[1] >= width),
      ["image smaller than the patch: image size", image_size, "patch", height, "x", width],
    )
  ]


def _pair(size):
  if isinstance(size, int):
    size = (size, size)
  height, width = (int(s) for s in size)
  if height < 1 or width < 1:
    raise ValueError(f"patch size must be positive, got {size}")
  return height, width


def centre_crop(image: TensorLike, size: int) -> tf.Tensor:
  """torchvision's `CenterCrop(size)` of a uint8 HxWx3 image: the top-left
  corner at round((H - size) / 2) (Python's round, half to even) and the
  same across; an image smaller than `size` is first padded with black,
  (size - H) // 2 rows above and the rest below, and so across."""
  image = tf.convert_to_tensor(image)
  shape = tf.shape(image)[:2]
  pad = tf.maximum(size - shape, 0)
  image = tf.pad(
    image, [[pad[0] // 2, pad[0] - pad[0] // 2], [pad[1] // 2, pad[1] - pad[1] // 2], [0, 0]]
  )
  room = tf.cast(tf.shape(image)[:2] - size, tf.float64)
  top_left = tf.cast(tf.round(room / 2.0), tf.int32)  # tf.round: half to even, as Python's
  out = image[top_left[0] : top_left[0] + size, top_left[1] : top_left[1] + size]
  return tf.ensure_shape(out, [size, size, 3])


def model_input(image: TensorLike, mode: str, size: int, kernel: str = "bilinear") -> tf.Tensor:
  """A whole uint8 image as a model of `size`x`size` input takes it: mode
  "resize" (Pillow-exact, tfjpeg.codec.resample) or "centre_crop" (`centre_crop`)."""
  if mode == "resize":
    return tf.ensure_shape(resample.resize(image, (size, size), kernel), [size, size, 3])
  if mode == "centre_crop":
    return centre_crop(image, size)
  raise ValueError(f"a model input is 'resize' or 'centre_crop', got {mode!r}")
