"""tfjpeg.pipeline.input_pipeline: equals an OpenCV reference of the same steps; reproducible."""

import dataclasses
import itertools
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.codec import jpeg
from tfjpeg.data import tasks
from tfjpeg.pipeline import input_pipeline as ip

import helpers as testing

PATCH = 32


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  # Half PNG, half JPEG: both decode paths.
  return testing.folder_task(
    tmp_path_factory.mktemp("folder"),
    (83, 101),
    PATCH,
    per_class=10,
    png_every=2,
    quality=93,
    patches_per_image=3,
  )


def _opencv_reference(path, offset, lattice_qf, qf, first_qf=None):
  """The same steps with OpenCV alone: decode, lattice, [first QF], crop, compress."""
  image = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]
  if lattice_qf:
    image = testing.opencv_compress(image, lattice_qf)
  if first_qf:
    image = testing.opencv_compress(image, first_qf)
  y, x = offset
  patch = np.ascontiguousarray(image[y : y + PATCH, x : x + PATCH])
  return testing.opencv_compress(patch, qf) if qf else patch


@pytest.mark.parametrize("lattice_qf", [None, 100])
@pytest.mark.parametrize(
  "condition",
  [
    ip.Condition("aligned", None),
    ip.Condition("random", 70),
    ip.Condition("misaligned", 50),
    ip.Condition("random", 90, first_qf=60),
  ],
)
def test_eval_pipeline_equals_opencv_reference(folder, lattice_qf, condition):
  task, path_of, _ = folder
  config = ip.PipelineConfig.of(
    patch_size=PATCH, patches_per_image=3, lattice_qf=lattice_qf, batch_size=7
  )
  seen = 0
  for batch in ip.eval_dataset(task, "test", [condition], config):
    for image, offset, image_id, qf in zip(
      batch["image"].numpy(),
      batch["offset"].numpy(),
      batch["image_id"].numpy(),
      batch["qf"].numpy(),
    ):
      expected = _opencv_reference(
        path_of[image_id.decode()], offset, lattice_qf, condition.qf, condition.first_qf
      )
      np.testing.assert_array_equal(image, expected)
      assert qf == (condition.qf or 0)
      if condition.crop == "aligned":
        assert offset[0] % 8 == 0 and offset[1] % 8 == 0
      seen += 1
  assert seen == task.num_images["test"] * 3


def test_train_pipeline_equals_opencv_reference_with_augmentation(folder):
  task, path_of, _ = folder
  config = ip.PipelineConfig.of(
    patch_size=PATCH,
    patches_per_image=3,
    train_crop="random",
    train_qfs=(60, 80),
    aug_fraction=0.5,
    batch_size=16,
  )
  qualities = []
  for batch in ip.train_dataset(task, config, epoch=0):
    for image, offset, image_id, qf in zip(
      batch["image"].numpy(),
      batch["offset"].numpy(),
      batch["image_id"].numpy(),
      batch["qf"].numpy(),
    ):
      expected = _opencv_reference(path_of[image_id.decode()], offset, None, int(qf))
      np.testing.assert_array_equal(image, expected)
      qualities.append(int(qf))
  assert len(qualities) == task.num_images["train"] * 3
  assert set(qualities) == {0, 60, 80}
  assert 0.25 < np.mean(np.array(qualities) > 0) < 0.75


def test_double_compression_augmentation_equals_opencv_reference(folder):
  task, path_of, _ = folder
  config = ip.PipelineConfig.of(
    patch_size=PATCH,
    patches_per_image=3,
    train_crop="random",
    train_qfs=(80, 90),
    aug_fraction=0.5,
    double_qfs=(50, 60),
    double_fraction=0.5,
    batch_size=16,
  )
  pairs = []
  for batch in ip.train_dataset(task, config, epoch=1):
    for image, offset, image_id, qf, first_qf in zip(
      *(batch[k].numpy() for k in ("image", "offset", "image_id", "qf", "first_qf"))
    ):
      expected = _opencv_reference(path_of[image_id.decode()], offset, None, int(qf), int(first_qf))
      np.testing.assert_array_equal(image, expected)
      pairs.append((int(first_qf), int(qf)))
  firsts = {f for f, _ in pairs}
  assert firsts == {0, 50, 60}
  assert all(q in (80, 90) for f, q in pairs if f)  # double: always saved again
  assert {q for f, q in pairs if not f} == {0, 80, 90}  # single: the usual augmentation
  # The first QF is drawn per image: all patches of an image share it.
  by_image = {}
  for batch in ip.train_dataset(task, config, epoch=1):
    for image_id, first_qf in zip(batch["image_id"].numpy(), batch["first_qf"].numpy()):
      by_image.setdefault(image_id, set()).add(int(first_qf))
  assert all(len(v) == 1 for v in by_image.values())


