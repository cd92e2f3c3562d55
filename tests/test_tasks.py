"""tfjpeg.data.tasks and its TFDS builders: every registered task works, on dummy data."""

import dataclasses
import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfjpeg import config as config_lib
from tfjpeg.data import builtin
from tfjpeg.data import tasks
from tfjpeg.data import tfds_builders

import helpers as testing

TFDS_TASKS = ("vision", "gan", "imagenet", "lsun")


def _digest(folder):
  h = hashlib.sha256()
  for root, _, files in sorted(os.walk(folder)):
    for name in sorted(files):
      if name.endswith(".jpg"):
        h.update(name.encode())
        h.update(open(os.path.join(root, name), "rb").read())
  return h.hexdigest()


@pytest.mark.parametrize("kind", ["cameras", "shapes"])
def test_builtin_generation_is_deterministic_by_seed(tmp_path, kind):
  a = builtin.materialize(kind, 6, 80, seed=1, root=tmp_path / "a")
  b = builtin.materialize(kind, 6, 80, seed=1, root=tmp_path / "b")
  c = builtin.materialize(kind, 6, 80, seed=2, root=tmp_path / "c")
  assert _digest(a) == _digest(b) != _digest(c)
  assert builtin.materialize(kind, 6, 80, seed=1, root=tmp_path / "a") == a  # cached


def test_colour_filter_phase_is_a_sensor_shift():
  assert [builtin.shifted_cfa("RGGB", dy, dx) for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))] == [
    "RGGB",
    "GRBG",
    "GBRG",
    "BGGR",
  ]
  # Read from odd columns, the sensor sees the scene one pixel further left.
  camera = dataclasses.replace(
    builtin.CAMERAS[0], noise_gain=0.0, read_noise=0.0, quality=100, chroma="4:4:4"
  )
  light = builtin.scene(64, 65, np.random.default_rng(3))
  decode = lambda data: tf.io.decode_jpeg(data, dct_method="INTEGER_ACCURATE").numpy().astype(float)
  rng = np.random.default_rng(0)
  shifted = decode(builtin.shoot(light[:, 1:], camera, rng, (0, 0)))[8:-8, 8:-8]
  odd = decode(builtin.shoot(light[:, :-1], camera, rng, (0, 1)))[8:-8, 8:-8]
  even = decode(builtin.shoot(light[:, :-1], camera, rng, (0, 0)))[8:-8, 8:-8]
  # odd[y, x] sees light[y, x] through filter (y, x + 1), as shifted[y, x - 1] does.
  assert np.abs(odd[:, 1:] - shifted[:, :-1]).mean() < 1.0
  assert np.abs(odd[:, 1:] - even[:, 1:]).mean() > 2.0 * np.abs(odd[:, 1:] - shifted[:, :-1]).mean()


def test_random_cfa_task_shoots_at_random_phases(tmp_path, monkeypatch):
  phases = {}
  real_shoot = builtin.shoot

  def recording_shoot(light, camera, rng, cfa_phase=(0, 0)):
    phases.setdefault(kind, []).append(tuple(cfa_phase))
    return real_shoot(light, camera, rng, cfa_phase)

  monkeypatch.setattr(builtin, "shoot", recording_shoot)
  for kind in ("cameras", "cameras_random_cfa"):
    builtin.generate(kind, tmp_path / kind, num_scenes=4, image_size=32, seed=0)
  assert set(phases["cameras"]) == {(0, 0)}  # locked to the origin, as camera originals
  assert len(phases["cameras_random_cfa"]) == 16
  assert set(phases["cameras_random_cfa"]) == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_builtin_cameras_share_content_and_differ_in_processing(tmp_path):
  root = builtin.materialize("cameras", 2, 96, seed=0, root=tmp_path)
  pictures = [
    tf.io.decode_jpeg(
      open(root / c.name / "scene00000.jpg", "rb").read(), dct_method="INTEGER_ACCURATE"
    )
    .numpy()
    .astype(float)
    for c in builtin.CAMERAS
  ]
  for other in pictures[1:]:
    assert np.corrcoef(pictures[0].ravel(), other.ravel())[0, 1] > 0.9  # same scene
    assert np.abs(pictures[0] - other).mean() > 0.5  # not the same pixels


