"""Where the grid breaks: ZERO's votes, the NFA, regions, and grid_map on splices.

The votes are checked against a plain NumPy implementation of ZERO's
definitions written here (windows looped over, not convolved); the NFA
against scipy's binomial tail; components against scipy's labelling; the map
on splices built here with tfjpeg's exact JPEG, from generated scenes (always)
and from the shared Kodak and McMaster photos (when ../shared/data is there).
"""

import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from scipy import stats

import tfjpeg
from tfjpeg.codec import grid_map as grid_map_lib
from tfjpeg.codec import grid_regions
from tfjpeg.codec import grid_votes
from tfjpeg.codec import nfa

import helpers as testing

# ------------------------------------------------------------ the reference


def zero_luminance(rgb):
  """round(0.299 R + 0.587 G + 0.114 B), in double, in that order, half away from 0."""
  rgb = rgb.astype(np.float64)
  value = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1]) + 0.114 * rgb[..., 2]
  return np.floor(value) + (value - np.floor(value) >= 0.5)


def zero_dct(luma):
  """Every 8x8 window's DCT as ZERO writes it: 1/4 a_i a_j sum l cos cos, [H-7, W-7, 8, 8]."""
  k = np.arange(8)
  cos = np.cos((2 * k[:, None] + 1) * k[None, :] * np.pi / 16)  # [pixel, frequency]
  alpha = np.where(k == 0, 1 / np.sqrt(2), 1.0)
  windows = sliding_window_view(luma, (8, 8))  # [y, x, row, column]
  return 0.25 * np.einsum("abyx,yi,xj->abij", windows, cos, cos) * alpha[:, None] * alpha


def reference_votes(rgb, tie=1e-9):
  """ZERO's votes, pixel by pixel: the unique best window of the 64 holding the
  pixel, by its count of AC coefficients below 0.5 (within `tie` of 0.5 is 0.5
  exactly); no vote on ties, a best count of 0, a best window constant along
  its rows or its columns, or the 7-pixel border."""
  luma = zero_luminance(rgb)
  height, width = luma.shape
  dct = zero_dct(luma)
  ac = np.abs(dct).reshape(*dct.shape[:2], 64)[..., 1:]
  zeros = (ac < 0.5 - tie).sum(-1)
  windows = sliding_window_view(luma, (8, 8))
  constant = (windows == windows[..., :, :1]).all((-1, -2)) | (windows == windows[..., :1, :]).all(
    (-1, -2)
  )
  votes = -np.ones((height, width), int)
  for y in range(7, height - 7):
    for x in range(7, width - 7):
      scores = zeros[y - 7 : y + 1, x - 7 : x + 1]
      best = np.argwhere(scores == scores.max())
      if scores.max() > 0 and len(best) == 1:
        a, b = best[0]
        if not constant[y - 7 + a, x - 7 + b]:
          votes[y, x] = ((y - 7 + a) % 8) * 8 + (x - 7 + b) % 8
  return votes


def exact_ties(rgb):
  """How many AC coefficients are +-0.5 within 1e-9: the ties exactness decides."""
  ac = np.abs(zero_dct(zero_luminance(rgb))).reshape(-1, 64)[:, 1:]
  return int((np.abs(ac - 0.5) < 1e-9).sum())


def photo_like(height, width, seed):
  return testing.synthetic_image(height, width, seed=seed)


# ------------------------------------------------------------------ votes


def test_votes_follow_zeros_definitions():
  scene = photo_like(80, 96, seed=3)
  saved = tfjpeg.compress(scene, 80).numpy()[3:67, 5:85]  # grid at (5, 3)
  # Flat and striped patches: windows constant along rows or columns, and ties.
  saved[8:30, 10:40] = 120
  saved[34:60, 44:70] = np.arange(26)[:, None, None] + 90
  assert exact_ties(saved) > 0  # the exactness rule is exercised
  expected = reference_votes(saved)
  got = grid_votes.votes(saved).numpy()
  np.testing.assert_array_equal(got, expected)
  counts = np.bincount(expected[expected >= 0], minlength=64)
  assert counts.argmax() == 5 * 8 + 3  # and they find the grid


@pytest.mark.parametrize("way", testing.WAYS)
def test_votes_eagerly_in_a_function_and_in_tf_data(way):
  image = tfjpeg.compress(photo_like(40, 48, seed=5), 90).numpy()
  got = testing.run(grid_votes.votes, way, tf.constant(image))
  np.testing.assert_array_equal(got, reference_votes(image))


