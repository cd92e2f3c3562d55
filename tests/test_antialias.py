"""tfjpeg.models.antialias and --antialias: every compact net rebuilt with
BlurPool or APS keeps its weights and loses every stride; APS nets are
exactly invariant to circular shifts (and the check fails when one
downsampling is left plain); a trained toy net's per-offset map is flatter
anti-aliased than plain; the rebuilt nets export as .keras, SavedModel and
ONNX; the setting is checked in one line and travels with a run. (The four
ImageNet nets' weights: tests/test_models.py.)"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg import layers
from tfjpeg.analysis import offsets
from tfjpeg.codec import jpeg
from tfjpeg.core import metrics
from tfjpeg.core.errors import ConfigError
from tfjpeg.data import tasks
from tfjpeg.models import antialias
from tfjpeg.models import nets
from tfjpeg.serving import classifier
from tfjpeg.serving import export

import helpers as testing

COMPACT = sorted(name for name, spec in nets.NETS.items() if spec.compact)
# Subsamplings of each compact net at 64x64 (strided convolutions and pools).
DOWNSAMPLINGS = {"bayar": 3, "bondi": 3, "hpf": 1, "minimal": 1, "plain": 3}
SHIFTS = ((1, 0), (0, 3), (5, 2), (7, 7), (4, 9))


def _patches(count=2, size=64, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3)).astype("float32")


def _largest_change_under_shifts(model, x, shifts=SHIFTS, training=False):
  """The largest change of `model`'s outputs when its input is shifted
  circularly by each of `shifts`, relative to the outputs' scale: one call
  on `x` and its shifted copies together (so each image's choices are its
  own, and batch statistics are those of one set of values)."""
  batch = np.concatenate([x] + [np.roll(x, shift, axis=(1, 2)) for shift in shifts])
  out = np.asarray(model(batch, training=training)).reshape(len(shifts) + 1, len(x), -1)
  return float(np.abs(out[1:] - out[:1]).max() / max(np.abs(out[0]).max(), 1e-12))


def _with_one_plain(model, target):
  """`model` with the downsampling layer `target` replaced by a plain
  subsampling (always the component (0, 0)), weights kept."""

  def clone(layer):
    if layer is target:
      return keras.layers.AveragePooling2D(1, strides=layer.strides)
    return layer.__class__.from_config(layer.get_config())

  plain = keras.models.clone_model(model, clone_function=clone)
  for layer in model.layers:
    if layer.weights:
      plain.get_layer(layer.name).set_weights(layer.get_weights())
  return plain


def test_every_compact_net_is_checked():
  assert set(DOWNSAMPLINGS) == set(COMPACT)


@pytest.mark.parametrize("name", COMPACT)
def test_aps_nets_are_exactly_invariant_to_circular_shifts(name):
  """Circular padding throughout, APS at every subsampling, global pooling:
  the same output for every circular shift, to float tolerance (the norms'
  sums in another order), in inference and with batch statistics; and the
  check has teeth: left plain, any one downsampling breaks it."""
  keras.utils.set_random_seed(0)
  model = nets.build(name, 64, 3, antialias="aps")
  x = _patches()
  assert _largest_change_under_shifts(model, x) < 1e-5
  assert _largest_change_under_shifts(model, x, training=True) < 1e-5
  downsamplings = [
    layer for layer in model.layers if isinstance(layer, layers.PolyphaseDownsampling)
  ]
  assert len(downsamplings) == DOWNSAMPLINGS[name]
  for layer in downsamplings:  # an odd shift moves every plain subsampling's phase
    broken = _with_one_plain(model, layer)
    assert _largest_change_under_shifts(broken, x, shifts=((1, 3), (5, 2))) > 1e-4, layer.name


@pytest.mark.parametrize("mode", ["blur", "aps"])
def test_rebuilt_compact_nets_keep_their_weights_and_lose_every_stride(mode):
  """The rebuild copies the plain net's weights layer by layer; only
  BlurPool (a stride of 8 as three blurred halvings) and APS (one
  subsampling, all 64 components) subsample; shapes that reach global
  pooling are the plain net's with blur, and divisible with APS."""
  for name in COMPACT:
    plain = nets.build(name, 64, 4)
    rebuilt = antialias.rebuild(plain, mode, circular=mode == "aps")
    assert rebuilt.count_params() == plain.count_params()
    for a, b in zip(plain.get_weights(), rebuilt.get_weights(), strict=True):
      np.testing.assert_array_equal(a, b)
    kind = layers.BlurPool if mode == "blur" else layers.PolyphaseDownsampling
    strided = [layer for layer in rebuilt.layers if np.max(getattr(layer, "strides", 1)) > 1]
    assert strided and all(isinstance(layer, kind) for layer in strided), name
    steps = sorted(int(layer.strides) for layer in strided)
    if mode == "blur":
      assert steps == [2] * (3 if name in ("hpf", "minimal") else DOWNSAMPLINGS[name]), name
      assert all(layer.filter_size == 4 and layer.padding == "reflect" for layer in strided)
    else:
      assert steps == ([8] if name in ("hpf", "minimal") else [2, 2, 2]), name
      assert any(isinstance(layer, layers.CircularPadding2D) for layer in rebuilt.layers)
  six = nets.build("hpf", 64, 2, antialias="blur", antialias_filter=6)
  assert {layer.filter_size for layer in six.layers if isinstance(layer, layers.BlurPool)} == {6}