def test_builtin_seed_gives_new_scenes(tmp_path):
  read = lambda seed: [
    e["encoded"].numpy()
    for e in tasks.get(
      config_lib.TaskConfig(
        name="cameras", data_dir=str(tmp_path), builtin_scenes=6, image_size=80, builtin_seed=seed
      )
    ).images("train")
  ]
  assert read(0) == read(0)
  assert not set(read(0)) & set(read(5))


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_every_registered_task_builds_and_streams(tmp_path, monkeypatch, name):
  monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path / "cache"))
  options = config_lib.TaskConfig(
    data_dir=str(tmp_path / "data"), tfds_data_dir=str(tmp_path / "tfds"), builtin_scenes=8
  )
  if name == "folder":
    for c in ("x", "y"):
      for i in range(6):
        testing.write_image(
          tmp_path / "data" / c / f"{i}.png", testing.synthetic_image(70, 90, seed=i)
        )
    options = config_lib.TaskConfig(data_dir=str(tmp_path / "data"), patch_size=64)
  elif name in TFDS_TASKS:
    testing.make_manual_dir(name, tmp_path / "data", per_class=2)
  elif name.startswith("real_"):  # dummy never-compressed photos as the shared folder
    for i in range(5):
      testing.write_image(
        tmp_path / "data" / "photos" / f"{i}.png", testing.synthetic_image(140, 140, seed=i)
      )
    options = config_lib.TaskConfig(data_dir=str(tmp_path / "data"), image_size=64)
  task = tasks.get(dataclasses.replace(options, name=name))
  assert task.num_classes >= 2 and sum(task.num_images.values()) > 0
  element = next(iter(task.images("train")))
  assert element["encoded"].dtype == tf.string and 0 <= element["label"] < task.num_classes


def test_unknown_task_is_named():
  with pytest.raises(ValueError, match="'cifar' is no registered task.*cameras"):
    tasks.get("cifar")


@pytest.mark.parametrize("key", TFDS_TASKS)
def test_builder_stores_original_bytes_unchanged(tmp_path, key):
  manual = testing.make_manual_dir(key, tmp_path / "manual", per_class=2)
  originals = {}
  for root, _, files in os.walk(manual):
    for f in files:
      originals[os.path.join(root, f)] = open(os.path.join(root, f), "rb").read()
  builder = tfds_builders.BUILDERS[key](data_dir=str(tmp_path / "tfds"))
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  stored = []
  source_split = {}
  for split in builder.info.splits:  # tiny dummy data may leave one empty
    for example in builder.as_dataset(split=split):
      stored.append(example["image"].numpy())
      source = example["source"].numpy().decode()
      assert source_split.setdefault(source, split) == split  # a source, one split
  assert sorted(stored) == sorted(originals.values())  # byte for byte, none lost
  names = builder.info.features["label"].names
  if key == "vision":
    assert names == ["Apple_iPhone4s", "Samsung_GalaxyS3Mini"]  # devices merged by model


def test_builder_reports_bad_files_and_missing_manual_dir(tmp_path):
  manual = testing.make_manual_dir("gan", tmp_path / "manual", per_class=3)
  (manual / "horse2zebra" / "fake" / "broken.png").write_text("oops")
  builder = tfds_builders.TfjpegGan(data_dir=str(tmp_path / "tfds"))
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  bad = builder.info.metadata["bad_files"]
  assert [b["path"] for b in bad] == [str(manual / "horse2zebra" / "fake" / "broken.png")]
  task = tasks.get(config_lib.TaskConfig(name="gan", tfds_data_dir=str(tmp_path / "tfds")))
  assert len(task.bad_files) == 1 and "1 bad files" in task.summary
  # TFDS checks the manual directory first; its message names it and our instructions.
  with pytest.raises(
    (AssertionError, FileNotFoundError), match="(?s)nowhere does not exist.*CycleGAN"
  ):
    tfds_builders.TfjpegGan(data_dir=str(tmp_path / "tfds2")).download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "nowhere"))
    )
  with pytest.raises(ValueError, match="not built yet.*--data_dir"):
    tasks.get(config_lib.TaskConfig(name="lsun", tfds_data_dir=str(tmp_path / "tfds3")))