def test_tiles_give_the_one_pass_counts(monkeypatch):
  luma = grid_votes.luminance(tfjpeg.compress(photo_like(70, 90, seed=6), 85))
  whole = grid_votes.window_scores(luma, (0.5, 2.0)).numpy()
  monkeypatch.setattr(grid_votes, "SINGLE_PASS", 0)
  monkeypatch.setattr(grid_votes, "TILE", 24)
  tiled = grid_votes.window_scores(luma, (0.5, 2.0)).numpy()
  np.testing.assert_array_equal(tiled, whole)


def test_a_pixel_excluded_grid_never_wins():
  image = tfjpeg.compress(photo_like(48, 48, seed=7), 75)
  luma = grid_votes.luminance(image)
  scores = grid_votes.window_scores(luma)[..., 0]
  votes = grid_votes.votes_from_scores(scores, grid_votes.constant_windows(luma), exclude=0)
  assert not np.any(votes.numpy() == 0) and np.any(votes.numpy() > 0)


# -------------------------------------------------------------------- NFA


def test_binomial_tail_against_scipy():
  rng = np.random.default_rng(0)
  n = rng.integers(1, 5000, 400)
  p = rng.choice([1 / 64, 0.05, 0.3], 400)
  k = np.minimum((rng.random(400) * n * rng.choice([0.02, 0.1, 0.5], 400)).astype(int), n)
  got = nfa.log10_binomial_tail(n, k, p).numpy()
  expected = stats.binom.logsf(k - 1, n, p) / np.log(10)
  finite = np.isfinite(expected)
  np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-6, atol=1e-9)
  # Underflow: the first term's log, within a factor of 2 (0.31 in log10).
  first = stats.binom.logpmf(4000, 5000, 1 / 64) / np.log(10)
  tail = float(nfa.log10_binomial_tail(5000, 4000, 1 / 64))
  assert first <= tail <= first + np.log10(2)
  assert float(nfa.log10_binomial_tail(10, 0, 0.5)) == 0.0


# --------------------------------------------------------------- regions


@pytest.mark.parametrize("density", [0.05, 0.45])
def test_components_against_scipy(density):
  member = np.random.default_rng(1).random((30, 41, 3)) < density
  labels = grid_regions.components(member).numpy()
  for channel in range(3):
    expected, count = ndimage.label(member[..., channel], structure=np.ones((3, 3)))
    got = labels[..., channel]
    assert np.all((got >= 0) == member[..., channel])
    for index in range(1, count + 1):
      cells = np.flatnonzero(expected == index)
      assert set(got.reshape(-1)[cells]) == {cells.min()}  # one label: its smallest cell


# ------------------------------------------------------------ the whole map


def paste(host, block, at):
  out = host.copy()
  out[at[0] : at[0] + block.shape[0], at[1] : at[1] + block.shape[1]] = block
  return out


def iou(a, b):
  inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
  area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
  return inter / (area(a) + area(b) - inter)


def regions_of(found):
  count = int(found["region_count"])
  return [
    (
      grid_map_lib.KINDS[int(found["region_kind"][i])],
      tuple(int(v) for v in found["region_box"][i]),
    )
    for i in range(count)
  ]


@pytest.fixture(scope="module")
def mapper():
  return grid_map_lib.traced()


def test_splices_of_generated_scenes(mapper):
  """A foreign block, a never-compressed block and an untouched JPEG, 192x224."""
  host = tfjpeg.compress(photo_like(192, 224, seed=11), 75).numpy()
  other = tfjpeg.compress(photo_like(192, 224, seed=12), 85).numpy()
  raw = photo_like(192, 224, seed=13)
  truth = (51, 83, 147, 179)  # 96x96 at (51, 83): a shifted phase
  cases = {
    "foreign": paste(host, other[16:112, 24:120], truth[:2]),
    "missing": paste(host, raw[16:112, 24:120], truth[:2]),
  }
  for kind, image in cases.items():
    found = mapper(image)
    assert [int(v) for v in found["main_grid"]] == [0, 0]
    regions = regions_of(found)
    assert any(k == kind and iou(box, truth) >= 0.5 for k, box in regions), (kind, regions)
    assert all(iou(box, truth) >= 0.5 for _, box in regions), (kind, regions)
    marked = found["region_mask"].numpy() >= 0
    near = np.zeros_like(marked)
    near[truth[0] - 32 : truth[2] + 32, truth[1] - 32 : truth[3] + 32] = True
    assert marked[truth[0] + 8 : truth[2] - 8, truth[1] + 8 : truth[3] - 8].mean() > 0.5
    assert not (marked & ~near).any()
  untouched = mapper(host[5:, 3:])
  assert [int(v) for v in untouched["main_grid"]] == [3, 5]
  assert int(untouched["region_count"]) == 0