def test_double_compression_needs_second_qfs():
  with pytest.raises(ValueError, match="train_qfs"):
    ip.PipelineConfig.of(double_qfs=(50,))
  with pytest.raises(ValueError, match="double_fraction"):
    ip.PipelineConfig.of(train_qfs=(90,), double_qfs=(50,), double_fraction=1.5)


def _epoch(task, config, epoch):
  return [
    (b["image_id"].numpy().tolist(), b["offset"].numpy().tolist(), b["qf"].numpy().tolist())
    for b in ip.train_dataset(task, config, epoch)
  ]


def test_epochs_are_reproducible_and_differ(folder):
  task, _, _ = folder
  config = ip.PipelineConfig.of(
    patch_size=PATCH, patches_per_image=2, train_qfs=(50,), batch_size=8
  )
  assert _epoch(task, config, 3) == _epoch(task, config, 3)
  assert _epoch(task, config, 3) != _epoch(task, config, 4)
  other_seed = ip.PipelineConfig.of(
    patch_size=PATCH, patches_per_image=2, train_qfs=(50,), batch_size=8, seed=1
  )
  assert _epoch(task, other_seed, 3) != _epoch(task, config, 3)


def test_automatic_shuffle_buffer_holds_an_epoch_within_a_memory_bound(folder):
  task, _, _ = folder
  auto = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=3, shuffle_buffer=None)
  assert ip.shuffle_buffer_size(auto, 100) == 300
  assert (
    ip.shuffle_buffer_size(
      ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=3, shuffle_buffer=64), 100
    )
    == 64
  )
  large = dataclasses.replace(auto, patch_size=512, patches_per_image=10)
  assert ip.shuffle_buffer_size(large, 1000) == ip.SHUFFLE_BYTES // (3 * 512 * 512)
  # A whole-epoch buffer batches patches of many images together.
  many = ip.PipelineConfig.of(
    patch_size=PATCH, patches_per_image=8, batch_size=8, shuffle_buffer=None
  )
  first = next(iter(ip.train_dataset(task, many, 0)))["image_id"].numpy()
  assert len(set(first)) >= 5


def test_patches_of_an_image_stay_in_one_split(folder):
  task, _, files = folder
  config = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=3)
  seen = {}
  for split in ("train", "validation", "test"):
    dataset = (
      ip.train_dataset(task, config, 0)
      if split == "train"
      else ip.eval_dataset(task, split, [ip.Condition("random")], config)
    )
    ids = {i.decode() for b in dataset for i in b["image_id"].numpy()}
    assert ids == set(files.loc[files["split"] == split, "image_id"])
    for i in ids:
      assert seen.setdefault(i, split) == split


def test_eval_crops_are_the_same_in_every_run(folder):
  task, _, _ = folder
  config = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=2)
  run = lambda: [
    b["offset"].numpy().tolist()
    for b in ip.eval_dataset(task, "test", [ip.Condition("random")], config)
  ]
  assert run() == run()