def test_settings_are_checked_in_one_line_and_name_the_run():
  for settings, message in (
    (dict(antialias="lowpass"), "antialias: 'lowpass' is none of none, blur, aps"),
    (dict(antialias_filter=0), "antialias_filter: 0 is not a whole number in 1..16"),
  ):
    with pytest.raises(ConfigError, match=message):
      config_lib.make(**settings)
  with pytest.raises(ConfigError, match="--antialias: 'x' is none of"):
    config_lib.parse("antialias", "x")
  with pytest.raises(ConfigError, match="--antialias: 'lowpass' is none of none, blur, aps"):
    nets.build("hpf", 64, 2, antialias="lowpass")
  assert config_lib.parse("antialias_filter", "5") == 5
  names = {
    mode: config_lib.default_workdir(config_lib.make(antialias=mode, antialias_filter=3))
    for mode in config_lib.ANTIALIAS
  }
  assert "hpf_random" in names["none"] and "hpf-blur3_random" in names["blur"]
  assert "hpf-aps_random" in names["aps"]


def test_a_run_directory_rebuilds_its_net(tmp_path):
  """run.json records the setting (tfjpeg.train.rundir); loading a run, as
  bin/evaluate, bin/export and bin/report do, builds the same net."""
  model = nets.build("minimal", 64, 2, antialias="aps")
  model.save_weights(tmp_path / "best.weights.h5")
  about = dict(
    net="minimal",
    antialias="aps",
    antialias_filter=4,
    patch_size=64,
    num_classes=2,
    class_names=["a", "b"],
    weights="best.weights.h5",
  )
  (tmp_path / "run.json").write_text(json.dumps(about))
  _, loaded = classifier.load_model(str(tmp_path))
  assert any(isinstance(layer, layers.PolyphaseDownsampling) for layer in loaded.layers)
  x = _patches()
  np.testing.assert_array_equal(loaded(x), model(x))


def test_rebuilt_nets_export_to_savedmodel_and_onnx(tmp_path):
  """What bin/export writes, for a net with all three layers (circular
  padding, BlurPool, APS): each file gives the Keras model's probabilities
  (the .keras round trip: tests/test_shift_layers.py)."""
  pytest.importorskip("tf2onnx", reason="tf2onnx (in the test extra) exports to ONNX")
  import onnxruntime  # pylint: disable=g-import-not-at-top

  inputs = keras.Input((64, 64, 3))
  x = layers.CircularPadding2D(1)(keras.layers.Rescaling(1 / 255)(inputs))
  x = layers.BlurPool(2, 4)(keras.layers.Conv2D(4, 3, activation="relu")(x))
  x = layers.PolyphaseDownsampling(4)(keras.layers.Conv2D(4, 3, activation="relu")(x))
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
  x = _patches(3)
  expected = model(x).numpy()  # .keras: tests/test_shift_layers.py
  archive = tf.saved_model.load(export.export(model, ["a", "b"], 64, str(tmp_path / "saved")))
  served = archive.serve_patches(x.astype("uint8"))["probabilities"]  # archive held: its variables
  np.testing.assert_allclose(served.numpy(), expected, atol=1e-5)
  session = onnxruntime.InferenceSession(
    export.export_onnx(model, ["a", "b"], 64, str(tmp_path / "m.onnx"))
  )
  (out,) = session.run(None, {session.get_inputs()[0].name: x})
  np.testing.assert_allclose(out, expected, atol=1e-5)


