"""The net registry: name -> keras.Model taking RGB patches with values 0..255.

Each model carries its own input preprocessing, so the pipeline, the evaluation
and the exported SavedModel all feed the same raw pixels.

  efficientnetb0, efficientnetb4, resnet50, xception   keras.applications, new head
  bondi    Bondi et al., IEEE SPL 2017: compact camera-model CNN for 64x64 patches
  bayar    Bayar & Stamm, IEEE TIFS 2018: constrained-convolution front end
  hpf      fixed high-pass residual front end (SRM-style), no early pooling
  plain    a plain small CNN for content (vision) tasks
  minimal  the reference baseline's net: hpf's front end without batch norm,
           a 1x1 convolution to class scores, global pooling

Every net also comes anti-aliased (`antialias="blur"`) or with adaptive
polyphase sampling (`antialias="aps"`, circular padding in the compact nets:
exactly invariant to circular shifts), the same weights loading into it
(`tfjpeg.models.antialias`).
"""

import dataclasses
import functools
import os
from collections.abc import Callable

import keras
import numpy as np
from keras import layers
from keras import ops

from tfjpeg import config as config_lib
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import MissingError
from tfjpeg.models import antialias as antialias_lib


@dataclasses.dataclass(frozen=True)
class NetSpec:
  # (input_shape, num_classes, weights) -> keras.Model (logits-free softmax); the
  # keras.applications nets also take `backbone`, what their backbone becomes.
  build: Callable
  min_patch: int
  compact: bool  # trains on a CPU
  imagenet_file: str = ""  # Keras cache file of the no-top ImageNet weights
  made_for: str = "any"  # "forensic" or "vision" for the compact nets


# ---------------------------------------------------------------- preprocessing


@keras.saving.register_keras_serializable(package="tfjpeg")
class CaffePreprocess(layers.Layer):
  """RGB 0..255 to BGR minus the ImageNet mean: what ResNet50's weights expect."""

  def call(self, x):
    x = ops.flip(ops.cast(x, self.compute_dtype), axis=-1)
    return x - ops.convert_to_tensor([103.939, 116.779, 123.68], self.compute_dtype)


@keras.saving.register_keras_serializable(package="tfjpeg")
class Luminance(layers.Layer):
  """RGB 0..255 to luma (BT.601, as JPEG's Y channel), kept in 0..255."""

  def call(self, x):
    w = ops.convert_to_tensor([[0.299], [0.587], [0.114]], self.compute_dtype)
    return ops.matmul(ops.cast(x, self.compute_dtype), w)


@keras.saving.register_keras_serializable(package="tfjpeg")
class BayarConstraint(keras.constraints.Constraint):
  """Prediction-error filters: centre -1, the other weights sum to 1 (per 2-D kernel)."""

  def __call__(self, w):
    kh, kw = w.shape[0], w.shape[1]
    centre = np.zeros((kh, kw, 1, 1), np.float32)
    centre[kh // 2, kw // 2] = 1.0
    centre = ops.convert_to_tensor(centre, w.dtype)
    w = w * (1.0 - centre)
    total = ops.sum(w, axis=(0, 1), keepdims=True)
    total = ops.where(ops.abs(total) < 1e-8, ops.ones_like(total), total)
    return w / total - centre


# ------------------------------------------------------------------ applications


def _application(constructor_name, preprocess):
  def build(input_shape, num_classes, weights, backbone=None):
    constructor = getattr(keras.applications, constructor_name)
    inputs = keras.Input(input_shape, name="patch")
    x = preprocess(inputs) if preprocess else inputs
    net = constructor(include_top=False, weights=weights, input_shape=input_shape, pooling="avg")
    x = (backbone or (lambda plain: plain))(net)(x)
    outputs = layers.Dense(
      num_classes, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name=constructor_name.lower())

  return build


# ------------------------------------------------------------------ compact nets

# Compact nets run few steps per epoch on a CPU: Keras's default 0.99 leaves the
# moving statistics far behind the weights, and validation swings wildly.
_BN_MOMENTUM = 0.9


def _bondi(input_shape, num_classes, weights):
  """Bondi, Baroffio, Güera, Bestagini, Delp, Tubaro, IEEE SPL 24(3), 2017.

  Four convolutions (32 4x4, 48 5x5, 64 5x5, 128 5x5), max pooling after the
  first three, ReLU only after the fourth, a 128-unit dense layer and the
  classifier. Caffe pooling rounds up: `padding="same"` keeps a 64x64 input
  valid down to the last 5x5 convolution. Inputs scaled to [0, 1] as published.
  """
  del weights
  inputs = keras.Input(input_shape, name="patch")
  x = layers.Rescaling(1.0 / 255.0)(inputs)
  x = layers.Conv2D(32, 4)(x)
  x = layers.MaxPool2D(2, padding="same")(x)
  x = layers.Conv2D(48, 5)(x)
  x = layers.MaxPool2D(2, padding="same")(x)
  x = layers.Conv2D(64, 5)(x)
  x = layers.MaxPool2D(2, padding="same")(x)
  x = layers.Conv2D(128, 5, activation="relu")(x)
  x = layers.GlobalAveragePooling2D()(x)  # 1x1 at 64x64; any larger patch averages
  x = layers.Dense(128, activation="relu")(x)
  outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(
    x
  )
  return keras.Model(inputs, outputs, name="bondi")


def _bayar(input_shape, num_classes, weights):
  """Bayar & Stamm, "Constrained convolutional neural networks", IEEE TIFS 13(11), 2018.

  The first layer learns prediction-error filters: each 5x5 kernel has centre
  -1 and its other weights sum to 1, re-projected after every step (a Keras
  kernel constraint), so the net sees residuals rather than content. Then, as
  in the paper, 7x7 and 5x5 convolutions with batch norm, tanh and pooling, a
  1x1 convolution, and dense layers; scaled down for 64x64 CPU work.
  """
  del weights
  inputs = keras.Input(input_shape, name="patch")
  x = layers.Conv2D(
    3, 5, padding="same", use_bias=False, kernel_constraint=BayarConstraint(), name="constrained"
  )(inputs)
  x = layers.Conv2D(48, 7, strides=2, padding="same")(x)
  x = layers.BatchNormalization(momentum=_BN_MOMENTUM)(x)
  x = layers.Activation("tanh")(x)
  x = layers.MaxPool2D(3, strides=2, padding="same")(x)
  x = layers.Conv2D(64, 5, padding="same")(x)
  x = layers.BatchNormalization(momentum=_BN_MOMENTUM)(x)
  x = layers.Activation("tanh")(x)
  x = layers.MaxPool2D(3, strides=2, padding="same")(x)
  x = layers.Conv2D(64, 1)(x)
  x = layers.BatchNormalization(momentum=_BN_MOMENTUM)(x)
  x = layers.Activation("tanh")(x)
  x = layers.GlobalAveragePooling2D()(x)
  x = layers.Dense(128, activation="tanh")(x)
  outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(
    x
  )
  return keras.Model(inputs, outputs, name="bayar")


def _high_pass(luma):
  """The fixed 3x3 second-derivative (Laplacian) residual of luma."""
  laplacian = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], np.float32) / 4.0
  return layers.Conv2D(
    1,
    3,
    use_bias=False,
    trainable=False,
    name="high_pass",
    kernel_initializer=keras.initializers.Constant(laplacian[..., None, None]),
  )(luma)


