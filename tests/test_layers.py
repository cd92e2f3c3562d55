"""tfjpeg.layers: every layer equal to libjpeg, Pillow and scipy and to its
function for the same seeds, eagerly, in `tf.function` and in `Dataset.map`,
batched and not; seeds, `training`, dtypes, configs, saved models, Pipelines,
images of different sizes, the grid handed from layer to layer, bad
arguments; the same pixels as bin/train's pipeline. (Other backends and the
docs' training script: tests/test_layers_backends.py.)"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfjpeg
from tfjpeg import layers
from tfjpeg.codec import chain_ops
from tfjpeg.codec import crops
from tfjpeg.codec import grid
from tfjpeg.core import seeds
from tfjpeg.core.errors import ConfigError
from tfjpeg.pipeline import input_pipeline as ip

import helpers as testing

# Every layer, as a user would make it (a registry: each entry is tested).
LAYERS = {
  "jpeg": lambda: layers.JpegCompression(70),
  "jpeg_444": lambda: layers.JpegCompression(95, chroma="4:4:4"),
  "random_jpeg_range": lambda: layers.RandomJpegQuality(
    quality_range=(40, 95), probability=0.7, seed=3
  ),
  "random_jpeg_set": lambda: layers.RandomJpegQuality(qualities=[50, 90], seed=3),
  "chain": lambda: layers.ProcessingChain("resize:0.8/lanczos>blur:0..2@0.5>jpeg:60..95", seed=3),
  "chain_preset": lambda: layers.ProcessingChain("wang2020_blur_jpeg_0.5", seed=3),
  "crop_aligned": lambda: layers.GridCrop(32, mode="aligned", seed=3),
  "crop_random": lambda: layers.GridCrop(32, 40, mode="random", seed=3),
  "crop_misaligned": lambda: layers.GridCrop(32, mode="misaligned", grid=16, seed=3),
  "crop_realigned": lambda: layers.GridCrop(32, mode="realigned", seed=3),
  "crop_through_chain": lambda: layers.GridCrop(
    32, mode="aligned", chain="resize:0.9..1.1>jpeg:50..90", seed=3
  ),
  "resize": lambda: layers.PillowResizing(40, 52, kernel="lanczos"),
  "resize_factor": lambda: layers.PillowResizing(factor=1.5, kernel="hamming"),
  "blur": lambda: layers.ScipyGaussianBlur((0.5, 2.5), probability=0.8, seed=3),
  "blur_fixed": lambda: layers.ScipyGaussianBlur(1.2),
}


_batch = testing.image_batch


def _reference(layer, image, seed):
  """What `layer` makes of one image with `seed`, by tfjpeg's functions."""
  if isinstance(layer, layers.GridCrop):
    size = (layer.height, layer.width)
    if layer.chain.steps:
      chain_seed, crop_seed = seeds.split(seed, 2)
      image, record = chain_ops.apply(image, layer.chain, chain_seed, layer.chroma)
      origin, seed = record["grid_origin"], crop_seed
    else:
      origin = tf.zeros([2], tf.int32)
    if layer.mode == "realigned":
      offset = crops.choose_offset(tf.shape(image)[:2], size, "random", layer.grid, seed)
      found, confidence = grid.estimate(image)
      if confidence >= grid.CONFIDENT:
        offset = grid.realign(offset, found, tf.shape(image)[:2], size)
      return tfjpeg.crop_at(image, size, offset).numpy()
    if layer.mode != "random":
      shift = origin % layer.grid
      image = image[int(shift[0]) :, int(shift[1]) :]
    return tfjpeg.crop(image, size, layer.mode, layer.grid, seed)[0].numpy()
  return tfjpeg.apply_chain(image, layer.chain, seed, layer.chroma)[0].numpy()


def _call(layer, images, way):
  return testing.run(lambda x: layer(x), way, images)


@pytest.mark.parametrize("way", testing.WAYS)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_equals_its_function_three_ways_batched_and_single(name, way):
  images = _batch()
  # A fresh layer's first call draws the seeds its first transformation does.
  transformation = LAYERS[name]().get_random_transformation(images)
  count = len(images)
  image_seeds = transformation["seeds"] if transformation else tf.zeros([count, 2], tf.int64)
  batched = _call(LAYERS[name](), images, way)
  single = _call(LAYERS[name](), images[0], way)
  assert batched.dtype == single.dtype == np.float32
  for i in range(count):
    expected = _reference(LAYERS[name](), images[i], image_seeds[i])
    np.testing.assert_array_equal(batched[i], expected, err_msg=f"{name} image {i}")
  np.testing.assert_array_equal(single, _reference(LAYERS[name](), images[0], image_seeds[0]))