def _toy(input_shape, num_classes):
  """hpf in small: the fixed high-pass on luma, a 3x3 convolution, then an
  8x8 stride-8 one that sees whole JPEG blocks, batch norm, global pooling."""
  inputs = keras.Input(input_shape)
  x = nets._high_pass(nets.Luminance()(inputs))  # pylint: disable=protected-access
  x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
  x = keras.layers.Conv2D(8, 8, strides=8)(x)
  x = keras.layers.BatchNormalization(momentum=0.8)(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def test_a_trained_blur_net_has_a_flatter_per_offset_map_than_the_plain_net(tmp_path):
  """The 64-phase map of bin/evaluate --per_offset (tfjpeg.analysis.offsets)
  of a toy forensic net trained on grid-aligned crops only (classes: JPEG
  at QF 50 or 90): plain, it is best on the grid and falls off it; blurred,
  its spread over the phases (max minus min) is smaller. Measured on 2
  cores: plain 0.40 (0.85 on the grid), blur 0.05 (0.77 on the grid); with
  other seeds, fewer images or epochs, 0.22-0.45 and 0.05-0.12."""
  patch, per_class = 32, 40
  for label, quality in (("a", 50), ("b", 90)):
    for i in range(per_class):
      image = testing.synthetic_image(64, 64, seed=1000 * (label == "b") + i)
      testing.write_image(tmp_path / label / f"{i}.jpg", image, quality=quality)
  task = tasks.get(
    config_lib.TaskConfig(
      name="folder",
      data_dir=str(tmp_path),
      patch_size=patch,
      test_fraction=0.5,
      validation_fraction=0.0,
    )
  )
  crops, labels = [], []
  for element in task.images("train"):  # every aligned crop of each image
    image = jpeg.decode(element["encoded"]).numpy()
    for y in range(0, 64 - patch + 1, 8):
      for x in range(0, 64 - patch + 1, 8):
        crops.append(image[y : y + patch, x : x + patch])
        labels.append(int(element["label"]))
  crops, labels = np.stack(crops).astype("float32"), np.array(labels)
  config = config_lib.make(task="folder", patch_size=patch, batch_size=64)
  keras.utils.set_random_seed(0)
  plain = _toy((patch, patch, 3), 2)
  blurred = antialias.rebuild(plain, "blur")
  models = {
    "none": keras.Model(plain.inputs, plain.outputs, name="none"),
    "blur": keras.Model(blurred.inputs, blurred.outputs, name="blur"),
  }
  # Both fitted at once, side by side (one traced step instead of two): no
  # weight is shared, so each learns as it would alone.
  both = keras.Model(plain.inputs, [models["none"](plain.inputs), models["blur"](plain.inputs)])
  both.compile(keras.optimizers.Adam(5e-3), ["sparse_categorical_crossentropy"] * 2)
  both.fit(crops, (labels, labels), epochs=4, batch_size=64, verbose=0)
  spread = {}
  for mode, model in models.items():
    grid = metrics.offset_map(offsets.analyse(model, task, config, period=8))
    assert grid[0, 0] >= 0.7, (mode, grid[0, 0])  # both learn the task on the grid
    spread[mode] = float(np.nanmax(grid) - np.nanmin(grid))
  assert spread["blur"] < spread["none"] - 0.1, spread


def test_rebuild_refuses_what_it_cannot_rebuild():
  inner = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, strides=2)])
  with pytest.raises(ConfigError, match="takes a functional model"):
    antialias.rebuild(inner, "blur")
  inputs = keras.Input((8, 8, 1))
  outer = keras.Model(inputs, keras.layers.Flatten()(inner(inputs)))
  with pytest.raises(ConfigError, match="nests a model that subsamples"):
    antialias.rebuild(outer, "blur")
  ends = keras.Model(inputs, keras.layers.Conv2D(2, 3, strides=2)(inputs))
  with pytest.raises(ConfigError, match="ends in a subsampling"):
    antialias.rebuild(ends, "aps")
  assert antialias.rebuild(ends, "none") is ends
