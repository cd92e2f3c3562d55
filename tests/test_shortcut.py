"""The compression swap and the matching recipe: test images re-saved exactly as
compressing by hand would, and training patches that carry no trace of how
their file was stored."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.codec import images
from tfjpeg.data import audit
from tfjpeg.data import tasks
from tfjpeg.experiments import run as run_lib
from tfjpeg.pipeline import input_pipeline

import helpers as testing


def _confounded_folder(root, count=3, quality=80):
  """'fake' as PNG and 'real' as JPEG at `quality`, of the same scenes."""
  for i in range(count):
    rgb = testing.synthetic_image(64, 80, seed=i)
    testing.write_image(root / "fake" / f"{i}.png", rgb)
    testing.write_image(root / "real" / f"{i}.jpg", rgb, quality=quality)
  return root


def _decoded(path):
  return images.decode(tf.io.read_file(str(path))).numpy()


def test_swap_and_common_equal_compressing_by_hand(tmp_path):
  root = _confounded_folder(tmp_path / "data")
  task = tasks.labelled_folder(root, 32)
  profile = audit.task_profile(task)
  assert profile.swap_qfs == ((80, 80, 80), ()) and profile.common_qf == 80
  config = config_lib.make(
    task="folder",
    data_dir=str(root),
    patch_size=32,
    test_crops=("aligned", "random"),
    test_resaves=("swap", "common"),
  )
  conditions = input_pipeline.conditions(config.test)
  assert [c.name for c in conditions] == [
    "aligned_qfnone",
    "random_qfnone",
    "aligned_qfnone_swap",
    "aligned_qfnone_common",
    "random_qfnone_swap",
    "random_qfnone_common",
  ]
  dataset = input_pipeline.eval_dataset(
    task, "test", conditions, input_pipeline.PipelineConfig.for_run(config, task, profile)
  )
  paths = dict(zip(task.files["image_id"], task.files["path"]))
  checked = set()
  for batch in dataset.unbatch():
    condition = conditions[int(batch["condition"])]
    path = paths[batch["image_id"].numpy().decode()]
    whole = _decoded(path)
    if condition.resave == "common" or (condition.resave == "swap" and path.endswith(".png")):
      whole = testing.opencv_compress(whole, 80)  # the whole image, before the crop
    y, x = batch["offset"].numpy()
    np.testing.assert_array_equal(batch["image"].numpy(), whole[y : y + 32, x : x + 32])
    checked.add((condition.name, path.endswith(".png")))
  assert len(checked) == 12
  # The swap changed the lossless class only, and really changed it.
  as_stored = _decoded(root / "fake" / "0.png")
  assert not np.array_equal(testing.opencv_compress(as_stored, 80), as_stored)


def test_swap_draws_uniformly_from_each_class_pool():
  pools = ((), (50, 60, 70), (80,))
  drawn = {
    label: [
      int(input_pipeline.swap_quality(pools, tf.constant(label), tf.constant([7, i])))
      for i in range(300)
    ]
    for label in range(3)
  }
  assert set(drawn[0]) == {0} and set(drawn[2]) == {80}
  counts = pd.Series(drawn[1]).value_counts()
  assert set(counts.index) == {50, 60, 70} and counts.min() > 70  # about 100 each
  again = int(input_pipeline.swap_quality(pools, tf.constant(1), tf.constant([7, 3])))
  assert again == drawn[1][3]  # stateless: the same seed, the same QF


def test_a_matched_run_is_tested_and_swept_on_its_files_as_stored(tmp_path):
  from tfjpeg.analysis import offsets  # pylint: disable=g-import-not-at-top

  root = _confounded_folder(tmp_path / "data", count=2)
  task = tasks.labelled_folder(root, 32)
  config = config_lib.make(task="folder", data_dir=str(root), patch_size=32, match_compression=True)
  pipeline = input_pipeline.PipelineConfig.for_run(
    config, task, training=False
  )  # no profile needed: tests ignore the recipe
  assert not pipeline.match_qfs
  model = lambda images, training=False: tf.one_hot(tf.zeros(tf.shape(images)[0], tf.int32), 2)
  table = offsets.analyse(model, task, config, period=8)
  assert len(table) == 81


def _single_image_task(path):
  """A task whose training split is one file."""

  def read(split, shuffle_seed=None):
    del split, shuffle_seed
    return tf.data.Dataset.from_tensor_slices(
      dict(encoded=[tf.io.read_file(str(path))], label=[0], image_id=["x"])
    )

  return tasks.Task(
    "one",
    "custom",
    ["x"],
    32,
    3,
    read,
    dict(train=1, validation=0, test=0),
    pd.DataFrame(columns=["path", "class_name", "problem"]),
  )


def test_matching_leaves_no_trace_of_how_the_file_was_stored(tmp_path):
  rgb = testing.synthetic_image(64, 96, seed=7)
  png = testing.write_image(tmp_path / "x.png", rgb)
  jpeg = testing.write_image(tmp_path / "x.jpg", rgb, quality=90)

  def patches(path, match_qfs):
    config = input_pipeline.PipelineConfig.of(
      patch_size=32, patches_per_image=3, match_qfs=match_qfs, batch_size=3, train_crop="random"
    )
    batch = next(iter(input_pipeline.train_dataset(_single_image_task(path), config, 0)))
    return batch["image"].numpy(), batch["qf"].numpy(), batch["first_qf"].numpy()

  lossless, qf, first = patches(png, (90,))
  stored, qf_stored, first_stored = patches(jpeg, (90,))
  # The PNG was saved once as the JPEG file was, then both patches again: equal.
  np.testing.assert_array_equal(lossless, stored)
  assert qf.tolist() == qf_stored.tolist() == [90] * 3
  assert first.tolist() == [90] * 3 and first_stored.tolist() == [0] * 3
  # Without the recipe the two files give different patches: the cue it removes.
  assert not np.array_equal(patches(png, ())[0], patches(jpeg, ())[0])


def test_settings_that_cannot_be_honoured_are_refused():
  with pytest.raises(ValueError, match="cannot be combined"):
    config_lib.make(match_compression=True, train_qfs=(90,))
  with pytest.raises(ValueError, match="'swop' is none of swap, common"):
    config_lib.make(test_resaves=("swop",))
  with pytest.raises(ValueError, match="no JPEG files"):
    profile = audit.CompressionProfile(("a",), ((),), 90, (), (101.0,))
    task = tasks.Task("t", "custom", ["a"], 32, 1, None, {}, pd.DataFrame())
    input_pipeline.PipelineConfig.for_run(config_lib.make(match_compression=True), task, profile)
  assert config_lib.make(match_compression=True).train_qf_label == "matched"


# The README's shortcut chain (configs/shortcut.py), once, one seed, at reduced
# scale: the confounded and the matched runs (the unconfounded one is left to
# the study), 160 scenes, 2 patches an image, 3 epochs (about 2 minutes). Its
# bounds are looser than the README's (3 seeds, 640 scenes, 6 epochs: unconfounded
# >= 0.75; confounded >= 0.95 and a swap drop >= 0.3; matched within 0.03 of
# the unconfounded net and under the swap). Measured at this scale: unconfounded
# 0.66; confounded 0.92, 0.57 under the swap; matched 0.53 as stored and 0.66
# under the swap: trained on JPEG only, a barely trained net still misreads the
# never-compressed generated test images, which the full scale no longer does.
CHAIN_SCALE = dict(builtin_scenes=160, patches_per_image=2, epochs=3, test_resaves=("swap",))
CONFOUNDED_AT_LEAST, SWAP_DROP_AT_LEAST = 0.85, 0.25
MATCHED_SWAP_AT_LEAST = 0.6  # no collapse where the confounded net falls to chance
MATCHED_SWAP_MOVE_AT_MOST = 0.2


def test_the_shortcut_chain_at_reduced_scale(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path / "cache"))
  preset = config_lib.load_preset("shortcut", "get_study")
  accuracy = {}
  for name, config in preset.runs:
    if name == "shortcut_unconfounded":  # what matched shows too: the trace is learnable
      continue
    config = config_lib.replace(config, **CHAIN_SCALE)
    results = run_lib.train_and_evaluate(config, str(tmp_path / name), log=print)
    accuracy[name] = {row.test_resave: row.balanced_accuracy for row in results.itertuples()}
  log = capsys.readouterr().out
  print(accuracy)  # shown when a bound below fails
  # The audit flags the confounded task before training, and names format and QF.
  assert "WARNING: generated_confounded: the file metadata predict the class" in log
  summary = (tmp_path / "shortcut_confounded" / "data_summary.txt").read_text()
  assert "metadata-only balanced accuracy 1.00" in summary
  assert "'generated' is PNG in 100% of files" in summary
  assert "'real' is JPEG in 100% of files (median QF 96)" in summary
  assert "WARNING: generated:" not in log  # the unconfounded copy gives nothing away
  confounded, matched = (accuracy[f"shortcut_{v}"] for v in ("confounded", "matched"))
  assert confounded["none"] >= CONFOUNDED_AT_LEAST, confounded
  assert confounded["none"] - confounded["swap"] >= SWAP_DROP_AT_LEAST, confounded
  assert matched["swap"] >= MATCHED_SWAP_AT_LEAST, matched
  assert abs(matched["none"] - matched["swap"]) <= MATCHED_SWAP_MOVE_AT_MOST, matched
  assert (
    "match_compression: lossless images saved once"
    in (tmp_path / "shortcut_matched" / "data_summary.txt").read_text()
  )


def test_lossy_webp_counts_as_compressed_and_lossless_webp_does_not():
  rgb = testing.synthetic_image(32, 32, seed=3)
  import io as io_lib  # pylint: disable=g-import-not-at-top

  from PIL import Image  # pylint: disable=g-import-not-at-top

  def saved(fmt, **params):
    buffer = io_lib.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **params)
    return tf.constant(buffer.getvalue())

  assert bool(input_pipeline.is_lossy(saved("JPEG", quality=90)))
  assert bool(input_pipeline.is_lossy(saved("WEBP", quality=80)))
  assert not bool(input_pipeline.is_lossy(saved("WEBP", lossless=True)))
  assert not bool(input_pipeline.is_lossy(saved("PNG")))


def test_matching_says_what_it_cannot_hide(tmp_path):
  for i in range(6):
    rgb = testing.synthetic_image(32, 32, seed=i)
    testing.write_image(tmp_path / "fake" / f"{i}.jpg", rgb, quality=75)
    testing.write_image(tmp_path / "real" / f"{i}.jpg", rgb, quality=96)
  note = audit.matching_limit(audit.audit(audit.folder_files(tmp_path)))
  assert note == (
    "NOTE: match_compression: the JPEG classes are stored at different QFs "
    "(median 'fake' 75, 'real' 96); their first compression still differs, and "
    "only the shared last save covers it."
  )
  same = _confounded_folder(tmp_path / "png_and_jpeg", count=4)
  assert audit.matching_limit(audit.audit(audit.folder_files(same))) is None


def test_the_positive_class_is_found_by_whole_words():
  from tfjpeg.analysis import report  # pylint: disable=g-import-not-at-top

  assert report.positive_class(["fake", "real"]) == "fake"
  assert report.positive_class(["0_real", "1_fakes"]) == "1_fakes"
  assert report.positive_class(["mountain", "organ"]) == "organ"  # no word matches: the second
  assert report.positive_class(["ai_generated", "camera"]) == "ai_generated"
  assert report.positive_class(["gan", "fake"]) == "fake"  # both named: the second