def _hpf(input_shape, num_classes, weights):
  """Fixed high-pass residual front end, then full-resolution convolutions.

  Forensic traces live in the high frequencies that generic nets discard:
  rescaling and early pooling leave them at chance. Following the SRM idea
  (Fridrich & Kodovsky, IEEE TIFS 2012) and its use as the fixed first layer of
  forensic CNNs, this net takes luma in 0..255, applies a fixed 3x3
  second-derivative (Laplacian) filter, runs two 3x3 convolutions at full
  resolution, then an 8x8 stride-8 convolution that sees whole JPEG blocks,
  global average pooling and the classifier.
  """
  del weights
  inputs = keras.Input(input_shape, name="patch")
  x = _high_pass(Luminance()(inputs))
  x = layers.Conv2D(32, 3, padding="same")(x)
  x = layers.BatchNormalization(momentum=_BN_MOMENTUM)(x)
  x = layers.ReLU()(x)
  x = layers.Conv2D(32, 3, padding="same")(x)
  x = layers.BatchNormalization(momentum=_BN_MOMENTUM)(x)
  x = layers.ReLU()(x)
  x = layers.Conv2D(64, 8, strides=8)(x)
  x = layers.BatchNormalization(momentum=_BN_MOMENTUM)(x)
  x = layers.ReLU()(x)
  x = layers.GlobalAveragePooling2D()(x)
  outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(
    x
  )
  return keras.Model(inputs, outputs, name="hpf")


def _minimal(input_shape, num_classes, weights):
  """The reference baseline's minimal forensic CNN (`tfjpeg.train.baseline`).

  Fixed 3x3 Laplacian on luma (0..255), two 3x3 convolutions at full
  resolution, an 8x8 stride-8 convolution, a 1x1 convolution to one score map
  per class, global average pooling: no batch norm, nothing learned on the
  statistics of a batch.
  """
  del weights
  inputs = keras.Input(input_shape, name="patch")
  x = _high_pass(Luminance()(inputs))
  x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
  x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
  x = layers.Conv2D(64, 8, strides=8, activation="relu")(x)
  x = layers.Conv2D(num_classes, 1)(x)
  x = layers.GlobalAveragePooling2D()(x)
  outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
  return keras.Model(inputs, outputs, name="minimal")


def _plain(input_shape, num_classes, weights):
  """A plain small CNN for content (vision) tasks on a CPU.

  Input scaled to [0, 1], 3x3 convolutions with batch norm, pooling after
  each stage: it sees shapes and objects, and, like other generic nets,
  discards the fine detail forensic tasks live in. The compact counterpart of
  the ImageNet nets for the built-in vision task.
  """
  del weights
  inputs = keras.Input(input_shape, name="patch")
  x = layers.Rescaling(1.0 / 255.0)(inputs)
  for filters in (32, 64, 128):
    x = layers.Conv2D(filters, 3, padding="same")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM)(x)
    x = layers.ReLU()(x)
    x = layers.MaxPool2D(2)(x)
  x = layers.GlobalAveragePooling2D()(x)
  outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(
    x
  )
  return keras.Model(inputs, outputs, name="plain")