def test_each_layer_equals_libjpeg_pillow_and_scipy():
  images = _batch(4)
  jpeg = layers.JpegCompression(70, dtype="uint8")(images).numpy()
  for image, out in zip(images, jpeg):
    np.testing.assert_array_equal(out, testing.opencv_compress(image, 70))
    np.testing.assert_array_equal(out, testing.pil_compress(image, 70))
  resized = layers.PillowResizing(50, 61, kernel="bicubic", dtype="uint8")(images).numpy()
  for image, out in zip(images, resized):
    np.testing.assert_array_equal(out, testing.pil_resize(image, (50, 61), "bicubic"))
  # Random layers: the draws a dict call returns, done by the libraries.
  for layer in (
    layers.RandomJpegQuality(quality_range=(30, 100), probability=0.5, seed=1, dtype="uint8"),
    layers.ScipyGaussianBlur((0.0, 3.0), probability=0.5, seed=2, dtype="uint8"),
    layers.ProcessingChain("crop:40..70>resize:48x48/auto>jpeg:65..100", seed=4, dtype="uint8"),
  ):
    out = layer({"images": images, "labels": np.arange(4)})
    np.testing.assert_array_equal(out["labels"], np.arange(4))
    for image, result, draws in zip(images, out["images"].numpy(), out["chain_draws"].numpy()):
      np.testing.assert_array_equal(result, testing.chain_by_hand(image, layer.chain, draws))
    assert len({tuple(d) for d in out["chain_draws"].numpy()}) > 1  # each image its own draw


def test_aligned_crops_follow_the_grid_and_misaligned_and_realigned_ones_as_named():
  image = testing.synthetic_image(120, 136, seed=5)
  saved = tfjpeg.compress(image, 80).numpy()
  shifted = saved[3:, 5:]  # the grid now starts at (5, 3)
  for mode, expected in (("aligned", (0, 0)), ("realigned", (0, 0))):
    crop = layers.GridCrop(48, mode=mode, seed=9, dtype="uint8")
    for _ in range(4):
      origin, confidence = grid.estimate(crop(saved).numpy())
      assert confidence >= grid.CONFIDENT and tuple(origin.numpy()) == expected, mode
  realign = layers.GridCrop(48, mode="realigned", seed=9, dtype="uint8")
  for _ in range(4):
    origin, _ = grid.estimate(realign(shifted).numpy())
    assert tuple(origin.numpy()) == (0, 0)  # moved onto the grid it found
  misaligned = layers.GridCrop(48, mode="misaligned", seed=9, dtype="uint8")
  for _ in range(4):
    origin, _ = grid.estimate(misaligned(saved).numpy())
    assert tuple(origin.numpy()) != (0, 0)
  # After a chain whose crop moved the grid, aligned crops follow it.
  chain = layers.ProcessingChain("jpeg:70>crop:90", seed=1, dtype="uint8")
  aligned = layers.GridCrop(56, mode="aligned", seed=2, dtype="uint8")
  for _ in range(4):
    out = aligned(chain({"images": image}))
    origin, confidence = grid.estimate(out["images"].numpy())
    assert confidence >= grid.CONFIDENT and tuple(origin.numpy()) == (0, 0)


