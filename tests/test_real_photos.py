"""tfjpeg.data.real_photos: real-photo tasks, built from dummy photos and, when present,
from ../shared/data."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.data import builtin
from tfjpeg.data import real_photos
from tfjpeg.data import tasks

import helpers as testing


@pytest.fixture
def photo_dir(tmp_path):
  """Two collections of never-compressed dummy photos: PNG and TIFF."""
  root = tmp_path / "shared"
  for i in range(3):
    testing.write_image(root / "kodak" / f"{i:02d}.png", testing.synthetic_image(140, 200, seed=i))
  for i in range(2):
    testing.write_image(root / "mcm" / f"{i}.tif", testing.synthetic_image(130, 130, seed=10 + i))
  (root / "web").mkdir()
  testing.write_image(root / "web" / "x.jpg", testing.synthetic_image(140, 140, seed=20))
  return root


def _read(path):
  return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]


def test_history_task_holds_each_tile_never_and_once_compressed(photo_dir, tmp_path):
  root = real_photos.materialize(
    "history", tile=64, source_root=photo_dir, cache=tmp_path / "cache", log=lambda _: None
  )
  assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["never", "qf70", "qf80", "qf90"]
  # kodak 140x200 -> 2x3 tiles, mcm 130x130 -> 2x2; the JPEG in web/ is no source.
  tiles = sorted(p.relative_to(root / "never").as_posix() for p in (root / "never").rglob("*.png"))
  assert len(tiles) == 3 * 6 + 2 * 4 and "kodak-00/r1c2.png" in tiles and "mcm-1/r1c1.png" in tiles
  photo = testing.write_image(tmp_path / "p.png", testing.synthetic_image(140, 200, seed=0))
  source = _read(photo)[64:128, 128:192]
  np.testing.assert_array_equal(_read(root / "never" / "kodak-00" / "r1c2.png"), source)
  # Stored losslessly after one compression: exactly libjpeg's round trip.
  np.testing.assert_array_equal(
    _read(root / "qf70" / "kodak-00" / "r1c2.png"), testing.opencv_compress(source, 70)
  )


def test_cameras_task_shoots_downscaled_real_photos(photo_dir, tmp_path):
  root = real_photos.materialize(
    "cameras", tile=32, source_root=photo_dir, cache=tmp_path / "cache", log=lambda _: None
  )
  names = [c.name for c in builtin.CAMERAS]
  assert sorted(p.name for p in root.iterdir() if p.is_dir()) == names
  # Downscaled by 2: kodak 70x100 -> 2x3 tiles of 32, mcm 65x65 -> 2x2.
  for name in names:
    files = sorted((root / name).rglob("*.jpg"))
    assert len(files) == 3 * 6 + 2 * 4
    assert files[0].read_bytes()[:3] == b"\xff\xd8\xff"  # the camera's own JPEG, as written
    assert tf.io.decode_jpeg(files[0].read_bytes()).shape == (32, 32, 3)


def test_generation_is_cached_and_keyed_by_the_sources(photo_dir, tmp_path):
  made = []
  first = real_photos.materialize(
    "history", tile=64, source_root=photo_dir, cache=tmp_path / "cache", log=made.append
  )
  again = real_photos.materialize(
    "history", tile=64, source_root=photo_dir, cache=tmp_path / "cache", log=made.append
  )
  assert first == again and len(made) == 1
  testing.write_image(photo_dir / "kodak" / "00.png", testing.synthetic_image(140, 200, seed=99))
  changed = real_photos.materialize(
    "history", tile=64, source_root=photo_dir, cache=tmp_path / "cache", log=made.append
  )
  assert changed != first and len(made) == 2


@pytest.mark.parametrize("name", ["real_history", "real_cameras"])
def test_real_tasks_split_by_photo(photo_dir, monkeypatch, tmp_path, name):
  monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path / "cache"))
  task = tasks.get(
    config_lib.TaskConfig(
      name=name, data_dir=str(photo_dir), image_size=32, patch_size=32, test_fraction=0.4
    )
  )
  assert task.num_classes == 4 and task.kind == "forensic"
  split_of = {}
  for split in ("train", "validation", "test"):
    for element in task.images(split):
      photo = element["image_id"].numpy().decode().split("/")[1]
      assert split_of.setdefault(photo, split) == split, f"{photo} straddles splits"
  assert set(split_of.values()) >= {"train", "test"}


def test_missing_photo_folder_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent")):
    tasks.get(config_lib.TaskConfig(name="real_history", data_dir=str(tmp_path / "absent")))
  (tmp_path / "empty" / "jpegs").mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match="no never-compressed photo"):
    real_photos.list_sources(tmp_path / "empty")


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data absent")
def test_real_tasks_from_the_shared_photos(tmp_path, monkeypatch):
  monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path / "cache"))
  assert len(real_photos.list_sources(testing.shared_data_dir())) == 42
  task = tasks.get(
    config_lib.TaskConfig(
      name="real_history", data_dir=str(testing.shared_data_dir()), builtin_scenes=4
    )
  )
  # The first four, sorted, are McMaster's 500x500 photos: 2 x 2 tiles of 240 each.
  assert sum(task.num_images.values()) == 4 * 4 * 4 and task.bad_files.empty
