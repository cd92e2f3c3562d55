"""Pillow-exact resizing and scipy-exact blurring as Keras layers.

Keras's `Resizing` is `tf.image.resize`, up to 28 grey levels away from
Pillow's `Image.resize` (Lanczos, enlarging twofold), and its
`RandomGaussianBlur` is not scipy's `gaussian_filter`, which CNNDetection's
augmentation uses; these are pixel-equal to both (tfjpeg.codec.resample).
"""

from collections.abc import Sequence
from typing import Any

import keras

from tfjpeg.codec import chain_syntax
from tfjpeg.core.errors import ConfigError
from tfjpeg.layers import base
from tfjpeg.layers import chain


@keras.saving.register_keras_serializable(package="tfjpeg")
class PillowResizing(chain.ChainLayer):
  """Images resized as Pillow's `Image.resize((width, height), kernel)`
  resizes them, pixel for pixel; applied in training and inference alike.

  ```python
  tfjpeg.layers.PillowResizing(224, 224, kernel="lanczos")  # to 224x224
  tfjpeg.layers.PillowResizing(factor=0.5)                  # half of each side
  ```

  Args:
    height: the output's height in pixels, with
    width: its width; or
    factor: a scale for both sides (each rounded half up, at least 1).
    kernel: bilinear, bicubic (Pillow's default), lanczos, box or hamming;
      or "auto", Lanczos to shrink and bicubic to enlarge (Corvi et al.'s).
    **kwargs: `value_range` and Keras's own (`name`, `dtype`), as for every
      tfjpeg layer (`ImageLayer`).
  """

  def __init__(
    self,
    height: int | None = None,
    width: int | None = None,
    factor: float | None = None,
    kernel: str = "bicubic",
    **kwargs: Any,
  ):
    owner = type(self).__name__
    if factor is None and (height is None or width is None):
      raise ConfigError(f"{owner}: give height and width, or a factor")
    if factor is not None and (height is not None or width is not None):
      raise ConfigError(f"{owner}: give height and width, or a factor, not both")
    if kernel not in chain_syntax.KERNELS:
      raise ConfigError(
        f"{owner}: kernel must be one of {', '.join(chain_syntax.KERNELS)}, got {kernel!r}"
      )
    if factor is not None:
      if isinstance(factor, bool) or not float(factor) > 0:
        raise ConfigError(f"{owner}: factor must be greater than 0, got {factor!r}")
      step = chain_syntax.Step("resize", factor=chain_syntax.Value(float(factor)), kernel=kernel)
    else:
      height, width = base.pixels(height, "height", owner), base.pixels(width, "width", owner)
      sides = (chain_syntax.Value(height), chain_syntax.Value(width))
      step = chain_syntax.Step("resize", size=sides, kernel=kernel)
    super().__init__(chain_syntax.Chain((step,)), **kwargs)
    self.height, self.width = height, width
    self.factor = None if factor is None else float(factor)
    self.kernel = kernel

  def get_config(self):
    config = super().get_config()
    config.pop("seed")  # draws nothing
    config.update(height=self.height, width=self.width, factor=self.factor, kernel=self.kernel)
    return config


@keras.saving.register_keras_serializable(package="tfjpeg")
class ScipyGaussianBlur(chain.ChainLayer):
  """Images blurred as scipy's `ndimage.gaussian_filter(channel, sigma)`
  blurs each channel (CNNDetection's blur), pixel for pixel.

  ```python
  tfjpeg.layers.ScipyGaussianBlur(1.5)                              # always
  tfjpeg.layers.ScipyGaussianBlur((0.0, 3.0), probability=0.5, seed=0)  # Wang et al.'s
  ```

  Args:
    sigma: a sigma (the blur then applies always, as a fixed operation), or
      (low, high): one drawn uniformly per image (in training only).
    probability: the share of images blurred (below 1: in training only).
    **kwargs: `value_range`, `seed` and Keras's own (`name`, `dtype`), as for
      every tfjpeg layer (`ImageLayer`).
  """

  def __init__(self, sigma: float | Sequence[float] = 1.0, probability: float = 1.0, **kwargs: Any):
    owner = type(self).__name__
    if isinstance(sigma, int | float) and not isinstance(sigma, bool):
      low = high = float(sigma)
    elif isinstance(sigma, Sequence) and not isinstance(sigma, str) and len(sigma) == 2:
      low, high = (float(s) for s in sigma)
    else:
      raise ConfigError(f"{owner}: sigma must be a number or (low, high), got {sigma!r}")
    if high < low:
      raise ConfigError(f"{owner}: the sigma range {sigma!r} runs backwards")
    if low < 0:
      raise ConfigError(f"{owner}: sigma must be >= 0, got {sigma!r}")
    value = chain_syntax.Value(low) if low == high else chain_syntax.Value(low, high)
    if isinstance(probability, bool) or not 0.0 <= float(probability) <= 1.0:
      raise ConfigError(f"{owner}: probability must be in [0, 1], got {probability!r}")
    step = chain_syntax.Step("blur", sigma=value, probability=float(probability))
    super().__init__(chain_syntax.Chain((step,)), **kwargs)
    self.sigma = low if low == high and not isinstance(sigma, Sequence) else [low, high]
    self.probability = float(probability)

  def get_config(self):
    config = super().get_config()
    config.update(sigma=self.sigma, probability=self.probability)
    return config