def test_seeds_reproduce_and_differ_where_they_should():
  images = _batch()
  outs = {}
  for key, seed in (("a", 7), ("b", 7), ("c", 8)):
    layer = layers.RandomJpegQuality(quality_range=(20, 95), seed=seed)
    outs[key] = [layer(images).numpy() for _ in range(3)]
  for first, again in zip(outs["a"], outs["b"]):
    np.testing.assert_array_equal(first, again)  # same seed: same draws, call by call
  assert not np.array_equal(outs["a"][0], outs["a"][1])  # each call draws anew
  assert not np.array_equal(outs["a"][0], outs["c"][0])  # another seed, other draws
  assert not np.array_equal(outs["a"][0][0], outs["a"][0][1])  # each image its own
  # Image i of a call draws from seeds.for_example(call seed, i).
  one_call = layers.RandomJpegQuality(quality_range=(20, 95), seed=1)
  drawn = one_call.get_random_transformation(images, seed=(5, 6))["seeds"].numpy()
  for i in range(len(images)):
    np.testing.assert_array_equal(drawn[i], seeds.for_example(seeds.as_seed((5, 6)), i))
  # Without a transformation, transform_images draws one: each image its own.
  drawing = layers.RandomJpegQuality(quality_range=(20, 95), seed=4)
  same = np.repeat(images[:1], 3, axis=0)
  out = drawing.transform_images(same).numpy()
  assert not (np.array_equal(out[0], out[1]) and np.array_equal(out[1], out[2]))
  # Stateless: a seed given to the transformation draws the same whatever the layer's.
  one, two = (layers.RandomJpegQuality(quality_range=(20, 95), seed=s) for s in (1, 2))
  np.testing.assert_array_equal(
    one.transform_images(images, one.get_random_transformation(images, seed=(5, 6))),
    two.transform_images(images, two.get_random_transformation(images, seed=(5, 6))),
  )


def test_training_false_leaves_random_layers_alone_and_applies_fixed_ones():
  images = _batch().astype(np.float32)
  for name in ("random_jpeg_range", "chain", "blur"):
    np.testing.assert_array_equal(LAYERS[name]()(images, training=False), images)
  assert not np.array_equal(LAYERS["jpeg"]()(images, training=False), images)
  assert LAYERS["resize"]()(images, training=False).shape == (3, 40, 52, 3)
  centre = layers.GridCrop(32, mode="aligned")(images, training=False).numpy()
  np.testing.assert_array_equal(centre, images[:, 16:48, 24:56])  # centre (20, 28) to the grid
  misaligned = layers.GridCrop(32, mode="misaligned")(images, training=False).numpy()
  np.testing.assert_array_equal(misaligned, images[:, 16:48, 25:57])
  # What Keras is told: a chain that draws is left out of inference, so the
  # sides it changes are unknown; a fixed chain's are its own.
  drawing = layers.ProcessingChain("resize:40x40>jpeg:50..90")
  assert drawing.compute_output_shape((None, 72, 88, 3)) == (None, None, None, 3)
  assert drawing(images, training=False).shape == images.shape
  fixed = layers.ProcessingChain("resize:40x40>jpeg:75")
  assert fixed.compute_output_shape((None, 72, 88, 3)) == (None, 40, 40, 3)


def test_dtypes_and_value_ranges():
  images = _batch()
  reference = layers.JpegCompression(80, dtype="uint8")(images).numpy()
  floats = layers.JpegCompression(80)(images.astype(np.float32)).numpy()
  assert floats.dtype == np.float32
  np.testing.assert_array_equal(floats, reference)
  scaled = layers.JpegCompression(80, value_range=(0, 1))(images / 255.0).numpy()
  np.testing.assert_allclose(scaled, reference / 255.0, atol=1e-6)
  half = layers.JpegCompression(80, dtype="float16")(images).numpy()
  assert half.dtype == np.float16 and np.array_equal(half, reference)
  # A crop alone only cuts: float pixels keep their values, whatever they are.
  fractions = images[0].astype(np.float32) / 255.0 + 0.25
  cut = layers.GridCrop(32, mode="random", seed=1)
  seed = cut.get_random_transformation(fractions, seed=(1, 1))["seeds"][0]
  offset = crops.choose_offset((72, 88), 32, "random", 8, seed)
  np.testing.assert_array_equal(
    cut.transform_images(fractions, {"seeds": seed[None]}),
    fractions[int(offset[0]) :][:32, int(offset[1]) :][:, :32],
  )


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_get_config_round_trip(name):
  layer = LAYERS[name]()
  config = layer.get_config()
  json.dumps(config)  # what a .keras file stores
  again = type(layer).from_config(config)
  assert again.get_config() == config
  images = _batch(2)
  np.testing.assert_array_equal(layer(images), again(images))  # same seed, same draws