_MIN = config_lib.NET_MIN_PATCH
NETS = {
  "efficientnetb0": NetSpec(
    _application("EfficientNetB0", None), _MIN["efficientnetb0"], False, "efficientnetb0_notop.h5"
  ),
  "efficientnetb4": NetSpec(
    _application("EfficientNetB4", None), _MIN["efficientnetb4"], False, "efficientnetb4_notop.h5"
  ),
  "resnet50": NetSpec(
    _application("ResNet50", CaffePreprocess()),
    _MIN["resnet50"],
    False,
    "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
  ),
  "xception": NetSpec(
    _application("Xception", layers.Rescaling(1 / 127.5, offset=-1.0)),
    _MIN["xception"],
    False,
    "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
  ),
  "bondi": NetSpec(_bondi, _MIN["bondi"], True, made_for="forensic"),
  "bayar": NetSpec(_bayar, _MIN["bayar"], True, made_for="forensic"),
  "hpf": NetSpec(_hpf, _MIN["hpf"], True, made_for="forensic"),
  "plain": NetSpec(_plain, _MIN["plain"], True, made_for="vision"),
  "minimal": NetSpec(_minimal, _MIN["minimal"], True, made_for="forensic"),
}
DEFAULT_NET = "hpf"


def _batch_norms(layer):
  found = [layer] if isinstance(layer, layers.BatchNormalization) else []
  for child in getattr(layer, "layers", []):
    found += _batch_norms(child)
  return found


def precise_batch_norm(model, batches):
  """Sets every batch-norm layer's moving mean and variance to the average of
  its batch statistics over `batches` (image batches of the training data):
  the "precise BN" of Wu & Johnson, "Rethinking 'Batch' in BatchNorm" (2021).
  Weights are untouched. Returns the number of batches used."""
  norms = _batch_norms(model)
  momenta = [norm.momentum for norm in norms]
  count = 0
  try:
    for count, images in enumerate(batches, 1):
      if not norms:
        break
      for norm in norms:  # a running mean: batch k weighs 1/k
        norm.momentum = (count - 1) / count
      model(images, training=True)
  finally:
    for norm, momentum in zip(norms, momenta):
      norm.momentum = momentum
  return count if norms else 0


def keras_cache_dir():
  return os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")


def resolve_weights(name, weights):
  """Maps --weights (imagenet | none | PATH) to what Keras takes, offline.

  Raises:
    FileNotFoundError: the ImageNet file is not in the Keras cache, or PATH is
      missing; the message says which file to put where.
  """
  spec = NETS[name]
  if weights in (None, "", "none"):
    return None
  if weights == "imagenet":
    if not spec.imagenet_file:
      raise ConfigError(f"{name} has no ImageNet weights; use --weights=none or a file")
    path = os.path.join(keras_cache_dir(), spec.imagenet_file)
    if not os.path.exists(path):
      raise MissingError(
        f"ImageNet weights for {name} are not in the Keras cache and there is no "
        f"network: put {spec.imagenet_file} (from https://storage.googleapis.com/"
        f"tensorflow/keras-applications/) at {path}, or pass --weights=PATH or "
        f"--weights=none"
      )
    return path
  if not os.path.exists(weights):
    raise MissingError(f"weights file {weights} does not exist")
  return weights


def build(
  name: str,
  patch_size: int,
  num_classes: int,
  weights: str = "none",
  antialias: str = "none",
  antialias_filter: int = antialias_lib.DEFAULT_FILTER,
) -> keras.Model:
  """The registered net `name` for `patch_size` patches and `num_classes`
  classes; `antialias` "blur" or "aps" rebuilds its downsampling
  (`tfjpeg.models.antialias`), `antialias_filter` the blur's taps."""
  if name not in NETS:
    raise ConfigError(f"--net: {name!r} is no registered net ({', '.join(sorted(NETS))})")
  antialias_lib.check(antialias, antialias_filter)
  spec = NETS[name]
  if patch_size < spec.min_patch:
    raise ConfigError(
      f"{name} needs patches of at least {spec.min_patch}x{spec.min_patch} pixels, got {patch_size}"
    )
  path = resolve_weights(name, weights)
  if spec.compact:
    model = spec.build((patch_size, patch_size, 3), num_classes, None)
    # Circular padding where APS's exact invariance is claimed: the compact nets.
    model = antialias_lib.rebuild(model, antialias, antialias_filter, circular=antialias == "aps")
    if path:
      model.load_weights(path)
    return model
  # The ImageNet nets keep their zero padding, which their weights learned.
  backbone = functools.partial(
    antialias_lib.rebuild, mode=antialias, filter_size=antialias_filter, circular=False
  )
  return spec.build((patch_size, patch_size, 3), num_classes, path, backbone=backbone)