def test_folder_task_counts_bad_files_and_refuses_empty_classes(tmp_path):
  for c in ("a", "b"):
    for i in range(5):
      testing.write_image(tmp_path / c / f"{i}.jpg", testing.synthetic_image(80, 80, seed=i))
  (tmp_path / "a" / "junk.jpg").write_text("junk")
  testing.write_image(tmp_path / "b" / "tiny.png", testing.synthetic_image(20, 20))
  task = tasks.get(config_lib.TaskConfig(name="folder", data_dir=str(tmp_path), patch_size=64))
  assert sum(task.num_images.values()) == 10 and len(task.bad_files) == 2
  assert "junk.jpg" in task.summary and "smaller than the 64x64 patch" in task.summary
  (tmp_path / "c").mkdir()
  with pytest.raises(ValueError, match=r"class folder .*/c holds no images"):
    tasks.get(config_lib.TaskConfig(name="folder", data_dir=str(tmp_path), patch_size=64))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    tasks.get(config_lib.TaskConfig(name="folder", data_dir=str(tmp_path / "missing")))
  with pytest.raises(ValueError, match="--data_dir"):
    tasks.get("folder")


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data absent")
def test_folder_task_on_real_photos(tmp_path):
  # The shared collections as two classes, linked, not copied.
  for name in ("kodak", "McMaster"):
    os.symlink(testing.shared_data_dir() / name, tmp_path / name)
  task = tasks.get(config_lib.TaskConfig(name="folder", data_dir=str(tmp_path), patch_size=224))
  assert sum(task.num_images.values()) == 42 and len(task.bad_files) == 0
  from tfjpeg.pipeline import input_pipeline  # pylint: disable=g-import-not-at-top

  config = input_pipeline.PipelineConfig.of(patch_size=224, batch_size=4)
  batch = next(
    iter(
      input_pipeline.eval_dataset(task, "test", [input_pipeline.Condition("random", 90)], config)
    )
  )
  assert batch["image"].shape[1:] == (224, 224, 3)


def test_task_examples_figure(tmp_path):
  from tfjpeg.analysis import plotting  # pylint: disable=g-import-not-at-top

  task = tasks.get(
    config_lib.TaskConfig(name="shapes", data_dir=str(tmp_path / "data"), builtin_scenes=8)
  )
  path = plotting.task_examples(tasks.examples(task, per_class=1), str(tmp_path / "shapes.png"))
  from PIL import Image  # pylint: disable=g-import-not-at-top

  with Image.open(path) as im:
    assert im.format == "PNG" and im.size[1] > im.size[0]  # one row pair per class


def test_empty_split_is_an_empty_dataset_of_strings(tmp_path):
  for c in ("a", "b"):
    for i in range(2):  # two sources per class: no validation source left
      testing.write_image(tmp_path / c / f"{c}{i}.png", testing.synthetic_image(70, 70, seed=i))
  task = tasks.get(config_lib.TaskConfig(name="folder", data_dir=str(tmp_path), patch_size=64))
  assert task.num_images["validation"] == 0
  dataset = task.images("validation")
  assert dataset.element_spec["encoded"].dtype == tf.string
  assert list(dataset) == []


def test_imagenet_synsets_can_be_overridden(tmp_path):
  manual = testing.make_manual_dir("imagenet", tmp_path / "manual", per_class=3)
  task = tasks.get(
    config_lib.TaskConfig(
      name="imagenet",
      data_dir=str(manual),
      tfds_data_dir=str(tmp_path / "tfds"),
      synsets=("n01440764", "n02102040"),
    )
  )
  assert task.class_names == ["n01440764", "n02102040"]
  # Lists that agree on a long prefix still get datasets of their own.
  names = list(tfds_builders.DEFAULT_SYNSETS)
  longer = tasks.get(
    config_lib.TaskConfig(
      name="imagenet",
      data_dir=str(manual),
      tfds_data_dir=str(tmp_path / "tfds"),
      synsets=tuple(names[:8]),
    )
  )
  shorter = tasks.get(
    config_lib.TaskConfig(
      name="imagenet",
      data_dir=str(manual),
      tfds_data_dir=str(tmp_path / "tfds"),
      synsets=tuple(names[:7]),
    )
  )
  assert len(longer.class_names) == 8 and len(shorter.class_names) == 7
  assert tasks.synsets_config_name(names[:8]) != tasks.synsets_config_name(names[:7])