def test_a_saved_and_loaded_model_holding_the_layers(tmp_path):
  inputs = keras.Input((72, 88, 3))
  x = layers.RandomJpegQuality(quality_range=(50, 90), seed=1)(inputs)
  x = layers.JpegCompression(85)(x)
  x = layers.GridCrop(32, mode="aligned", seed=2)(x)
  x = layers.PillowResizing(24, 24)(x)
  x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(x))
  model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
  model.compile("adam", "sparse_categorical_crossentropy")
  images = _batch(4)
  model.fit(images, np.array([0, 1, 0, 1]), epochs=1, verbose=0)  # training: the random ones draw
  path = tmp_path / "model.keras"
  model.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_array_equal(model.predict(images, verbose=0), loaded.predict(images, verbose=0))
  # A fresh process loads it after `import tfjpeg.layers` alone, which
  # registers every layer with Keras (the reason its __init__ imports them).
  code = (
    "import keras, tfjpeg.layers; "
    f"print(type(keras.models.load_model({str(path)!r}).layers[3]).__name__)"
  )
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
  assert done.stdout.strip().splitlines()[-1:] == ["GridCrop"], done.stderr[-2000:]
  assert [type(layer).__name__ for layer in loaded.layers[1:5]] == [
    "RandomJpegQuality",
    "JpegCompression",
    "GridCrop",
    "PillowResizing",
  ]
  for mine, theirs in zip(model.layers, loaded.layers):
    assert mine.get_config() == theirs.get_config()
  # The loaded layers draw as freshly made ones do: in training, as the first call.
  fresh = keras.Sequential(
    [
      keras.Input((72, 88, 3)),
      layers.RandomJpegQuality(quality_range=(50, 90), seed=1),
      layers.JpegCompression(85),
      layers.GridCrop(32, mode="aligned", seed=2),
    ]
  )
  front = keras.Model(loaded.input, loaded.layers[3].output)
  np.testing.assert_array_equal(front(images, training=True), fresh(images, training=True))


def test_in_a_keras_pipeline_and_on_images_of_different_sizes():
  rng = np.random.default_rng(0)
  sizes = [(70, 90), (64, 64), (101, 77)]
  photos = [testing.synthetic_image(h, w, seed=int(rng.integers(99))) for h, w in sizes]
  pipeline = keras.layers.Pipeline(
    [
      layers.ProcessingChain("resize:0.7..1.3>jpeg:50..95", seed=1),
      layers.GridCrop(40, mode="aligned", seed=2),
    ]
  )
  dataset = tf.data.Dataset.from_generator(
    lambda: iter(photos), output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
  )
  batches = list(dataset.map(pipeline, num_parallel_calls=tf.data.AUTOTUNE).batch(3))
  assert [b.shape for b in batches] == [(3, 40, 40, 3)]
  # A ragged batch: sizes kept where they differ, dense where a crop fixes them.
  ragged = next(iter(dataset.ragged_batch(3)))
  saved = layers.RandomJpegQuality(quality_range=(50, 95), seed=3)(ragged)
  assert isinstance(saved, tf.RaggedTensor)
  seeds_of = layers.RandomJpegQuality(quality_range=(50, 95), seed=3).get_random_transformation(
    ragged
  )["seeds"]
  for i, photo in enumerate(photos):
    expected = tfjpeg.apply_chain(photo, "jpeg:50..95", seeds_of[i])[0].numpy()
    np.testing.assert_array_equal(saved[i].numpy(), expected)
  assert layers.GridCrop(32, seed=1)(ragged).shape == (3, 32, 32, 3)


def test_a_dense_batch_whose_sizes_are_drawn_comes_out_ragged():
  images = _batch()
  layer = layers.ProcessingChain("resize:0.5..1.5>jpeg:75", seed=5)
  image_seeds = layer.get_random_transformation(images, seed=(2, 3))["seeds"]
  out = layer.transform_images(images, {"seeds": image_seeds})
  assert isinstance(out, tf.RaggedTensor)
  for i, image in enumerate(images):
    expected = tfjpeg.apply_chain(image, layer.chain, image_seeds[i])[0].numpy()
    np.testing.assert_array_equal(out[i].to_tensor().numpy(), expected)
  assert len({out[i].to_tensor().shape for i in range(3)}) > 1


def test_the_grid_is_handed_from_layer_to_layer():
  """A dict carries where the grid lies: a chain's save starts it, a crop
  moves it, and aligned crops after both are on it."""
  image = testing.synthetic_image(160, 176, seed=8)
  saved = layers.ProcessingChain("jpeg:70", dtype="uint8")({"images": image})
  np.testing.assert_array_equal(saved["grid_origins"], [0, 0])
  for draw in range(4):
    moved = layers.GridCrop(100, mode="random", seed=draw, dtype="uint8")(saved)
    out = layers.GridCrop(48, mode="aligned", seed=draw, dtype="uint8")(moved)
    origin, confidence = grid.estimate(out["images"].numpy())
    assert confidence >= grid.CONFIDENT and tuple(origin.numpy()) == (0, 0)
    assert tuple(out["grid_origins"].numpy() % 8) == (0, 0)


