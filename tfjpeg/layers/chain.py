"""Layers that put images through a processing chain (tfjpeg.codec.chain_syntax):
`ProcessingChain` for any chain or preset, and the base the JPEG, resize and
blur layers share. One implementation under all of them:
`tfjpeg.codec.chain_ops.apply`, which `bin/train`'s pipeline runs too."""

import math
from typing import Any

import keras
import tensorflow as tf

from tfjpeg.codec import chain_ops
from tfjpeg.codec import chain_syntax
from tfjpeg.codec import jpeg
from tfjpeg.core.errors import ConfigError
from tfjpeg.layers import base

# What a dict input gets besides its images: the draws, named by
# `tfjpeg.codec.chain_syntax.draw_columns(chain)`.
DRAWS_KEY = "chain_draws"


def _draws_anything(chain: chain_syntax.Chain) -> bool:
  """Whether `chain` draws: a coin, a range or a choice, or a crop's place."""
  for step in chain.steps:
    values = [step.quality, step.sigma, step.factor, *(step.size or ())]
    if step.probability < 1.0 or step.name == "crop":
      return True
    if any(v is not None and not v.fixed for v in values):
      return True
  return False


def output_size(
  chain: chain_syntax.Chain, height: int | None, width: int | None
) -> tuple[int | None, int | None]:
  """(height, width) of every image of `height` x `width` after `chain`,
  each None where draws or an unknown input size decide it."""
  sides: list[int | None] = [height, width]
  for step in chain.steps:
    if step.name in ("jpeg", "blur"):
      continue
    if step.probability < 1.0:
      return None, None
    if step.name == "resize" and step.size is not None:
      sides = [int(v.low) if v.fixed else None for v in step.size]
    elif step.name == "resize":
      factor = step.factor.low if step.factor is not None and step.factor.fixed else None
      sides = [
        None if s is None or factor is None else max(math.floor(s * factor + 0.5), 1) for s in sides
      ]
    else:  # a crop: its size, cut to the image
      cut = step.size or (None, None)
      sides = [
        None if s is None or v is None or not v.fixed else min(int(v.low), s)
        for s, v in zip(sides, cut)
      ]
  return sides[0], sides[1]


def checked_chain(chain: Any, chroma: str, owner: str) -> tuple[chain_syntax.Chain, str]:
  """`chain` parsed (a Chain, its text, a preset's name, None) and `chroma`
  checked; what is wrong is one line naming `owner`."""
  try:
    parsed = chain_syntax.parse(chain)
  except ValueError as e:
    raise ConfigError(f"{owner}: {e}") from None
  if chroma not in jpeg.CHROMA_MODES:
    raise ConfigError(
      f"{owner}: chroma must be one of {', '.join(jpeg.CHROMA_MODES)}, got {chroma!r}"
    )
  return parsed, chroma


class ChainLayer(base.ImageLayer):
  """A layer that applies one processing chain (the base of the chain, JPEG,
  resize and blur layers). Image i of a call is
  `tfjpeg.codec.chain_ops.apply(image, chain, seeds[i], chroma)` exactly."""

  moves_pixels = True

  def __init__(self, chain: Any, chroma: str = "4:2:0", **kwargs: Any):
    super().__init__(**kwargs)
    self.chain, self.chroma = checked_chain(chain, chroma, type(self).__name__)
    self.draws = _draws_anything(self.chain)
    self.moves_pixels = any(s.name in ("resize", "crop") for s in self.chain.steps)

  def transform_one(self, image, seed, extras):
    out, record = chain_ops.apply(image, self.chain, seed, self.chroma, extras.get(base.GRID_KEY))
    return out, {base.GRID_KEY: record["grid_origin"], DRAWS_KEY: record["draws"]}

  def output_image_shape(self, shape):
    shape = tf.TensorShape(shape)
    height, width = output_size(self.chain, shape[0], shape[1])
    return tf.TensorShape([height, width, shape[2]])

  def symbolic_image_shape(self, shape):
    # A chain that draws is left out of inference: a side it changes is None.
    out = self.output_image_shape(shape)
    if not self.draws:
      return out
    shape = tf.TensorShape(shape)
    return tf.TensorShape([o if o == i else None for o, i in zip(out, shape)])

  def uniform_sizes(self):
    return None not in output_size(self.chain, 10**6, 10**6)

  def extra_outputs(self):
    return {
      base.GRID_KEY: tf.TensorSpec([2], tf.int32),
      DRAWS_KEY: tf.TensorSpec([len(chain_syntax.draw_columns(self.chain))], tf.float64),
    }


@keras.saving.register_keras_serializable(package="tfjpeg")
class ProcessingChain(ChainLayer):
  """Images put through a processing chain or a published protocol, exactly
  as Pillow, scipy and libjpeg would process them.

  ```python
  degrade = tfjpeg.layers.ProcessingChain("resize:0.5..1.5@0.5>jpeg:65..100@0.5", seed=0)
  corvi = tfjpeg.layers.ProcessingChain("corvi2023", seed=0)
  test = test.map(lambda x, y: (corvi(x), y))   # single images: sizes may differ
  ```

  Args:
    chain: a chain's text (`"blur:0..3@0.5>jpeg:30..100@0.5"`; the syntax is
      tfjpeg.codec.chain_syntax's) or a preset's name (`"corvi2023"`,
      `"wang2020_blur_jpeg_0.5"`, `"wang2020_blur_jpeg_0.1"`).
    chroma: the chroma subsampling of its JPEG saves, "4:2:0" or "4:4:4"
      (a preset keeps its protocol's, 4:2:0).
    **kwargs: `value_range`, `seed` and Keras's own (`name`, `dtype`), as for
      every tfjpeg layer (`ImageLayer`).

  A chain that draws (ranges, choices, `@p` coins, crops) applies only in
  training, as Keras's random layers; a fixed chain (`"resize:0.5>jpeg:75"`)
  always. Called on a dict (`{"images": ..., "labels": ...}`), it adds
  `"grid_origins"` (where the grid of its last JPEG save lies in each result,
  which `GridCrop` follows) and `"chain_draws"` (what it drew, named by
  `tfjpeg.codec.chain_syntax.draw_columns`). A batch needs results of one
  size (a fixed resize or crop); else map it over single images before
  batching.
  """

  def __init__(self, chain: str, chroma: str = "4:2:0", **kwargs: Any):
    super().__init__(chain, chroma, **kwargs)
    self.chain_text = chain if isinstance(chain, str) else self.chain.text

  def get_config(self):
    config = super().get_config()
    config.update(chain=self.chain_text, chroma=self.chroma)
    return config
