"""Circular (wrap-around) padding as a Keras layer, and the padding indices
the shift-invariant layers share.

Keras pads convolutions with zeros only. Zeros make a net's output depend
on where the image's content sits relative to its border, so no net with
them is exactly invariant to circular shifts; a convolution that pads by
wrapping around commutes with them (Chaman and Dokmanić, CVPR 2021, need
it for APS's exact invariance). The padding is a gather along each axis,
so it runs on every backend and exports to ONNX as a `Gather`.
"""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from tfjpeg.core.errors import ConfigError

PAD_MODES = ("circular", "reflect", "zeros")

Pads = tuple[tuple[int, int], tuple[int, int]]


def pad_indices(size: Any, before: int, after: int, mode: str) -> Any:
  """Indices into an axis of `size` elements that pad it by `before` and
  `after`: wrapped around ("circular"), or mirrored without repeating the
  edge ("reflect", numpy's, folded again where a pad exceeds the axis, so a
  1-pixel map pads too). `size` may be a tensor (a dynamic axis)."""
  index = ops.arange(-before, size + after)
  if mode == "circular":
    return ops.mod(index, size)
  period = ops.maximum(2 * size - 2, 1)
  folded = ops.mod(index, period)
  return ops.where(folded < size, folded, period - folded)


def pad(x: Any, pads: Pads, mode: str) -> Any:
  """`x` (N, H, W, C) padded by ((top, bottom), (left, right)) in `mode`."""
  (top, bottom), (left, right) = pads
  if mode == "zeros":
    return ops.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
  shape = ops.shape(x)
  if top or bottom:
    x = ops.take(x, pad_indices(shape[1], top, bottom, mode), axis=1)
  if left or right:
    x = ops.take(x, pad_indices(shape[2], left, right, mode), axis=2)
  return x


def pads_of(padding: Any, owner: str) -> Pads:
  """An int, (rows, columns) or ((top, bottom), (left, right)) as the last."""

  def amount(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      raise ConfigError(f"{owner}: padding must be whole numbers of pixels >= 0, got {padding!r}")
    return int(value)

  if isinstance(padding, int) and not isinstance(padding, bool):
    return ((amount(padding),) * 2, (amount(padding),) * 2)
  if isinstance(padding, Sequence) and len(padding) == 2:
    if all(isinstance(p, int) for p in padding):
      return ((amount(padding[0]),) * 2, (amount(padding[1]),) * 2)
    if all(isinstance(p, Sequence) and len(p) == 2 for p in padding):
      (top, bottom), (left, right) = padding
      return ((amount(top), amount(bottom)), (amount(left), amount(right)))
  raise ConfigError(
    f"{owner}: padding must be an int, (rows, columns) or ((top, bottom), (left, right)), "
    f"got {padding!r}"
  )


@keras.saving.register_keras_serializable(package="tfjpeg")
class CircularPadding2D(keras.layers.Layer):
  """Pads feature maps (N, H, W, C) by wrapping them around: the rows past
  the bottom are the top rows, and so on, as `numpy.pad(mode="wrap")`.

  ```python
  x = tfjpeg.layers.CircularPadding2D(1)(x)   # then a 3x3 convolution,
  x = keras.layers.Conv2D(32, 3)(x)           # padding="valid": a circular one
  ```

  A convolution after it is circular: shifting its input circularly shifts
  its output alike, which exact invariance to circular shifts needs
  (zero padding breaks it at every border).

  Args:
    padding: an int (every side), (rows, columns) (each side of each axis)
      or ((top, bottom), (left, right)).
    **kwargs: Keras's own (`name`, `dtype`).
  """

  def __init__(self, padding: Any = 1, **kwargs: Any):
    super().__init__(**kwargs)
    self.padding = pads_of(padding, type(self).__name__)

  def call(self, inputs):
    return pad(inputs, self.padding, "circular")

  def compute_output_shape(self, input_shape):
    (top, bottom), (left, right) = self.padding
    n, h, w, c = input_shape
    return (
      n,
      None if h is None else h + top + bottom,
      None if w is None else w + left + right,
      c,
    )

  def get_config(self) -> dict[str, Any]:
    config = super().get_config()
    config.update(padding=[list(p) for p in self.padding])
    return config