def test_batched_and_in_tf_data_equal_one_by_one():
  images = np.stack([tfjpeg.compress(photo_like(48, 64, seed=s), 80).numpy() for s in (1, 2)])
  batched = grid_map_lib.grid_map(images)
  mapped = next(
    iter(tf.data.Dataset.from_tensor_slices(images).map(grid_map_lib.grid_map).batch(2))
  )
  for index in range(2):
    alone = grid_map_lib.grid_map(images[index])
    for key, value in alone.items():
      np.testing.assert_array_equal(batched[key][index], value, err_msg=key)
      np.testing.assert_array_equal(mapped[key][index], value, err_msg=key)


def test_no_grid_in_a_never_compressed_image(mapper):
  found = mapper(photo_like(96, 96, seed=21))
  assert [int(v) for v in found["main_grid"]] == [-1, -1]
  assert int(found["region_count"]) == 0


def test_too_small_an_image_is_refused():
  with pytest.raises(tf.errors.InvalidArgumentError, match="16x16"):
    grid_map_lib.grid_map(np.zeros((12, 40, 3), np.uint8))


# ------------------------------------------------- real photos (../shared/data)


def test_the_splice_builder_pastes_where_it_says():
  from tfjpeg.analysis import splices  # pylint: disable=g-import-not-at-top

  photos = [photo_like(200, 232, seed=s) for s in (41, 42, 43)]
  for kind in ("foreign", "missing"):
    splice = splices.build(kind, 0, photos, np.random.default_rng(5))
    y0, x0, y1, x1 = splice.box
    changed = np.any(splice.image != splice.host, -1)
    assert (y0 % 8, x0 % 8) != (0, 0) and 64 <= y1 - y0 <= 256 and y1 - y0 == x1 - x0
    assert not changed[:y0].any() and not changed[y1:].any() and not changed[:, :x0].any()
    assert not changed[:, x1:].any() and changed[y0:y1, x0:x1].mean() > 0.9


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data absent")
def test_splices_of_real_photos(mapper):
  """Kodak and McMaster photos (384x384 crops), blocks of 64 to 256 px, QF 70 to 95: foreign
  blocks, the same saved again at QF 90 to 95, never-compressed blocks, found
  at box IoU >= 0.5; false regions counted. (The full figures, on 30 of each
  and on camera originals: bin/grid_accuracy --splices=30.)"""
  from tfjpeg.analysis import splices  # pylint: disable=g-import-not-at-top

  photos = [photo[:384, :384] for photo in testing.shared_photos().values()]
  found, false = {}, 0
  for number, kind in enumerate(("foreign", "resaved", "missing")):
    rng = np.random.default_rng([7, number])
    found[kind] = 0
    for index in range(6):
      splice = splices.build(kind, index * 9, photos, rng)
      regions = regions_of(mapper(splice.image))
      hits = [box for _, box in regions if splices.box_iou(box, splice.box) >= 0.5]
      found[kind] += bool(hits)
      false += len(regions) - len(hits)
  assert found["foreign"] == 6 and found["missing"] >= 5 and found["resaved"] >= 3, found
  assert false <= 1


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data absent")
def test_untouched_photos_hold_no_false_region(mapper):
  """Each of the 42 photos, a 256x320 crop at QF 70 to 95: at most one false
  region per hundred photos is expected; none may appear here."""
  rng = np.random.default_rng(3)
  false = []
  for name, photo in testing.shared_photos().items():
    crop = photo[:256, :320]
    found = mapper(tfjpeg.compress(crop, int(rng.integers(70, 96))).numpy())
    assert [int(v) for v in found["main_grid"]] == [0, 0], name
    if int(found["region_count"]):
      false.append((name, regions_of(found)))
  assert not false
