"""Exact JPEG as Keras layers: a save at a fixed QF, or at a QF drawn per image.

Each image is encoded by libjpeg (baseline, accurate integer DCT) and decoded
with the accurate integer IDCT: the pixels OpenCV and Pillow give for the same
file, where `tf.image.adjust_jpeg_quality` and keras-cv's `RandomJpegQuality`
decode with the fast IDCT (up to 9 levels off at QF 99-100).
"""

from collections.abc import Sequence
from typing import Any

import keras

from tfjpeg.codec import chain_syntax
from tfjpeg.core.errors import ConfigError
from tfjpeg.layers import chain


def _quality(value, owner, what="quality") -> int:
  if isinstance(value, bool) or not float(value).is_integer() or not 1 <= value <= 100:
    raise ConfigError(f"{owner}: {what} must be a whole number in 1..100, got {value!r}")
  return int(value)


def _probability(value, owner) -> float:
  if isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
    raise ConfigError(f"{owner}: probability must be in [0, 1], got {value!r}")
  return float(value)


@keras.saving.register_keras_serializable(package="tfjpeg")
class JpegCompression(chain.ChainLayer):
  """Every image saved as a JPEG at `quality` and decoded back, exactly as
  libjpeg (OpenCV, Pillow) does it; applied in training and inference alike.

  ```python
  saved = tfjpeg.layers.JpegCompression(75)(images)   # uint8 or float in 0..255
  ```

  Args:
    quality: the QF, a whole number in 1..100.
    chroma: "4:2:0" (the default of libjpeg, OpenCV and Pillow) or "4:4:4".
    **kwargs: `value_range` and Keras's own (`name`, `dtype`), as for every
      tfjpeg layer (`ImageLayer`).
  """

  def __init__(self, quality: int = 75, chroma: str = "4:2:0", **kwargs: Any):
    quality = _quality(quality, type(self).__name__)
    step = chain_syntax.Step("jpeg", quality=chain_syntax.Value(quality))
    super().__init__(chain_syntax.Chain((step,)), chroma, **kwargs)
    self.quality = quality

  def get_config(self):
    config = super().get_config()
    config.pop("seed")  # draws nothing
    config.update(quality=self.quality, chroma=self.chroma)
    return config


@keras.saving.register_keras_serializable(package="tfjpeg")
class RandomJpegQuality(chain.ChainLayer):
  """Images saved as JPEG at a QF drawn per image (libjpeg-exact), with a
  probability: the paper's augmentation; in training only.

  ```python
  augment = tfjpeg.layers.RandomJpegQuality(quality_range=(50, 100), probability=0.5, seed=0)
  low_qf = tfjpeg.layers.RandomJpegQuality(qualities=[50], probability=0.5, seed=0)
  ```

  Args:
    quality_range: (low, high): every whole QF from low to high equally likely.
    qualities: or a set of QFs, one drawn per image (give one of the two).
    probability: the share of images saved at all; the rest pass unchanged.
    chroma: "4:2:0" (the default of libjpeg, OpenCV and Pillow) or "4:4:4".
    **kwargs: `value_range`, `seed` and Keras's own (`name`, `dtype`), as for
      every tfjpeg layer (`ImageLayer`).

  Image i of a call is `tfjpeg.apply_chain(image, "jpeg:LOW..HIGH@P", seeds[i])`
  for the seeds of `get_random_transformation` (the chain's draw columns say
  whether it was saved and at which QF).
  """

  def __init__(
    self,
    quality_range: Sequence[int] | None = None,
    qualities: Sequence[int] | None = None,
    probability: float = 1.0,
    chroma: str = "4:2:0",
    **kwargs: Any,
  ):
    owner = type(self).__name__
    if (quality_range is None) == (qualities is None):
      raise ConfigError(f"{owner}: give quality_range=(low, high) or qualities=[...], one of them")
    if quality_range is not None:
      if isinstance(quality_range, str | int) or len(quality_range) != 2:
        raise ConfigError(f"{owner}: quality_range must be (low, high), got {quality_range!r}")
      low, high = (_quality(q, owner, "quality_range") for q in quality_range)
      if high < low:
        raise ConfigError(f"{owner}: quality_range {quality_range!r} runs backwards")
      value = chain_syntax.Value(low, high) if high > low else chain_syntax.Value(low)
      quality_range = (low, high)
    else:
      if isinstance(qualities, str | int) or not len(qualities):  # type: ignore[arg-type]
        raise ConfigError(f"{owner}: qualities must be a non-empty list, got {qualities!r}")
      qualities = [_quality(q, owner, "qualities") for q in qualities]  # type: ignore[union-attr]
      value = chain_syntax.Value(choices=tuple(qualities))
    probability = _probability(probability, owner)
    step = chain_syntax.Step("jpeg", quality=value, probability=probability)
    super().__init__(chain_syntax.Chain((step,)), chroma, **kwargs)
    self.draws = True  # a range of one QF with probability 1 still follows `training`
    self.quality_range = None if quality_range is None else list(quality_range)
    self.qualities = None if qualities is None else list(qualities)
    self.probability = probability

  def get_config(self):
    config = super().get_config()
    config.update(
      quality_range=self.quality_range,
      qualities=self.qualities,
      probability=self.probability,
      chroma=self.chroma,
    )
    return config