def test_bad_arguments_are_refused_in_one_line():
  cases = [
    (lambda: layers.JpegCompression(0), "JpegCompression: quality must be a whole number"),
    (lambda: layers.JpegCompression(101), "1..100"),
    (lambda: layers.RandomJpegQuality(quality_range=(90, 50)), "runs backwards"),
    (lambda: layers.RandomJpegQuality(), "give quality_range"),
    (lambda: layers.RandomJpegQuality(qualities=[50], probability=2), "probability"),
    (lambda: layers.ProcessingChain("resize:0>jpeg:75"), "ProcessingChain: chain 'resize:0"),
    (lambda: layers.ProcessingChain("sharpen:2"), "unknown step 'sharpen'"),
    (lambda: layers.GridCrop(32, mode="centre"), "mode must be one of"),
    (lambda: layers.GridCrop(32, grid=5), "grid must be 8 or 16"),
    (lambda: layers.PillowResizing(10), "give height and width"),
    (lambda: layers.PillowResizing(factor=0), "factor must be greater than 0"),
    (lambda: layers.ScipyGaussianBlur(-1), "sigma must be >= 0"),
    (lambda: layers.JpegCompression(75, value_range=(1, 0)), "value_range"),
    (lambda: layers.JpegCompression(75, chroma="4:2:2"), "chroma must be one of"),
  ]
  for make, words in cases:
    with pytest.raises(ValueError) as caught:
      make()
    assert words in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
  with pytest.raises(ConfigError, match=r"^GridCrop: the 64x64 crop does not fit the 40x50 image$"):
    layers.GridCrop(64, seed=1)(np.zeros((40, 50, 3), np.uint8))
  with pytest.raises(ValueError, match="takes one HxWx3 image"):
    layers.JpegCompression(75)(np.zeros((40, 50), np.uint8))
  # A crop through a chain is checked against what the chain leaves.
  with pytest.raises(ConfigError, match=r"crop does not fit the 50x50 image resize:0.5 leaves$"):
    layers.GridCrop(64, chain="resize:0.5", seed=1)(np.zeros((100, 100, 3), np.uint8))
  enlarged = layers.GridCrop(224, chain="resize:2", seed=1)(np.zeros((150, 150, 3), np.uint8))
  assert enlarged.shape == (224, 224, 3)

  @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8)])
  def unknown_rank(image):
    return layers.JpegCompression(75)(image)

  with pytest.raises(ValueError, match=r"unknown rank: give it one"):
    unknown_rank.get_concrete_function()


def test_a_layer_gives_the_pipelines_pixels_for_the_pipelines_draws(tmp_path):
  """bin/train's test pipeline and the layer run the same op: a chain
  condition's patch is the layer's image, seeded as the pipeline seeds it,
  cut at the pipeline's offset."""
  # Photos large enough that the pipeline takes its windowed chain path.
  task, path_of, _ = testing.folder_task(
    tmp_path, (300, 340), 32, per_class=3, quality=92, test_fraction=0.5
  )
  config = ip.PipelineConfig.of(patch_size=32, patches_per_image=2, batch_size=8)
  text = "resize:0.6..1.4@0.7>blur:0..2@0.5>jpeg:40..95"
  layer = layers.ProcessingChain(text, dtype="uint8")
  eval_seed = seeds.for_example(config.schedule.seed, -1)
  checked = 0
  for batch in ip.eval_dataset(task, "test", [ip.Condition("random", chain=text)], config):
    for patch, offset, image_id in zip(
      batch["image"].numpy(), batch["offset"].numpy(), batch["image_id"].numpy()
    ):
      source = tfjpeg.decode(tf.io.read_file(path_of[image_id.decode()]))
      seed = ip.image_chain_seed(eval_seed, tf.constant(image_id))
      whole = layer.transform_images(source, {"seeds": seed[None]}).numpy()
      y, x = offset
      np.testing.assert_array_equal(patch, whole[y : y + 32, x : x + 32])
      checked += 1
  assert checked == 2 * task.num_images["test"] > 0
