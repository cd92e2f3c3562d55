"""The layers of nets that cannot see the grid (tfjpeg.layers.BlurPool,
PolyphaseDownsampling, CircularPadding2D): each equal to a numpy reference,
eagerly, in `tf.function` and in a `tf.data`-fed model; configs and saved
models round trip; bad arguments in one line. (Other backends:
tests/test_layers_backends.py; the nets they make: tests/test_antialias.py.)"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfjpeg import layers
from tfjpeg.core.errors import ConfigError
from tfjpeg.layers import blur_pool

import helpers as testing

# Every layer, as a user would make it (a registry: each entry is tested).
LAYERS = {
  "blur": lambda: layers.BlurPool(2, 4),
  "blur_3_circular": lambda: layers.BlurPool(3, 5, padding="circular"),
  "blur_zeros": lambda: layers.BlurPool(2, 2, padding="zeros"),
  "aps": lambda: layers.PolyphaseDownsampling(2),
  "aps_4_l1": lambda: layers.PolyphaseDownsampling(4, norm="l1"),
  "circular": lambda: layers.CircularPadding2D(((1, 2), (3, 0))),
}
_NUMPY_MODES = {"reflect": "reflect", "circular": "wrap", "zeros": "constant"}


def _blur_reference(x, layer):
  f = layer.filter_size
  before = (f - 1) // 2
  pads = ((0, 0), (before, f - 1 - before), (before, f - 1 - before), (0, 0))
  padded = np.pad(x.astype(np.float64), pads, _NUMPY_MODES[layer.padding])
  kernel = blur_pool.binomial_filter(f).astype(np.float64)
  height, width = padded.shape[1] - f + 1, padded.shape[2] - f + 1
  out = np.zeros((x.shape[0], height, width, x.shape[3]))
  for dy in range(f):
    for dx in range(f):
      out += kernel[dy, dx] * padded[:, dy : dy + height, dx : dx + width]
  return out[:, :: layer.strides, :: layer.strides]


def _aps_reference(x, layer, reference=None):
  s = layer.strides
  reference = x if reference is None else reference
  pads = ((0, 0), (0, -x.shape[1] % s), (0, -x.shape[2] % s), (0, 0))
  x, reference = np.pad(x, pads, "wrap"), np.pad(reference, pads, "wrap")
  outs, phases = [], []
  for image, ref in zip(x, reference):
    size = np.abs if layer.norm == "l1" else np.square
    norms = [size(ref[dy::s, dx::s].astype(np.float64)).sum() for dy in range(s) for dx in range(s)]
    dy, dx = divmod(int(np.argmax(norms)), s)
    outs.append(image[dy::s, dx::s])
    phases.append((dy, dx))
  return np.stack(outs), phases


def _reference(name, x):
  layer = LAYERS[name]()
  if isinstance(layer, layers.BlurPool):
    return _blur_reference(x, layer)
  if isinstance(layer, layers.PolyphaseDownsampling):
    return _aps_reference(x, layer)[0]
  return np.pad(x, ((0, 0), *layer.padding, (0, 0)), "wrap")


def _maps(count=3, size=(14, 17), channels=5, seed=0):
  return np.random.default_rng(seed).normal(size=(count, *size, channels)).astype(np.float32)


@pytest.mark.parametrize("way", testing.WAYS)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_equals_numpy_three_ways(name, way):
  """Sizes that strides do not divide included: APS wraps around, BlurPool
  gives ceil(size / strides) as a strided "same" layer does."""
  x = _maps()
  out = testing.run(lambda t: LAYERS[name]()(t), way, x)
  np.testing.assert_allclose(out, _reference(name, x), rtol=1e-5, atol=1e-5)
  assert out.shape == LAYERS[name]().compute_output_shape(x.shape)


def test_aps_chooses_per_image_and_follows_a_reference():
  """Each image keeps its own component (a batch-wide choice, as a public
  Keras port makes, would fail here), and a reference's choice carries over
  to another map: a residual block's two branches keep the same one."""
  x = _maps(count=6, size=(8, 8), channels=3, seed=1)
  for i in range(6):  # image i: component i % 4 much the largest
    dy, dx = divmod(i % 4, 2)
    x[i, dy::2, dx::2] *= 10
  aps = layers.PolyphaseDownsampling(2)
  expected, phases = _aps_reference(x, aps)
  assert phases == [divmod(i % 4, 2) for i in range(6)]
  np.testing.assert_array_equal(aps(x), expected)
  np.testing.assert_array_equal(aps.phases(x), [i % 4 for i in range(6)])
  other = _maps(count=6, size=(8, 8), channels=7, seed=2)
  np.testing.assert_array_equal(aps([other, x]), _aps_reference(other, aps, x)[0])


def test_aps_is_invariant_to_circular_shifts_and_passes_gradients_to_its_choice():
  x = _maps(count=2, size=(12, 12), channels=4, seed=3)
  aps = layers.PolyphaseDownsampling(3)
  out = aps(x).numpy()
  for shift in ((1, 0), (2, 5), (3, 3)):
    shifted = aps(np.roll(x, shift, axis=(1, 2))).numpy()
    # The same component, rolled: the same values, each image its own.
    for a, b in zip(out, shifted):
      np.testing.assert_array_equal(np.sort(a, axis=None), np.sort(b, axis=None))
  variable = tf.Variable(x)
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(aps(variable))
  gradient = tape.gradient(total, variable).numpy()
  assert gradient.sum() == out.size  # ones on the kept pixels, zeros elsewhere
  np.testing.assert_array_equal(np.unique(gradient), [0.0, 1.0])


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_configs_round_trip(name):
  layer = LAYERS[name]()
  again = type(layer).from_config(layer.get_config())
  x = _maps(count=1, size=(9, 10), channels=2)
  np.testing.assert_array_equal(layer(x), again(x))


def test_in_a_tf_data_fed_model_fitted_saved_and_loaded(tmp_path):
  inputs = keras.Input((16, 16, 3))
  x = layers.CircularPadding2D(1)(inputs)
  x = keras.layers.Conv2D(4, 3, activation="relu")(x)
  x = layers.BlurPool(2, 3)(x)
  x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
  x = layers.PolyphaseDownsampling(2)(x)
  outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
  model = keras.Model(inputs, outputs)
  model.compile("adam", "sparse_categorical_crossentropy")
  images = _maps(count=8, size=(16, 16), channels=3, seed=4)
  data = tf.data.Dataset.from_tensor_slices((images, np.arange(8) % 2)).batch(4)
  model.fit(data, epochs=1, verbose=0, shuffle=False)
  model.save(tmp_path / "m.keras")
  loaded = keras.models.load_model(tmp_path / "m.keras")
  np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0))


@pytest.mark.parametrize(
  "make, message",
  [
    (lambda: layers.BlurPool(0), "strides must be a whole number >= 1, got 0"),
    (lambda: layers.BlurPool(2, 40), r"filter_size must be a whole number in 1..16, got 40"),
    (lambda: layers.BlurPool(2, padding="edge"), "padding must be one of circular, reflect"),
    (lambda: layers.PolyphaseDownsampling(2.5), "strides must be a whole number"),
    (lambda: layers.PolyphaseDownsampling(norm="linf"), "norm must be one of l2, l1"),
    (lambda: layers.CircularPadding2D(-1), "padding must be whole numbers of pixels >= 0"),
    (lambda: layers.CircularPadding2D("one"), r"padding must be an int, \(rows, columns\)"),
  ],
)
def test_bad_arguments_are_one_line(make, message):
  with pytest.raises(ConfigError, match=message) as error:
    make()
  assert "\n" not in str(error.value)
