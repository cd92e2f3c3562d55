"""Nets that cannot see the grid: any functional net rebuilt with
anti-aliased (BlurPool) or adaptive polyphase (APS) downsampling, its
weights kept.

A forensic net trained on crops aligned to the JPEG grid collapses on
misaligned ones (the paper's experiment 1): its strided layers sample the
8x8 blocks at one phase. `rebuild` replaces every strided convolution and
pooling as the two methods say, in any Keras functional model (the compact
nets and the four `keras.applications` nets alike), so the same weights
load into it:

- blur (Zhang, ICML 2019): the layer at stride 1, then `BlurPool`. The
  subsampling is put off through the batch norm and activation that follow
  (Zhang places the blur after the non-linearity); a strided 1x1
  convolution, which samples then mixes channels, is blurred before (as
  Zhang's shortcut). A stride of 2^k is k blurred halvings: Zhang's nets
  only halve, and a wider stride wants a wider blur (one 4-tap filter at
  stride 8 would skip half of each block).
- aps (Chaman and Dokmanić, CVPR 2021): the layer at stride 1, then
  `PolyphaseDownsampling` (one component per image, of all s x s). Where two
  branches subsample and meet again (a residual block), the later one keeps
  the component the earlier one chose, as the authors' ResNets do. With
  `circular=True` every convolution and pooling pads by wrapping around
  (valid ones too, so sizes stay divisible): the net is then exactly
  invariant to circular shifts of its input (tests/test_antialias.py shifts
  each compact net's input by every offset tried).

May import: tfjpeg.core, tfjpeg.layers, tfjpeg.config.
"""

import math
from collections.abc import Callable
from typing import Any

import keras
from keras import layers
from keras.src.models.functional import Functional  # Keras names the class nowhere public

from tfjpeg import config as config_lib
from tfjpeg.core.errors import ConfigError
from tfjpeg.layers.blur_pool import BlurPool
from tfjpeg.layers.circular_padding import CircularPadding2D
from tfjpeg.layers.polyphase import PolyphaseDownsampling

MODES = config_lib.ANTIALIAS
DEFAULT_FILTER = 4  # Zhang's default, [1, 3, 3, 1]

_STRIDED = (
  layers.Conv2D,
  layers.DepthwiseConv2D,
  layers.SeparableConv2D,
  layers.MaxPooling2D,
  layers.AveragePooling2D,
)
# Layers that act on each position alone: a subsampling commutes with them
# (exactly in inference; a batch norm in training sees more positions).
_POINTWISE = (
  layers.BatchNormalization,
  layers.Activation,
  layers.ReLU,
  layers.LeakyReLU,
  layers.ELU,
  layers.PReLU,
  layers.Dropout,
  layers.Add,
  layers.Subtract,
  layers.Multiply,
  layers.Average,
  layers.Maximum,
  layers.Minimum,
)


def _pair(value):
  return tuple(value) if isinstance(value, list | tuple) else (value, value)


def _window(layer) -> tuple[int, int]:
  return _pair(layer.pool_size if hasattr(layer, "pool_size") else layer.kernel_size)


def _stride(layer) -> int:
  """The layer's stride (1 for layers that do not subsample)."""
  if not isinstance(layer, _STRIDED):
    return 1
  strides = _pair(layer.strides)
  if strides[0] != strides[1]:
    raise ConfigError(f"anti-aliasing: {layer.name} strides unevenly {strides}: not supported")
  return int(strides[0])


def _same_pads(window):
  """What "same" adds at stride 1 (TensorFlow's split: the extra pixel after)."""
  return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in window)


