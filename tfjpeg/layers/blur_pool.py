"""Anti-aliased subsampling (BlurPool, Zhang, "Making convolutional networks
shift-invariant again", ICML 2019) as a Keras layer.

A strided convolution or pooling samples its stride-1 result on one grid:
shift the input by one pixel and the net sees other samples, whatever
frequencies they alias. Zhang's fix runs the strided operation at stride 1,
blurs its result with a small binomial filter, then subsamples, so the
subsampling sees little above its Nyquist frequency. Anti-aliasing makes
nets more stable to shifts, not invariant to them (Cannas et al., IH&MMSec
2024, for forensic nets); `PolyphaseDownsampling` is exact for circular
shifts. The authors' code is PyTorch only; this is the same filter and
padding in Keras, on every backend.
"""

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from tfjpeg.core.errors import ConfigError
from tfjpeg.layers import circular_padding

# Zhang's filters are binomial of 1 to 7 taps; longer ones are allowed (a
# subsampling by more than 2 wants a wider blur), within reason.
MAX_FILTER = 16


def binomial_filter(size: int) -> np.ndarray:
  """The size x size binomial blur, normalised to sum 1 (Zhang's `get_filter`:
  [1, 1], [1, 2, 1], [1, 3, 3, 1], ... as an outer product)."""
  row = np.array([math.comb(size - 1, k) for k in range(size)], np.float64)
  kernel = np.outer(row, row)
  return (kernel / kernel.sum()).astype(np.float32)


def check_filter_size(size: Any, owner: str) -> int:
  whole = not isinstance(size, bool) and isinstance(size, int | np.integer)
  if not whole or not 1 <= size <= MAX_FILTER:
    raise ConfigError(
      f"{owner}: filter_size must be a whole number in 1..{MAX_FILTER}, got {size!r}"
    )
  return int(size)


def check_strides(strides: Any, owner: str) -> int:
  if isinstance(strides, bool) or not isinstance(strides, int | np.integer) or strides < 1:
    raise ConfigError(f"{owner}: strides must be a whole number >= 1, got {strides!r}")
  return int(strides)


@keras.saving.register_keras_serializable(package="tfjpeg")
class BlurPool(keras.layers.Layer):
  """Blurs each channel with a binomial filter, then keeps every
  `strides`-th pixel on both axes: Zhang's BlurPool.

  ```python
  # Conv2D(64, 3, strides=2) + ReLU, anti-aliased as Zhang places it:
  x = keras.layers.Conv2D(64, 3, padding="same")(x)      # at stride 1
  x = keras.layers.ReLU()(x)
  x = tfjpeg.layers.BlurPool(strides=2, filter_size=4)(x)
  ```

  The blur goes after the non-linearity (Zhang's placement): a ReLU makes
  new high frequencies that the subsampling would alias. An H x W input
  gives ceil(H / strides) x ceil(W / strides), what a strided "same"
  operation gives, so a net keeps its shapes and its weights.

  Args:
    strides: the subsampling factor on both axes.
    filter_size: taps of the binomial filter (Zhang's default 4: [1, 3, 3,
      1]; 1 is no blur, plain subsampling).
    padding: how the (filter_size - 1) pixels the filter needs are added:
      "reflect" (Zhang's), "circular" (wrap around: the layer then commutes
      with circular shifts by multiples of `strides`) or "zeros".
    **kwargs: Keras's own (`name`, `dtype`).
  """

  def __init__(
    self, strides: int = 2, filter_size: int = 4, padding: str = "reflect", **kwargs: Any
  ):
    super().__init__(**kwargs)
    owner = type(self).__name__
    self.strides = check_strides(strides, owner)
    self.filter_size = check_filter_size(filter_size, owner)
    if padding not in circular_padding.PAD_MODES:
      raise ConfigError(
        f"{owner}: padding must be one of {', '.join(circular_padding.PAD_MODES)}, got {padding!r}"
      )
    self.padding = padding
    self._filter = binomial_filter(self.filter_size)
    # Zhang's split of the filter's reach: the extra pixel, if any, after.
    before = (self.filter_size - 1) // 2
    self._pads = ((before, self.filter_size - 1 - before),) * 2

  def call(self, inputs):
    x = circular_padding.pad(inputs, self._pads, self.padding)
    channels = inputs.shape[-1]
    kernel = np.tile(self._filter[:, :, None, None], (1, 1, channels, 1))
    kernel = ops.cast(ops.convert_to_tensor(kernel), x.dtype)
    return ops.depthwise_conv(x, kernel, strides=self.strides, padding="valid")

  def compute_output_shape(self, input_shape):
    n, h, w, c = input_shape
    out = lambda size: None if size is None else -(-size // self.strides)
    return (n, out(h), out(w), c)

  def get_config(self) -> dict[str, Any]:
    config = super().get_config()
    config.update(strides=self.strides, filter_size=self.filter_size, padding=self.padding)
    return config
