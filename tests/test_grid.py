"""tfjpeg.codec.grid: blind grid estimation, realignment; eagerly, traced and mapped."""

import numpy as np
import pytest
import tensorflow as tf

from tfjpeg.codec import grid
from tfjpeg.codec import jpeg

import helpers as testing


@pytest.fixture(scope="module")
def photo():
  return testing.synthetic_image(300, 300, seed=31)


@pytest.mark.parametrize("quality", [50, 75, 90, 95])
def test_estimate_finds_the_grid_at_every_offset(photo, quality):
  compressed = jpeg.compress(photo, quality).numpy()
  estimate = tf.function(grid.estimate)
  for dy in range(8):
    for dx in range(8):
      origin, confidence = estimate(compressed[dy : dy + 256, dx : dx + 256])
      assert tuple(origin.numpy()) == ((-dy) % 8, (-dx) % 8), (quality, dy, dx)
      assert confidence >= grid.CONFIDENT


def test_never_compressed_images_get_a_low_confidence(photo):
  for dy, dx in ((0, 0), (3, 5)):
    _, confidence = grid.estimate(photo[dy : dy + 256, dx : dx + 256])
    assert confidence < grid.CONFIDENT


@pytest.mark.parametrize("way", testing.WAYS)
def test_estimate_three_ways(photo, way):
  compressed = jpeg.compress(photo, 80).numpy()[3 : 3 + 200, 6 : 6 + 240]
  origin, confidence = testing.run(grid.estimate, way, compressed)
  assert tuple(origin) == (5, 2) and 0 < confidence <= 1


def test_large_images_use_a_central_window_with_the_right_origin():
  big = testing.synthetic_image(700, 900, seed=2)
  compressed = jpeg.compress(big, 85).numpy()[5:, 1:]  # origin (3, 7)
  origin, _ = grid.estimate(compressed)
  assert tuple(origin.numpy()) == (3, 7)


def test_realign_moves_less_than_8_onto_the_grid():
  for offset in ([0, 0], [13, 22], [40, 3], [57, 57]):
    moved = grid.realign(offset, [3, 6], [121, 121], (64, 64)).numpy()
    assert (moved % 8).tolist() == [3, 6]
    assert np.all(np.abs(moved - offset) < 8) and np.all(moved >= 0) and np.all(moved <= 57)
  # Away from the edges, the nearer grid position wins.
  assert grid.realign([13, 22], [3, 6], [121, 121], (64, 64)).numpy().tolist() == [11, 22]
  # No grid position fits on an axis: that axis stays.
  assert grid.realign([0, 2], [5, 0], [64, 70], (64, 64)).numpy().tolist() == [0, 0]


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data absent")
def test_accuracy_table_on_real_photos():
  photos = dict(list(sorted(testing.shared_photos().items()))[:2])
  table = grid.accuracy_table(photos, qualities=(75,), crop=256)
  by_qf = table.set_index("qf")
  assert by_qf.loc[75, "correct"] == 1.0 and by_qf.loc[75, "crops"] == 128
  assert by_qf.loc["none", "confident"] == 0.0


@pytest.mark.parametrize("layout", ["422", "440"])
def test_estimate_finds_the_grid_of_camera_chroma_layouts(photo, layout):
  """4:2:2 and 4:4:0 files (OpenCV writes them as cameras do): the luma grid
  is 8x8 whatever the chroma MCU, and the estimator finds it."""
  import cv2  # pylint: disable=g-import-not-at-top

  params = [
    cv2.IMWRITE_JPEG_QUALITY,
    85,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
    getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{layout}"),
  ]
  data = cv2.imencode(".jpg", np.ascontiguousarray(photo[..., ::-1]), params)[1].tobytes()
  decoded = jpeg.decode(data).numpy()
  for dy, dx in ((0, 0), (3, 5), (7, 2)):
    origin, confidence = grid.estimate(decoded[dy : dy + 256, dx : dx + 256])
    assert tuple(origin.numpy()) == ((-dy) % 8, (-dx) % 8) and confidence >= grid.CONFIDENT
