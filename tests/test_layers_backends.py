"""tfjpeg.layers end to end, each in a subprocess: the layers under the JAX
backend (and PyTorch where installed) give the TensorFlow backend's pixels,
in tf.data, on the backend's own arrays, composed in a Pipeline and in a
fitted, saved and loaded model; the training script of docs/keras-layers.md runs as written under
TensorFlow and JAX. (A file of its own: pytest -n 2 runs it beside
tests/test_layers.py.)"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfjpeg import layers

import helpers as testing

_batch = testing.image_batch


BACKEND_SCRIPT = textwrap.dedent(
  """
  import json, sys
  import numpy as np
  import keras
  import tensorflow as tf
  from tfjpeg import layers
  backend = keras.backend.backend()
  images = np.load(sys.argv[1])
  out = {"backend": backend}
  jpeg = layers.RandomJpegQuality(quality_range=(40, 95), seed=3)
  crop = layers.GridCrop(32, mode="aligned", chain="jpeg:50..90", seed=4)
  native = keras.ops.convert_to_tensor(images)  # the backend's own array
  eager = jpeg(native)
  out["eager_is_native"] = type(eager) is type(keras.ops.convert_to_tensor(images[:1]))
  out["eager"] = keras.ops.convert_to_numpy(eager).tolist()
  mapped = tf.data.Dataset.from_tensors(images).map(
      layers.RandomJpegQuality(quality_range=(40, 95), seed=3))
  out["mapped"] = next(iter(mapped)).numpy().tolist()
  out["cropped"] = keras.ops.convert_to_numpy(crop(native)).tolist()
  inputs = keras.Input(images.shape[1:])
  x = layers.GridCrop(32, mode="aligned", seed=2)(layers.JpegCompression(85)(inputs))
  x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(x))
  model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
  model.compile("adam", "sparse_categorical_crossentropy")
  train = tf.data.Dataset.from_tensor_slices((images, np.array([0, 1, 0]))).batch(3)
  model.fit(train, epochs=1, verbose=0)
  model.save(sys.argv[2])
  loaded = keras.models.load_model(sys.argv[2])
  out["predict"] = np.asarray(loaded.predict(images, verbose=0)).tolist()
  out["predict_before"] = np.asarray(model.predict(images, verbose=0)).tolist()
  # Built on an Input of unknown size, inside a Pipeline: Keras traces the
  # backend's model for shapes alone.
  pipeline = keras.layers.Pipeline([
      layers.RandomJpegQuality(quality_range=(50, 90), seed=0), layers.GridCrop(32, seed=0)])
  unknown = keras.Sequential([keras.Input((None, None, 3)), pipeline,
      keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
  unknown.compile("adam", "mse")
  unknown.fit(images, np.zeros((3, 2)), verbose=0)
  out["unknown_shape"] = list(unknown.predict(images, verbose=0).shape)
  # Layers composed in a Pipeline, mapped over tf.data and called eagerly:
  # PyTorch's Keras calls a Pipeline once for shapes first.
  composed = lambda: keras.layers.Pipeline([
      layers.ProcessingChain("resize:0.75", seed=3), layers.GridCrop(48, mode="aligned", seed=5)])
  pipeline = composed()
  mapped = tf.data.Dataset.from_tensor_slices(images).map(pipeline)
  out["pipeline_mapped"] = np.stack([m.numpy() for m in mapped]).tolist()
  out["pipeline_eager"] = keras.ops.convert_to_numpy(composed()(native)).tolist()
  # The layers of shift-invariant nets: plain Keras ops, the backend's own.
  maps = keras.ops.convert_to_tensor(np.linspace(-1, 1, 2 * 9 * 10 * 3).reshape(2, 9, 10, 3))
  out["shift_layers"] = [keras.ops.convert_to_numpy(layer(maps)).tolist() for layer in (
      layers.BlurPool(2, 4), layers.PolyphaseDownsampling(2), layers.CircularPadding2D(1))]
  print(json.dumps(out))
  """
)
# JAX is installed with the tests; PyTorch is not (pip's plain `torch` is a
# CUDA build of several GB): it is checked where it is installed, and said
# skipped elsewhere, CI's fresh environment included.
BACKENDS = [
  "jax",
  pytest.param(
    "torch",
    marks=pytest.mark.skipif(
      importlib.util.find_spec("torch") is None,
      reason="PyTorch is not installed (pip install torch==2.13.0, a CPU build, to check it)",
    ),
  ),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_other_backends_give_the_tensorflow_backends_pixels(tmp_path, backend):
  """Keras's promise for preprocessing layers: the same layer under JAX (and
  PyTorch), in tf.data and on the backend's arrays, and in a model of that
  backend fitted, saved and loaded."""
  images = _batch()
  np.save(tmp_path / "images.npy", images)
  script = tmp_path / "backend_layers.py"
  script.write_text(BACKEND_SCRIPT)
  env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
  done = subprocess.run(
    [sys.executable, str(script), str(tmp_path / "images.npy"), str(tmp_path / "m.keras")],
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert out["backend"] == backend and out["eager_is_native"]
  expected = layers.RandomJpegQuality(quality_range=(40, 95), seed=3)(images).numpy()
  np.testing.assert_array_equal(np.array(out["eager"], np.float32), expected)
  np.testing.assert_array_equal(np.array(out["mapped"], np.float32), expected)
  cropped = layers.GridCrop(32, mode="aligned", chain="jpeg:50..90", seed=4)(images).numpy()
  np.testing.assert_array_equal(np.array(out["cropped"], np.float32), cropped)
  np.testing.assert_allclose(out["predict"], out["predict_before"], rtol=1e-6)
  assert out["unknown_shape"] == [3, 2]
  # Composed: the TensorFlow backend's pixels, as the layers one after the other.
  chain, crop = layers.ProcessingChain("resize:0.75", seed=3), layers.GridCrop(48, seed=5)
  one_by_one = np.stack([crop(chain(image)).numpy() for image in images])
  np.testing.assert_array_equal(np.array(out["pipeline_mapped"], np.float32), one_by_one)
  chain, crop = layers.ProcessingChain("resize:0.75", seed=3), layers.GridCrop(48, seed=5)
  np.testing.assert_array_equal(np.array(out["pipeline_eager"], np.float32), crop(chain(images)))
  maps = np.linspace(-1, 1, 2 * 9 * 10 * 3).reshape(2, 9, 10, 3).astype(np.float32)
  for got, layer in zip(
    out["shift_layers"],
    (layers.BlurPool(2, 4), layers.PolyphaseDownsampling(2), layers.CircularPadding2D(1)),
    strict=True,
  ):
    np.testing.assert_allclose(np.array(got, np.float32), layer(maps), rtol=1e-5, atol=1e-6)


def _docs_script(folder):
  """The training script of docs/keras-layers.md, as written, on `folder`,
  at a small scale: 64 px crops, one epoch, and a small net in the
  EfficientNet's place (building and compiling EfficientNetB0 took most of
  a minute a backend; tests/test_models.py builds and trains every net)."""
  page = (testing.REPO / "docs" / "keras-layers.md").read_text()
  script = page.split("## A training script", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
  efficientnet = (
    "keras.applications.EfficientNetB0("
    "weights=None, input_shape=(size, size, 3), classes=len(classes))"
  )
  small = (
    "keras.Sequential([keras.Input((size, size, 3)), keras.layers.Conv2D(4, 3, strides=2), "
    "keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(len(classes), 'softmax')])"
  )
  for old, new in (
    ('"photos", 224', f'"{folder}", 64'),
    ("epochs=5", "epochs=1"),
    (efficientnet, small),
  ):
    assert old in script, old
    script = script.replace(old, new)
  return script


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_docs_training_script_runs_as_written(tmp_path, backend):
  """A new user's script from docs/keras-layers.md: a folder of JPEG and
  PNG photos of different sizes, an EfficientNet, fit, then a test under
  chains, on the TensorFlow and the JAX backend."""
  for c, name in enumerate(("camera_a", "camera_b")):
    for i in range(5):
      size = (96 + 8 * i, 120 - 4 * i)
      suffix = ".png" if i == 0 else ".jpg"
      testing.write_image(
        tmp_path / "photos" / name / f"{i}{suffix}", testing.synthetic_image(*size, seed=10 * c + i)
      )
  script = tmp_path / "train.py"
  script.write_text(_docs_script(tmp_path / "photos"))
  env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
  done = subprocess.run(
    [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
  )
  assert done.returncode == 0, done.stderr[-3000:]
  printed = [line.split(" ", 1)[0] for line in done.stdout.splitlines() if line.strip()]
  assert printed[-3:] == ["none", "jpeg:75", "resize:0.75>jpeg:90"], done.stdout