def test_all_conditions_in_one_pass_equal_one_pass_each(folder):
  task, _, _ = folder
  config = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=2, batch_size=5)
  conditions = [ip.Condition(c, q) for c in ("aligned", "random") for q in (None, 50, 90)]
  conditions += [ip.Condition("random", 90, first_qf=50), ip.Condition("aligned", 90, 50)]
  together = {}
  for b in ip.eval_dataset(task, "test", conditions, config):
    for image, image_id, number in zip(
      b["image"].numpy(), b["image_id"].numpy(), b["condition"].numpy()
    ):
      together.setdefault(number, []).append((image_id, image))
  for number, condition in enumerate(conditions):
    alone = [
      (i, im)
      for b in ip.eval_dataset(task, "test", [condition], config)
      for i, im in zip(b["image_id"].numpy(), b["image"].numpy())
    ]
    assert len(alone) == len(together[number]) == task.num_images["test"] * 2
    for (i1, a), (i2, b) in zip(alone, together[number]):
      assert i1 == i2
      np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("way", testing.WAYS)
@pytest.mark.parametrize("encoding", ["png", "jpeg", "jpeg_lattice"])
def test_cut_patches_three_ways(way, encoding):
  image = testing.synthetic_image(50, 60, seed=4)
  lattice_qf = 100 if encoding == "jpeg_lattice" else None
  data = tf.io.encode_png(image) if encoding == "png" else jpeg.encode(image, 90)
  source = image if encoding == "png" else jpeg.decode(data).numpy()
  if lattice_qf:
    source = testing.opencv_compress(source, 100)
  config = ip.PipelineConfig.of(
    patch_size=16, patches_per_image=4, crop_grid=16, lattice_qf=lattice_qf
  )

  def fn(encoded, seed):
    element = dict(encoded=encoded, label=tf.constant(1), image_id=tf.constant("x"))
    return ip.cut_patches(element, config, ["aligned", "random"], seed)

  out = testing.run(fn, way, data, tf.constant([5, 6], tf.int64))
  for mode in ("aligned", "random"):
    assert out[mode]["image"].shape == (4, 16, 16, 3)
    for patch, (y, x) in zip(out[mode]["image"], out[mode]["offset"]):
      if mode == "aligned":
        assert y % 16 == 0 and x % 16 == 0
      np.testing.assert_array_equal(patch, source[y : y + 16, x : x + 16])
    assert out[mode]["label"].tolist() == [1] * 4


def test_evaluation_reads_each_test_image_once_for_all_conditions(folder):
  task, _, _ = folder
  reads = []

  def count(element):  # a data dependency, so tf.data cannot prune it
    image_id = tf.py_function(
      lambda i: reads.append(i.numpy()) or i, [element["image_id"]], tf.string
    )
    return dict(element, image_id=tf.ensure_shape(image_id, []))

  counting = dataclasses.replace(
    task, images=lambda split, shuffle_seed=None: task.images(split, shuffle_seed).map(count)
  )
  conditions = [
    ip.Condition(c, q) for c in ("aligned", "random") for q in (None, 50, 60, 70, 80, 90, 99)
  ]  # the study's 14 conditions
  config = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=2, batch_size=64)
  patches = sum(
    int(b["image"].shape[0]) for b in ip.eval_dataset(counting, "test", conditions, config)
  )
  assert patches == task.num_images["test"] * 2 * 14
  assert len(reads) == len(set(reads)) == task.num_images["test"]


def test_training_through_a_local_tf_data_service(folder):
  task, _, _ = folder
  dispatcher = tf.data.experimental.service.DispatchServer()
  worker = tf.data.experimental.service.WorkerServer(  # noqa: F841  kept alive
    tf.data.experimental.service.WorkerConfig(dispatcher_address=dispatcher.target.split("://")[1])
  )
  config = ip.PipelineConfig.of(
    patch_size=PATCH, patches_per_image=2, batch_size=4, train_qfs=(50,)
  )
  remote = dataclasses.replace(config, data_service=dispatcher.target)
  key = lambda c: sorted(
    (i, tuple(o), int(q))
    for b in ip.train_dataset(task, c, 0)
    for i, o, q in zip(b["image_id"].numpy(), b["offset"].numpy().tolist(), b["qf"].numpy())
  )
  assert key(remote) == key(config)  # one worker: the same epoch, served remotely
  # Two runs with the same seed on one dispatcher, read at the same time: each
  # gets its whole epoch when their jobs are named apart.
  runs = [
    iter(ip.train_dataset(task, dataclasses.replace(remote, service_job=name), 0))
    for name in ("run-a", "run-b")
  ]
  seen = [[], []]
  for batches in itertools.zip_longest(*runs):
    for k, batch in enumerate(batches):
      if batch is not None:
        seen[k] += [
          (i, tuple(o), int(q))
          for i, o, q in zip(
            batch["image_id"].numpy(), batch["offset"].numpy().tolist(), batch["qf"].numpy()
          )
        ]
  assert sorted(seen[0]) == sorted(seen[1]) == key(config)


