"""Crops placed against the JPEG grid, as a Keras layer.

Keras's `RandomCrop` knows nothing of the 8x8 grid; a forensic net trained
on grid-aligned crops collapses on random ones (the paper's experiment 1).
`GridCrop` places each crop against the grid of the image's last compression:
at its top-left pixel for an image as decoded, or where a `ProcessingChain`
before it says (a crop after a save moves the grid).
"""

from typing import Any

import keras
import tensorflow as tf

from tfjpeg.codec import chain_ops
from tfjpeg.codec import crops
from tfjpeg.codec import grid as grid_lib
from tfjpeg.core import seeds
from tfjpeg.core.errors import ConfigError
from tfjpeg.layers import base
from tfjpeg.layers import chain as chain_layers

REALIGNED = "realigned"
MODES = (*crops.MODES, REALIGNED)


@keras.saving.register_keras_serializable(package="tfjpeg")
class GridCrop(base.ImageLayer):
  """One `height` x `width` crop of each image, placed against the JPEG grid.

  ```python
  crop = tfjpeg.layers.GridCrop(64, mode="aligned", seed=0)
  train = train.map(lambda x, y: (crop(x), y)).batch(32)  # any size in, 64x64 out
  ```

  Modes (`tfjpeg.crop`'s, and one more):
    aligned: the offset a multiple of `grid` from the grid's origin on both axes.
    random: any offset.
    misaligned: off the grid on at least one axis (the grid phase uniform
      over the non-zero phases).
    realigned: a random crop moved by less than 8 pixels onto the grid that
      `tfjpeg.estimate_grid` finds blindly in the image (left where it finds
      none): what recovers a grid-sensitive net on random crops.

  Args:
    height: the crop's height in pixels.
    width: its width (default: `height`).
    mode: one of the modes above.
    grid: 8 (the 8x8 blocks) or 16 (the 16x16 chroma MCU of 4:2:0).
    chain: a processing chain (or preset) each image goes through first,
      computed only where its crop needs it (`tfjpeg.codec.chain_ops.
      apply_window`): `GridCrop(64, chain="jpeg:50..100")` saves only the
      MCUs around the crop, a fraction of the work of saving the image.
      The crop follows the grid of the chain's last save. Pixel-equal to
      `ProcessingChain(chain)` then `GridCrop`, with seeds split in two
      (`tfjpeg.core.seeds.split(seeds[i], 2)`: the chain's, the crop's).
    chroma: the chroma subsampling of the chain's JPEG saves.
    **kwargs: `value_range`, `seed` and Keras's own (`name`, `dtype`), as for
      every tfjpeg layer (`ImageLayer`).

  The grid's origin is the image's top-left pixel, or, for a dict input,
  its `"grid_origins"` entry (which `ProcessingChain` writes). Image i is
  `tfjpeg.crop(image, (height, width), mode, grid, seeds[i])` for aligned,
  random and misaligned crops of an image as decoded. Outside training
  (`training=False`) the crop is the centre one, moved onto the grid for
  aligned and realigned crops and off it for misaligned ones, and the chain
  is left out. An image smaller than the crop is refused, naming both sizes.
  """

  moves_pixels = True

  def __init__(
    self,
    height: int,
    width: int | None = None,
    mode: str = "aligned",
    grid: int = 8,
    chain: str | None = None,
    chroma: str = "4:2:0",
    **kwargs: Any,
  ):
    super().__init__(**kwargs)
    owner = type(self).__name__
    self.chain, chroma = chain_layers.checked_chain(chain, chroma, owner)
    self.chain_text = (
      None if chain is None else chain if isinstance(chain, str) else self.chain.text
    )
    self.chroma = chroma
    width = height if width is None else width
    if mode not in MODES:
      raise ConfigError(f"{owner}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if grid not in (8, 16):
      raise ConfigError(f"{owner}: grid must be 8 or 16, got {grid!r}")
    self.height, self.width = (
      base.pixels(height, "height", owner),
      base.pixels(width, "width", owner),
    )
    self.mode, self.grid = mode, int(grid)
    # Without a chain a crop only cuts: float pixels pass as they are.
    self.needs_bytes = bool(self.chain.steps)

  def check_image_size(self, height, width):
    what = "image"
    if self.chain.steps:  # the crop is cut from the chain's result
      height, width = chain_layers.output_size(self.chain, height, width)
      what = f"image {self.chain.text} leaves"
    if (height is not None and height < self.height) or (width is not None and width < self.width):
      raise ConfigError(
        f"{type(self).__name__}: the {self.height}x{self.width} crop does not fit "
        f"the {height}x{width} {what}"
      )

  def output_image_shape(self, shape):
    shape = tf.TensorShape(shape)
    self.check_image_size(shape[0], shape[1])
    return tf.TensorShape([self.height, self.width, shape[2]])

  def extra_outputs(self):
    return {base.GRID_KEY: tf.TensorSpec([2], tf.int32)}

  @staticmethod
  def _origin(extras):
    origin = extras.get(base.GRID_KEY)
    return tf.zeros([2], tf.int32) if origin is None else tf.cast(origin, tf.int32)

  def transform_one(self, image, seed, extras):
    size = (self.height, self.width)
    origin = self._origin(extras)
    if not self.chain.steps:
      offset = self._offset(image, tf.shape(image)[:2], origin, seed)
      return crops.crop_at(image, size, offset), self._moved(origin, offset)
    chain_seed, crop_seed = seeds.split(seed, 2)
    # The grid is estimated on the whole result; noise and rrc have no windows.
    if self.mode == REALIGNED or not self.chain.windowable:
      image, record = chain_ops.apply(image, self.chain, chain_seed, self.chroma, origin)
      offset = self._offset(image, record["size"], record["grid_origin"], crop_seed)
      return crops.crop_at(image, size, offset), self._moved(record["grid_origin"], offset)
    planned, record = chain_ops.plan(tf.shape(image)[:2], self.chain, chain_seed, origin)
    offset = self._offset(None, record["size"], record["grid_origin"], crop_seed)

    def read(at, box):
      return image[at[0] :][: box[0]][:, at[1] :][:, : box[1]]

    patch = chain_ops.apply_window(read, planned, offset, size, self.chroma)
    return patch, self._moved(record["grid_origin"], offset)

  @staticmethod
  def _moved(origin, offset):
    """The grid's origin in the crop: the image's, moved by the crop's offset
    (modulo 16, the largest MCU, as tfjpeg.codec.chain_ops keeps it)."""
    return {base.GRID_KEY: (tf.cast(origin, tf.int32) - tf.cast(offset, tf.int32)) % 16}

  def _offset(self, image, image_size, origin, seed):
    """Where the crop goes in an image of `image_size` whose grid starts at
    `origin` (`image` itself only to realign)."""
    size = (self.height, self.width)
    if self.mode in (crops.MODES[1], REALIGNED):  # random, realigned
      offset = crops.choose_offset(image_size, size, "random", self.grid, seed)
    else:
      # Aligned and misaligned: counted from the grid's origin, as bin/train's
      # pipeline counts them; from its first grid point where that leaves no
      # room (an image too small for any aligned crop is refused).
      room = image_size - tf.constant(size)
      shift = tf.where(origin <= room, origin, origin % self.grid)
      offset = crops.choose_offset(image_size - shift, size, self.mode, self.grid, seed) + shift
    if self.mode == REALIGNED:
      offset = self._realigned(image, offset)
    return offset

  def inference_one(self, image, extras):
    size = (self.height, self.width)
    image_size = tf.shape(image)[:2]
    margin = image_size - tf.constant(size)
    origin = self._origin(extras)
    centre = tf.maximum(margin // 2, 0)
    if self.mode in ("aligned", "misaligned"):
      first = origin % self.grid  # the first grid point, then the one at or before the centre
      on_grid = first + tf.maximum(centre - first, 0) // self.grid * self.grid
      fits = tf.reduce_all(on_grid <= margin)
      check = tf.debugging.Assert(
        fits, [f"{type(self).__name__}: no {self.mode} crop fits the image of", image_size]
      )
      with tf.control_dependencies([check]):
        offset = tf.identity(on_grid)
      if self.mode == "misaligned":  # one pixel off the grid, across if it fits, else down
        step = tf.where(offset + 1 <= margin, 1, -1)
        offset = offset + tf.where(margin[1] >= 1, tf.stack([0, step[1]]), tf.stack([step[0], 0]))
    elif self.mode == REALIGNED:
      offset = self._realigned(image, centre)
    else:
      offset = centre
    return crops.crop_at(image, size, offset), self._moved(origin, offset)

  def _realigned(self, image, offset):
    origin, confidence = grid_lib.estimate(self._to_uint8(image))
    moved = grid_lib.realign(offset, origin, tf.shape(image)[:2], (self.height, self.width))
    return tf.where(confidence >= grid_lib.CONFIDENT, moved, offset)

  def get_config(self):
    config = super().get_config()
    config.update(
      height=self.height,
      width=self.width,
      mode=self.mode,
      grid=self.grid,
      chain=self.chain_text,
      chroma=self.chroma,
    )
    return config
