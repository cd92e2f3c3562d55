"""tfjpeg.analysis.offsets and the per-offset sweep: patches, phases, maps, curves, ASD%."""

import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.analysis import offsets
from tfjpeg.codec import grid
from tfjpeg.codec import jpeg
from tfjpeg.core import metrics
from tfjpeg.data import tasks
from tfjpeg.pipeline import input_pipeline as ip
from tfjpeg.train import rundir

import helpers as testing

PATCH = 32


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory):
  task, path_of, _ = testing.folder_task(
    tmp_path_factory.mktemp("offsets"), (70, 75), PATCH, per_class=6, quality=80, test_fraction=0.5
  )
  return task, path_of


def _decoded(path_of, image_id):
  return jpeg.decode(tf.io.read_file(path_of[image_id])).numpy()


@pytest.mark.parametrize("qf", [None, 90])
def test_sweep_cuts_every_phase_from_an_mcu_aligned_base(jpeg_folder, qf):
  task, path_of = jpeg_folder
  config = ip.PipelineConfig.of(patch_size=PATCH, batch_size=50)
  per_image = {}
  for batch in ip.offset_dataset(task, "test", config, period=8, qf=qf):
    for image, offset, phase, image_id in zip(
      *(batch[k].numpy() for k in ("image", "offset", "phase", "image_id"))
    ):
      source = _decoded(path_of, image_id.decode())
      y, x = offset
      expected = source[y : y + PATCH, x : x + PATCH]
      if qf:
        expected = testing.opencv_compress(np.ascontiguousarray(expected), qf)
      np.testing.assert_array_equal(image, expected)
      base = offset - phase
      assert (base % 16 == 0).all()
      per_image.setdefault(image_id, set()).add(tuple(phase))
  assert len(per_image) == task.num_images["test"]
  assert all(p == {(dy, dx) for dy in range(9) for dx in range(9)} for p in per_image.values())


def test_sweep_records_each_images_mcu_and_the_summary_reads_phases_by_it(tmp_path):
  """A 4:2:2 camera file's MCU is 8 high and 16 wide: a shift of (8, 0) keeps
  its chroma blocks whole, (0, 8) and (8, 8) do not."""
  import cv2  # pylint: disable=g-import-not-at-top

  params = [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422]
  for label in ("a", "b"):
    os.makedirs(tmp_path / label)
    for index in range(2):
      image = testing.synthetic_image(70, 75, seed=index + 3 * (label == "b"))
      cv2.imwrite(str(tmp_path / label / f"{index}.jpg"), image[..., ::-1], params)
  task = tasks.get(
    config_lib.TaskConfig(name="folder", data_dir=str(tmp_path), patch_size=48, test_fraction=0.5)
  )
  config = ip.PipelineConfig.of(patch_size=48, batch_size=289)
  batches = list(ip.offset_dataset(task, "test", config, period=16))
  assert {tuple(m) for b in batches for m in b["mcu"].numpy()} == {(8, 16)}
  saved = next(iter(ip.offset_dataset(task, "test", config, period=16, first_qf=90)))
  assert {tuple(m) for m in saved["mcu"].numpy()} == {(16, 16)}  # the pipeline's 4:2:0
  phases = np.array([(dy, dx) for dy in range(17) for dx in range(17)])
  labels = np.zeros(len(phases), int)
  right = np.all(phases % [8, 16] == 0, axis=1)  # a net right only on its MCU grid
  probabilities = np.stack([right, ~right], 1).astype(float)
  offsets = phases + [32, 48]  # from a base on the 16x16 grid
  mcus = np.tile([8, 16], (len(phases), 1))
  table = metrics.phase_table(probabilities, labels, phases, offsets, mcus)
  summary = metrics.offset_summary(table)
  assert (summary["mcu_aligned_only"], summary["block_aligned_only"]) == (1.0, 0.0)
  old = metrics.offset_summary(table.drop(columns="on_mcu"))  # read as 4:2:0
  assert (np.isnan(old["mcu_aligned_only"]), old["block_aligned_only"]) == (True, 1 / 3)


def test_phases_are_against_the_files_jpeg_grid(jpeg_folder):
  # Uncompressed test patches of a JPEG: the estimator sees the file's grid
  # move by exactly the phase.
  task, _ = jpeg_folder
  config = ip.PipelineConfig.of(patch_size=48, batch_size=81)
  batch = next(iter(ip.offset_dataset(task, "test", config, period=8)))
  checked = 0
  for image, (dy, dx) in zip(batch["image"], batch["phase"].numpy()):
    origin, confidence = grid.estimate(image)
    if confidence >= grid.CONFIDENT:
      assert tuple(origin.numpy()) == ((-dy) % 8, (-dx) % 8)
      checked += 1
  assert checked > 60