def test_realigned_crops_land_on_the_estimated_grid():
  image = testing.synthetic_image(200, 230, seed=8)
  config = ip.PipelineConfig.of(patch_size=64, patches_per_image=6)
  seed = tf.constant([3, 4], tf.int64)
  element = lambda data: dict(encoded=data, label=tf.constant(0), image_id=tf.constant("x"))
  # A JPEG: its grid starts at the top-left, so realigned offsets are multiples of 8.
  cut = ip.cut_patches(element(jpeg.encode(image, 80)), config, ["random", "realigned"], seed)
  assert (cut["realigned"]["offset"].numpy() % 8 == 0).all()
  moved = np.abs(cut["realigned"]["offset"].numpy() - cut["random"]["offset"].numpy())
  assert (moved < 8).all() and moved.any()
  # Never compressed: no grid is found, and the random crops are kept.
  cut = ip.cut_patches(element(tf.io.encode_png(image)), config, ["random", "realigned"], seed)
  np.testing.assert_array_equal(cut["realigned"]["offset"], cut["random"]["offset"])


def test_test_crops_name_their_grid_whatever_the_training_grid(folder):
  task, _, _ = folder
  trained_on_16 = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=3, crop_grid=16)
  conditions = [
    ip.Condition("aligned"),
    ip.Condition("misaligned"),
    ip.Condition("aligned", grid=16),
    ip.Condition("misaligned", grid=16),
  ]
  offsets = {}
  for batch in ip.eval_dataset(task, "test", conditions, trained_on_16):
    for number, offset in zip(batch["condition"].numpy(), batch["offset"].numpy()):
      offsets.setdefault(conditions[number].spelling, []).append(tuple(offset))
  on = lambda grid, o: o[0] % grid == 0 and o[1] % grid == 0
  assert all(on(8, o) for o in offsets["aligned"])
  assert not all(on(16, o) for o in offsets["aligned"])
  assert not any(on(8, o) for o in offsets["misaligned"])  # never on the 8x8 blocks
  assert all(on(16, o) for o in offsets["aligned16"])
  assert not any(on(16, o) for o in offsets["misaligned16"])
  assert config_lib.check_test_crop("aligned16") == ("aligned", 16)
  assert config_lib.check_test_crop("realigned") == ("realigned", 8)
  for bad in ("random16", "aligned12", "centre"):
    with pytest.raises(ValueError, match="test crop"):
      config_lib.check_test_crop(bad)


def test_windowed_and_whole_decodes_cut_the_same_patches(tmp_path, monkeypatch):
  # A JPEG large enough that both paths are plausible; force each in turn.
  path = tmp_path / "photo.jpg"
  testing.write_image(path, testing.synthetic_image(600, 900, seed=5), quality=92)
  element = dict(
    encoded=tf.constant(path.read_bytes()), label=tf.constant(0), image_id=tf.constant("a/photo")
  )
  config = ip.PipelineConfig.of(patch_size=96, patches_per_image=6)
  seed = tf.constant([3, 4], tf.int64)
  cut = {}
  for pays in (True, False):
    monkeypatch.setattr(jpeg, "windowed_decode_pays", lambda *a, pays=pays: tf.constant(pays))
    cut[pays] = ip.cut_patches(element, config, ["random", "aligned"], seed)
  for mode in ("random", "aligned"):
    np.testing.assert_array_equal(cut[True][mode]["offset"], cut[False][mode]["offset"])
    np.testing.assert_array_equal(cut[True][mode]["image"], cut[False][mode]["image"])