class _Rewrite:
  """`keras.models.clone_model`'s clone and call functions for one net."""

  def __init__(self, mode: str, filter_size: int, circular: bool):
    self.mode, self.filter_size, self.circular = mode, filter_size, circular
    self.stride_of: dict[int, int] = {}  # id(cloned layer) -> its original stride
    self.pending: dict[int, int] = {}  # id(tensor at full size) -> stride owed
    self.done: dict[tuple[int, int], Any] = {}  # (id(tensor), stride) -> subsampled
    self.chosen_on: dict[int, tuple[Any, int]] = {}  # id(tensor) -> (APS reference, stride)
    self.keep: list = []  # tensors whose ids are keys: kept alive

  def clone(self, layer):
    if isinstance(layer, keras.Model) and any(_stride(inner) > 1 for inner in layer.layers):
      raise ConfigError(f"anti-aliasing: {layer.name} nests a model that subsamples: rebuild it")
    config = layer.get_config()
    stride = _stride(layer)
    if stride > 1:
      config["strides"] = (1, 1)
    if self.circular and isinstance(layer, _STRIDED) and max(_window(layer)) > 1:
      if config.get("dilation_rate", 1) not in (1, (1, 1), [1, 1]):
        raise ConfigError(f"anti-aliasing: {layer.name} is dilated: not supported")
      config["padding"] = "valid"  # the circular padding goes before it
    new = layer.__class__.from_config(config)
    self.stride_of[id(new)] = stride
    return new

  def _subsample(self, x, stride, reference=None):
    key = (id(x), stride)
    if key in self.done:
      return self.done[key]
    if self.mode == "aps":
      down = PolyphaseDownsampling(stride)
      out = down(x if reference is None else [x, reference])
      self.chosen_on[id(out)] = (x if reference is None else reference, stride)
    else:
      out = x
      halvings = int(math.log2(stride)) if stride & (stride - 1) == 0 else 0
      for step in [2] * halvings or [stride]:
        out = BlurPool(step, self.filter_size, padding="circular" if self.circular else "reflect")(
          out
        )
    self.done[key] = out
    self.keep += [x, out]
    return out

  def _resolve(self, x, siblings=()):
    """`x` subsampled if it owes a subsampling; with APS, at the component a
    sibling input's branch chose where one did so on a map of x's size."""
    stride = self.pending.get(id(x))
    if stride is None:
      return x
    reference = None
    if self.mode == "aps" and (id(x), stride) not in self.done:
      for other in siblings:
        chosen = self.chosen_on.get(id(other))
        if chosen and chosen[1] == stride and tuple(chosen[0].shape[1:3]) == tuple(x.shape[1:3]):
          reference = chosen[0]
          break
    return self._subsample(x, stride, reference)

  def call(self, layer, *args, **kwargs):
    flat = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
    owed = {self.pending[id(t)] for t in flat if id(t) in self.pending}
    stride = self.stride_of.get(id(layer), 1)
    if isinstance(layer, _POINTWISE) and owed and all(id(t) in self.pending for t in flat):
      if len(owed) == 1:  # done at full size, subsampled later
        out = layer(*args, **kwargs)
        self._mark(out, flat, pending=owed.pop())
        return out
    resolved = [t for t in flat if id(t) not in self.pending]
    args, kwargs = keras.tree.map_structure(
      lambda t: self._resolve(t, resolved) if isinstance(t, keras.KerasTensor) else t,
      (args, kwargs),
    )
    window = _window(layer) if isinstance(layer, _STRIDED) else (1, 1)
    if stride > 1 and max(window) == 1:  # sampling, then a pointwise op: sample first
      args = (self._subsample(args[0], stride),) + tuple(args[1:])
      stride = 1
    if self.circular and max(window) > 1:
      args = (CircularPadding2D(_same_pads(window))(args[0]),) + tuple(args[1:])
    out = layer(*args, **kwargs)
    inputs = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
    self._mark(out, inputs, pending=stride if stride > 1 else None)
    return out

  def _mark(self, out, inputs, pending):
    for t in keras.tree.flatten(out):
      self.keep.append(t)
      if pending:
        self.pending[id(t)] = pending
      for source in inputs:  # the branch's last APS choice travels with it
        if id(source) in self.chosen_on:
          self.chosen_on[id(t)] = self.chosen_on[id(source)]
          break


def check(mode: str, filter_size: int) -> None:
  """Refuses, in one line, an anti-aliasing the nets cannot take."""
  if mode not in MODES:
    raise ConfigError(f"--antialias: {mode!r} is none of {', '.join(MODES)}")
  top = config_lib.MAX_ANTIALIAS_FILTER
  whole = not isinstance(filter_size, bool) and isinstance(filter_size, int)
  if not whole or not 1 <= filter_size <= top:
    raise ConfigError(f"--antialias_filter: {filter_size!r} is not a whole number in 1..{top}")


def rebuild(
  model: keras.Model, mode: str, filter_size: int = DEFAULT_FILTER, circular: bool = False
) -> keras.Model:
  """`model` (a functional Keras model) with every strided convolution and
  pooling replaced as `mode` says ("blur" or "aps"; "none" returns `model`),
  carrying `model`'s weights, layer by layer. `circular` pads every
  convolution and pooling by wrapping around (see the module's docstring)."""
  check(mode, filter_size)
  if mode == "none":
    return model
  if not isinstance(model, Functional):  # Sequential and subclassed models included
    raise ConfigError(f"anti-aliasing takes a functional model; {model.name} is not one")
  rewrite = _Rewrite(mode, filter_size, circular)
  rebuilt = keras.models.clone_model(
    model, clone_function=rewrite.clone, call_function=rewrite.call
  )
  if any(id(t) in rewrite.pending for t in keras.tree.flatten(rebuilt.outputs)):
    raise ConfigError(f"anti-aliasing: {model.name} ends in a subsampling: nothing to defer it to")
  for layer in model.layers:
    if layer.weights:
      rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
  return rebuilt


def builder(build: Callable, mode: str, filter_size: int, circular: bool) -> Callable:
  """A net builder (input_shape, num_classes, weights) -> model, rebuilt."""

  def build_rebuilt(input_shape, num_classes, weights):
    return rebuild(build(input_shape, num_classes, weights), mode, filter_size, circular)

  return build_rebuilt