def test_sweep_refuses_images_too_small_for_the_shifts(jpeg_folder):
  task, _ = jpeg_folder
  config = ip.PipelineConfig.of(patch_size=64, batch_size=8)
  with pytest.raises(tf.errors.InvalidArgumentError, match="per-offset analysis"):
    next(iter(ip.offset_dataset(task, "test", config, period=8)))  # 64 + 8 > 70


def _fake_sweep(period, aligned_score, other_score, num_images=4):
  """Probabilities of a 2-class net whose true-class score depends on the phase only."""
  probabilities, labels, phases = [], [], []
  for image in range(num_images):
    label = image % 2
    for dy in range(period + 1):
      for dx in range(period + 1):
        on_grid = dy % period == 0 and dx % period == 0
        score = aligned_score if on_grid else other_score
        p = np.zeros(2)
        p[label], p[1 - label] = score, 1 - score
        probabilities.append(p)
        labels.append(label)
        phases.append((dy, dx))
  return np.array(probabilities), np.array(labels), np.array(phases)


def test_map_curve_and_asd_by_hand():
  table = metrics.phase_table(*_fake_sweep(8, 0.9, 0.3))
  assert len(table) == 81 and (table["n_patches"] == 4).all()
  grid_map = metrics.offset_map(table)
  assert grid_map.shape == (8, 8)
  assert grid_map[0, 0] == 1.0 and np.all(np.delete(grid_map.ravel(), 0) == 0.0)
  curve = metrics.displacement_curve(table)
  diagonal = curve[curve["direction"] == "diagonal"]
  assert diagonal["shift"].tolist() == list(range(9))
  np.testing.assert_allclose(diagonal["score_change"], [0] + [-0.6] * 7 + [0], atol=1e-12)
  assert metrics.average_score_drop(curve) == pytest.approx(100 * 0.6 / 0.9)
  summary = metrics.offset_summary(table)
  assert summary["aligned"] == 1.0 and summary["misaligned_mean"] == 0.0
  assert summary["period"] == 8
  flat = metrics.offset_summary(metrics.phase_table(*_fake_sweep(16, 0.8, 0.8)))
  assert flat["asd_percent"] == pytest.approx(0.0) and flat["period"] == 16
  assert flat["aligned"] == flat["misaligned_mean"] == 1.0


def test_offset_figure_from_files(tmp_path):
  paths = []
  for name, (aligned, other) in (("a", (0.9, 0.3)), ("b", (0.8, 0.8))):
    path = tmp_path / name / "offsets_qfnone.csv"
    path.parent.mkdir()
    metrics.phase_table(*_fake_sweep(8, aligned, other)).to_csv(path, index=False)
    paths.append(str(path))
  out = offsets.figure_from_files(paths, None, str(tmp_path / "fig"))
  assert [p.rsplit(".", 1)[1] for p in out] == ["png", "pdf"]
  assert all((tmp_path / f"fig.{e}").stat().st_size > 1000 for e in ("png", "pdf"))
  pd.DataFrame({"x": [1]}).to_csv(tmp_path / "bad.csv")
  with pytest.raises(ValueError, match="bad.csv is not an offsets file"):
    offsets.figure_from_files([str(tmp_path / "bad.csv")])


def test_chroma_phases_and_resummarize(tmp_path):
  # A net that needs whole 16x16 MCUs: right at (0, 0) only; half right at
  # the other 8-aligned phases; wrong elsewhere.
  probabilities, labels, phases = _fake_sweep(16, 0.9, 0.1)
  block_only = np.all(phases % 8 == 0, 1) & np.any(phases % 16 != 0, 1)
  probabilities[block_only & (labels == 0)] = [0.9, 0.1]
  probabilities[block_only & (labels == 1)] = [0.9, 0.1]
  table = metrics.phase_table(probabilities, labels, phases)
  summary = metrics.offset_summary(table)
  assert (summary["aligned"], summary["block_aligned_only"], summary["misaligned_mean"]) == (
    1.0,
    0.5,
    0.0,
  )
  assert np.isnan(
    metrics.offset_summary(metrics.phase_table(*_fake_sweep(8, 0.9, 0.1)))["block_aligned_only"]
  )
  assert rundir.sweep_tag("none", "none", 16) == "qfnone_period16"
  assert rundir.sweep_tag(90, 60) == "qf90_first60"
  table.to_csv(rundir.sweep_path(str(tmp_path), "90", "60", 16), index=False)
  pd.DataFrame([dict(task="t", test_qf="90", test_first_qf="60", period=16, aligned=0.3)]).to_csv(
    tmp_path / "offsets_summary.csv", index=False
  )
  fresh = offsets.resummarize(str(tmp_path))
  assert fresh["aligned"].tolist() == [1.0] and fresh["block_aligned_only"].tolist() == [0.5]
