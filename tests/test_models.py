"""tfjpeg.models.nets: every registered net builds, takes a training step, has a pinned size;
the keras.applications nets' weights load into their anti-aliased rebuilds."""

import keras
import numpy as np
import pytest

from tfjpeg.models import antialias
from tfjpeg.models import nets

# Parameter counts for 4 classes (no-top backbones + a new 4-way head).
PARAMS = {
  "efficientnetb0": 4_054_695,
  "efficientnetb4": 17_680_995,
  "resnet50": 23_595_908,
  "xception": 20_869_676,
  "bondi": 338_836,
  "bayar": 97_893,
  "hpf": 141_485,
  "plain": 94_660,
  "minimal": 140_973,
}


def test_every_registered_net_is_pinned():
  assert set(PARAMS) == set(nets.NETS)


@pytest.mark.parametrize("name", sorted(nets.NETS))
def test_builds_and_takes_a_training_step(name, tmp_path):
  size = nets.NETS[name].min_patch
  model = nets.build(name, size, 4)
  assert model.count_params() == PARAMS[name]
  # Eager: one real step without tracing graphs of hundreds of layers (minutes
  # on a 2-core CPU for the four ImageNet nets).
  model.compile(
    optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", run_eagerly=True
  )
  x = np.random.default_rng(0).integers(0, 256, (4, size, size, 3)).astype("uint8")
  before = [w.copy() for w in model.get_weights()]
  loss = model.train_on_batch(x, np.arange(4))
  assert np.isfinite(loss)
  assert any(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights()))
  probabilities = np.asarray(model(x))
  np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
  if name in REBUILT_AS:
    _imagenet_weights_load_into_its_rebuild(model, x, tmp_path, REBUILT_AS[name])


# Each ImageNet net's anti-aliased rebuild, one mode each (a rebuild of a
# few hundred layers takes seconds): APS where residual branches subsample
# (their two choices must agree), blur for the EfficientNets.
REBUILT_AS = {
  "resnet50": "aps",
  "xception": "aps",
  "efficientnetb0": "blur",
  "efficientnetb4": "blur",
}


def test_every_imagenet_net_is_rebuilt():
  assert set(REBUILT_AS) == {n for n, spec in nets.NETS.items() if not spec.compact}


def _imagenet_weights_load_into_its_rebuild(model, x, tmp_path, mode):
  """The plain backbone's weights file (what --weights=imagenet reads) loads
  into its rebuild (tfjpeg.models.antialias): each strided layer replaced,
  no weight added or moved. Offline: the trained plain backbone stands in
  for ImageNet's file."""
  (backbone,) = [layer for layer in model.layers if isinstance(layer, keras.Model)]
  path = str(tmp_path / "plain.weights.h5")
  backbone.save_weights(path)
  rebuilt = antialias.rebuild(backbone, mode)
  for weight in rebuilt.weights:
    weight.assign(np.zeros(weight.shape, weight.dtype))
  rebuilt.load_weights(path)
  for a, b in zip(backbone.weights, rebuilt.weights, strict=True):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{mode} {a.path}")
  strided = [
    layer.name
    for layer in rebuilt.layers
    if tuple(np.atleast_1d(getattr(layer, "strides", 1))) not in ((1,), (1, 1))
  ]
  kind = "blur_pool" if mode == "blur" else "polyphase_downsampling"
  assert strided and all(n.startswith(kind) for n in strided), strided
  assert rebuilt(x).shape == (len(x), backbone.output_shape[-1])


@pytest.mark.parametrize("name", ["bondi", "bayar", "hpf", "plain"])
def test_compact_nets_take_any_patch_of_at_least_64(name):
  assert nets.build(name, 96, 3).output_shape == (None, 3)
  with pytest.raises(ValueError, match="at least 64x64"):
    nets.build(name, 48, 3)


def test_bayar_constraint_holds_after_steps():
  keras.utils.set_random_seed(0)  # the same weights whatever ran before
  model = nets.build("bayar", 64, 2)
  model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
  x = np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3)).astype("uint8")
  for _ in range(2):
    model.train_on_batch(x, np.array([0, 1, 0, 1]))
  kernel = model.get_layer("constrained").kernel.numpy()
  np.testing.assert_allclose(kernel[2, 2], -1.0, atol=1e-6)
  # (+1) + (-1), to float32 precision at the scale of the projected weights.
  scale = np.abs(kernel).sum(axis=(0, 1))
  assert (np.abs(kernel.sum(axis=(0, 1))) <= 1e-5 * scale).all()


def test_imagenet_weights_offline_name_the_file(tmp_path, monkeypatch):
  monkeypatch.setenv("KERAS_HOME", str(tmp_path))
  with pytest.raises(
    FileNotFoundError,
    match=r"put resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 .* at " + str(tmp_path),
  ):
    nets.build("resnet50", 64, 2, weights="imagenet")
  with pytest.raises(FileNotFoundError, match="nope.h5 does not exist"):
    nets.build("hpf", 64, 2, weights=str(tmp_path / "nope.h5"))


def test_weights_from_a_file(tmp_path):
  model = nets.build("hpf", 64, 2)
  path = str(tmp_path / "w.weights.h5")
  model.save_weights(path)
  again = nets.build("hpf", 64, 2, weights=path)
  for a, b in zip(model.get_weights(), again.get_weights()):
    np.testing.assert_array_equal(a, b)


def test_unknown_net_is_named():
  with pytest.raises(ValueError, match="'vgg' is no registered net.*hpf"):
    nets.build("vgg", 64, 2)


def test_precise_batch_norm_averages_the_batch_statistics():
  inner = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.BatchNormalization(momentum=0.9)])
  model = keras.Sequential([keras.Input((4, 4, 2)), inner, keras.layers.Dense(3)])
  norm = inner.layers[0]
  rng = np.random.default_rng(0)
  batches = [rng.normal(loc=k, scale=1 + k, size=(8, 4, 4, 2)).astype("float32") for k in range(5)]
  gamma = norm.gamma.numpy().copy()
  assert nets.precise_batch_norm(model, iter(batches)) == 5
  np.testing.assert_allclose(
    norm.moving_mean.numpy(), np.mean([b.mean(axis=(0, 1, 2)) for b in batches], 0), rtol=1e-5
  )
  np.testing.assert_allclose(
    norm.moving_variance.numpy(), np.mean([b.var(axis=(0, 1, 2)) for b in batches], 0), rtol=1e-4
  )
  assert norm.momentum == 0.9
  np.testing.assert_array_equal(norm.gamma.numpy(), gamma)
  plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
  assert nets.precise_batch_norm(plain, iter([np.zeros((2, 4), "float32")])) == 0
