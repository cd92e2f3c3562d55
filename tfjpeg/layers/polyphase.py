"""Adaptive polyphase sampling (APS; Chaman and Dokmanić, "Truly
shift-invariant convolutional neural networks", CVPR 2021) as a Keras layer.

Subsampling by s keeps one of s x s polyphase components (the pixels at
rows dy, dy + s, ... and columns dx, dx + s, ...); a plain strided layer
always keeps (0, 0), so a one-pixel shift of the input hands the net another
component. APS keeps, for each image, the component of largest norm: shift
the input circularly and the same values win, moved, so a net of circular
convolutions, APS and global pooling gives the same output for every
circular shift, exactly. A public Keras port (nicholausdy/
Adaptive-Polyphase-Sampling-Keras) chooses one component for the whole
batch; here each image gets its own, as the authors' code does.
"""

from typing import Any

import keras
from keras import ops

from tfjpeg.core.errors import ConfigError
from tfjpeg.layers import blur_pool

NORMS = ("l2", "l1")


@keras.saving.register_keras_serializable(package="tfjpeg")
class PolyphaseDownsampling(keras.layers.Layer):
  """Keeps, for each image, the polyphase component of largest norm: a
  subsampling by `strides` that a circular shift of the input does not fool.

  ```python
  # Conv2D(64, 8, strides=8), made invariant to circular shifts:
  x = tfjpeg.layers.CircularPadding2D(((3, 4), (3, 4)))(x)
  x = keras.layers.Conv2D(64, 8)(x)                        # at stride 1
  x = keras.layers.ReLU()(x)
  x = tfjpeg.layers.PolyphaseDownsampling(strides=8)(x)    # 64 components
  ```

  Called on a pair `[x, reference]` (both N x H x W, any channels) it takes
  the component that wins in `reference` from `x`: the two branches of a
  residual block that both subsample must keep the same one (the authors
  choose on the main branch and apply it to the shortcut).

  The choice is made per image (argmax of the norms over rows, columns and
  channels; the first on a tie) and passes no gradient, as in the authors'
  code. H and W not divisible by `strides` are completed by wrapping around
  (the output is ceil(H / strides) x ceil(W / strides), as a strided "same"
  layer's); exact invariance needs them divisible.

  Args:
    strides: the subsampling factor on both axes (strides x strides
      components).
    norm: "l2" (the authors' default) or "l1".
    **kwargs: Keras's own (`name`, `dtype`).
  """

  def __init__(self, strides: int = 2, norm: str = "l2", **kwargs: Any):
    super().__init__(**kwargs)
    owner = type(self).__name__
    self.strides = blur_pool.check_strides(strides, owner)
    if norm not in NORMS:
      raise ConfigError(f"{owner}: norm must be one of {', '.join(NORMS)}, got {norm!r}")
    self.norm = norm

  def _components(self, x):
    """(N, s * s, H / s, W / s, C): component dy * s + dx is x[:, dy::s, dx::s]."""
    s = self.strides
    padded = x
    for axis in (1, 2):  # wrapped around up to a multiple of s
      size = ops.shape(padded)[axis]
      if not isinstance(size, int) or size % s:
        index = ops.mod(ops.arange(0, (size + s - 1) // s * s), size)
        padded = ops.take(padded, index, axis=axis)
    shape = ops.shape(padded)
    h, w, c = shape[1] // s, shape[2] // s, shape[3]
    parts = ops.reshape(padded, (-1, h, s, w, s, c))
    parts = ops.transpose(parts, (0, 2, 4, 1, 3, 5))
    return ops.reshape(parts, (-1, s * s, h, w, c))

  def _first_largest(self, reference):
    """(N, s * s) int32: 1 at the component each image keeps (the first of
    the largest norms), 0 elsewhere."""
    parts = self._components(reference)
    size = ops.abs(parts) if self.norm == "l1" else ops.square(parts)
    norms = ops.sum(size, axis=(2, 3, 4))
    # Not ops.argmax: Keras's float argmax bitcasts, which ONNX cannot run.
    largest = ops.cast(norms >= ops.max(norms, axis=-1, keepdims=True), "int32")
    return largest * ops.cast(ops.cumsum(largest, axis=-1) == 1, "int32")

  def phases(self, reference: Any) -> Any:
    """(N,) int: the component each image keeps, dy * strides + dx."""
    return ops.argmax(self._first_largest(reference), axis=-1)

  def call(self, inputs):
    if isinstance(inputs, list | tuple):
      x, reference = inputs
    else:
      x = reference = inputs
    choice = ops.stop_gradient(ops.cast(self._first_largest(reference), x.dtype))
    return ops.sum(choice[:, :, None, None, None] * self._components(x), axis=1)

  def compute_output_shape(self, input_shape):
    if isinstance(input_shape, list) or (
      isinstance(input_shape, tuple) and input_shape and isinstance(input_shape[0], tuple | list)
    ):
      input_shape = input_shape[0]
    n, h, w, c = input_shape
    out = lambda size: None if size is None else -(-size // self.strides)
    return (n, out(h), out(w), c)

  def get_config(self) -> dict[str, Any]:
    config = super().get_config()
    config.update(strides=self.strides, norm=self.norm)
    return config
