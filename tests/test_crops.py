"""tfjpeg.codec.crops: offsets obey their mode, patches are the right pixels, seeds reproduce."""

import numpy as np
import pytest
import tensorflow as tf

from tfjpeg.codec import crops

import helpers as testing

IMAGE = testing.synthetic_image(61, 77, seed=5)  # odd sizes: margins 29 and 45 for 32


def _draw(mode, size=32, grid=8, seeds=range(200), image=IMAGE):
  out = []
  for s in seeds:
    patch, offset = crops.crop(image, size, mode, grid=grid, seed=(s, 4))
    out.append((patch.numpy(), offset.numpy()))
  return out


@pytest.mark.parametrize("mode", crops.MODES)
def test_patch_is_the_image_at_the_offset(mode):
  for patch, (y, x) in _draw(mode, seeds=range(20)):
    assert patch.shape == (32, 32, 3)
    np.testing.assert_array_equal(patch, IMAGE[y : y + 32, x : x + 32])


@pytest.mark.parametrize("grid", [8, 16])
def test_aligned_offsets_are_multiples_of_the_grid_and_cover_them(grid):
  offsets = {tuple(o) for _, o in _draw("aligned", grid=grid)}
  assert all(y % grid == 0 and x % grid == 0 for y, x in offsets)
  margin_y, margin_x = 61 - 32, 77 - 32
  expected = {(y, x) for y in range(0, margin_y + 1, grid) for x in range(0, margin_x + 1, grid)}
  assert offsets == expected


@pytest.mark.parametrize("way", testing.WAYS)
def test_a_grid_per_axis_is_the_mcu_of_a_camera_layout(way):
  """(8, 16): 4:2:2's MCU, 8 high and 16 wide; a tensor, as the pipeline reads it."""
  grid = tf.constant([8, 16])
  draws = {
    mode: lambda seeds, mode=mode: tf.map_fn(
      lambda s: crops.choose_offset((61, 77), 32, mode, grid, tf.stack([s, 4])),
      seeds,
      fn_output_signature=tf.int32,
    )
    for mode in ("aligned", "misaligned")
  }
  seeds = tf.range(120, dtype=tf.int64)
  aligned = {tuple(o) for o in testing.run(draws["aligned"], way, seeds)}
  assert aligned == {(y, x) for y in range(0, 30, 8) for x in range(0, 46, 16)}
  misaligned = [tuple(o) for o in testing.run(draws["misaligned"], way, seeds)]
  assert not any(y % 8 == 0 and x % 16 == 0 for y, x in misaligned)
  assert {y % 8 for y, _ in misaligned} == set(range(8))  # (8, 0) is on this grid: never drawn
  assert {x % 16 for _, x in misaligned} == set(range(16))
  with pytest.raises(ValueError, match="positive int or a"):
    crops.choose_offset((61, 77), 32, "aligned", (8, 0))


def test_random_offsets_cover_all_phases():
  offsets = np.array([o for _, o in _draw("random", seeds=range(700))])
  assert offsets.min() == 0
  assert offsets[:, 0].max() <= 61 - 32 and offsets[:, 1].max() <= 77 - 32
  phases = {(y % 8, x % 8) for y, x in offsets}
  assert len(phases) == 64


@pytest.mark.parametrize("grid", [8, 16])
def test_misaligned_offsets_are_never_aligned_and_cover_every_other_phase(grid):
  offsets = [tuple(o) for _, o in _draw("misaligned", grid=grid, seeds=range(700))]
  assert not any(y % grid == 0 and x % grid == 0 for y, x in offsets)
  phases = {(y % grid, x % grid) for y, x in offsets}
  if grid == 8:
    assert len(phases) == 63
  assert all(0 <= y <= 29 and 0 <= x <= 45 for y, x in offsets)


def test_misaligned_with_a_margin_on_one_axis_only():
  image = IMAGE[:32]  # height equals the patch: only x can move
  for _, (y, x) in _draw("misaligned", image=image, seeds=range(50)):
    assert y == 0 and x % 8 != 0


@pytest.mark.parametrize("way", testing.WAYS)
@pytest.mark.parametrize("mode", crops.MODES)
def test_three_ways_agree(mode, way):
  fn = lambda im, s: crops.crop(im, (24, 40), mode, seed=s)
  for s in range(5):
    seed = tf.constant([s, 2], tf.int64)
    patch, offset = testing.run(fn, way, IMAGE, seed)
    ref_patch, ref_offset = testing.run(fn, "eager", IMAGE, seed)
    np.testing.assert_array_equal(offset, ref_offset)
    np.testing.assert_array_equal(patch, ref_patch)
    assert patch.shape == (24, 40, 3)


def test_same_seed_same_crop_in_any_order():
  seeds = list(range(30))
  forward = {s: crops.crop(IMAGE, 16, "random", seed=(s, 0))[1].numpy().tolist() for s in seeds}
  backward = {
    s: crops.crop(IMAGE, 16, "random", seed=(s, 0))[1].numpy().tolist() for s in reversed(seeds)
  }
  assert forward == backward
  dataset = tf.data.Dataset.from_tensor_slices(seeds).map(
    lambda s: crops.crop(IMAGE, 16, "random", seed=tf.stack([tf.cast(s, tf.int64), 0]))[1],
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=False,
  )
  assert sorted(o.numpy().tolist() for o in dataset) == sorted(forward.values())
  assert len({tuple(v) for v in forward.values()}) > 10  # seeds do matter


def test_dynamic_shape_in_dataset_map():
  sizes = [(40, 40), (57, 33), (32, 32)]
  images = [testing.synthetic_image(h, w, seed=h) for h, w in sizes]
  dataset = tf.data.Dataset.from_generator(
    lambda: iter(images), output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
  )
  dataset = dataset.map(
    lambda im: crops.crop(im, 32, "aligned", seed=1), num_parallel_calls=tf.data.AUTOTUNE
  )
  assert dataset.element_spec[0].shape == (32, 32, 3)
  for (patch, (y, x)), image in zip(dataset, images):
    np.testing.assert_array_equal(patch.numpy(), image[y : y + 32, x : x + 32])


def test_image_smaller_than_patch_is_a_clear_error():
  with pytest.raises(ValueError, match="smaller than the 64x64 patch"):
    crops.crop(IMAGE, 64, "random")
  with pytest.raises(ValueError, match="smaller than the 64x64 patch"):
    crops.crop_at(IMAGE, 64, (0, 0))
  dataset = tf.data.Dataset.from_generator(
    lambda: iter([IMAGE]), output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
  )
  with pytest.raises(tf.errors.InvalidArgumentError, match="image smaller than the patch"):
    next(iter(dataset.map(lambda im: crops.crop(im, 64, "aligned"))))


def test_misaligned_impossible_when_image_equals_patch():
  with pytest.raises(tf.errors.InvalidArgumentError, match="no misaligned crop"):
    crops.crop(IMAGE[:32, :32], 32, "misaligned")


def test_crop_at_outside_the_image_is_refused():
  with pytest.raises(tf.errors.InvalidArgumentError, match="outside the image"):
    crops.crop_at(IMAGE, 32, (40, 0))


def test_bad_arguments():
  with pytest.raises(ValueError, match="mode"):
    crops.crop(IMAGE, 8, "centre")
  with pytest.raises(ValueError, match="grid"):
    crops.crop(IMAGE, 8, "aligned", grid=0)
  with pytest.raises(ValueError, match="positive"):
    crops.crop(IMAGE, 0, "random")