def _opencv_layout(image, name, quality=90):
  import cv2  # pylint: disable=g-import-not-at-top

  layout = getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{name}")
  params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, layout]
  return cv2.imencode(".jpg", image[..., ::-1], params)[1].tobytes()


@pytest.mark.parametrize(
  "name, mcu", [("422", (8, 16)), ("440", (16, 8)), ("420", (16, 16)), ("444", (8, 8))]
)
def test_chroma_grid_crops_follow_each_files_own_mcu_unless_it_is_saved_again(name, mcu):
  """A crop grid of 16 is the chroma MCU of the image as cut: a 4:2:2 camera
  file's own (8 high, 16 wide), or the pipeline's 4:2:0 once it is saved whole
  at a first QF."""
  data = _opencv_layout(testing.synthetic_image(120, 136, seed=2), name)
  config = ip.PipelineConfig.of(patch_size=32, patches_per_image=40, crop_grid=16)
  element = dict(encoded=tf.constant(data), label=tf.constant(0), image_id=tf.constant("x"))
  seed = tf.constant([3, 1], tf.int64)
  as_stored = ip.cut_patches(element, config, ["aligned", "misaligned"], seed)
  aligned, misaligned = (as_stored[m]["offset"].numpy() for m in ("aligned", "misaligned"))
  assert all(y % mcu[0] == 0 and x % mcu[1] == 0 for y, x in aligned)
  assert {(y % 16, x % 16) for y, x in aligned} == {
    (dy, dx) for dy in range(0, 16, mcu[0]) for dx in range(0, 16, mcu[1])
  }
  assert not any(y % mcu[0] == 0 and x % mcu[1] == 0 for y, x in misaligned)
  decoded = jpeg.decode(data).numpy()
  for patch, (y, x) in zip(as_stored["aligned"]["image"].numpy(), aligned):
    np.testing.assert_array_equal(patch, decoded[y : y + 32, x : x + 32])
  saved = ip.cut_patches(element, config, ["aligned"], seed, first_qf=tf.constant(90))
  assert all(y % 16 == 0 and x % 16 == 0 for y, x in saved["aligned"]["offset"].numpy())


def test_camera_layouts_through_the_lattice_cached_or_not_equal_opencv(tmp_path):
  """4:2:2 and 4:4:0 files as cameras write them: test patches as stored, at
  lattice QF 100 recomputed and read from the cache, equal OpenCV doing the same."""
  from tfjpeg.data import lattice  # pylint: disable=g-import-not-at-top

  for c, name in enumerate(("a", "b")):
    for i, layout in enumerate(("422", "440")):
      data = _opencv_layout(testing.synthetic_image(83, 101, seed=10 * c + i), layout, 93)
      os.makedirs(tmp_path / "data" / name, exist_ok=True)
      (tmp_path / "data" / name / f"{layout}.jpg").write_bytes(data)
  task = tasks.get(
    config_lib.TaskConfig(
      name="folder", data_dir=str(tmp_path / "data"), patch_size=PATCH, test_fraction=0.5
    )
  )
  files = task.files.set_index("image_id")["path"]
  cached = lattice.cached_task(task, 100, root=str(tmp_path / "cache"), log=lambda line: None)
  conditions = [ip.Condition("aligned", None, grid=16), ip.Condition("random", 70)]
  for source, lattice_qf, reference_qf in (
    (task, None, None),
    (task, 100, 100),
    (cached, None, 100),
  ):
    config = ip.PipelineConfig.of(patch_size=PATCH, lattice_qf=lattice_qf, batch_size=8)
    seen = 0
    for batch in ip.eval_dataset(source, "test", conditions, config):
      for image, offset, image_id, number in zip(
        *(batch[k].numpy() for k in ("image", "offset", "image_id", "condition"))
      ):
        condition = conditions[number]
        expected = _opencv_reference(files[image_id.decode()], offset, reference_qf, condition.qf)
        np.testing.assert_array_equal(image, expected)
        seen += 1
    assert seen == 2 * len(conditions)
