"""bin/degrade's work and its runners: the check of each JPEG folded into its
decode (a truncated and a corrupt JPEG in the folder are named, never
half-written nor dropped), the manifest's drawn QFs, and Apache Beam's
local multi-process runner writing the local path's files, manifest, draws
and scores byte for byte (skipped where apache-beam is not installed).

One small folder, degraded once per runner and scored once per runner,
serves every test here (module fixtures)."""

import filecmp
import os

import cv2
import keras
import numpy as np
import pandas as pd
import pytest

from tfjpeg.analysis import degrade
from tfjpeg.analysis import file_report
from tfjpeg.analysis import stability
from tfjpeg.codec import images
from tfjpeg.core import beam
from tfjpeg.core.errors import ConfigError
from tfjpeg.serving import classifier as classifier_lib
from tfjpeg.serving import predict

import helpers as testing

# A save at a drawn QF, made to half of the images: a QF drawn, and none.
CHAINS = ("jpeg:65..100@0.5",)
# Beam's local runner in multi-process mode: two worker processes degrade,
# one scores (each worker process starts TensorFlow: seconds of the suite).
BEAM = "--direct_running_mode=multi_processing --direct_num_workers=2"
BEAM_ONE = "--direct_running_mode=multi_processing --direct_num_workers=1"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """Three JPEGs a class (one of them progressive, one 4:4:4), a PNG, and two
  JPEGs the report refuses: one truncated (its header pass finds it), one
  whose scan data has flipped bytes (its strict decode finds it)."""
  root = tmp_path_factory.mktemp("labelled")
  for c, name in enumerate(("real", "fake")):
    for k in range(3):
      rgb = testing.synthetic_image(72 + 16 * k, 88 + 8 * c, seed=10 * c + k)
      flags = [cv2.IMWRITE_JPEG_QUALITY, 85 + 5 * k, cv2.IMWRITE_JPEG_PROGRESSIVE, int(k == 1)]
      if k == 2:
        flags += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
      os.makedirs(root / name, exist_ok=True)
      cv2.imwrite(str(root / name / f"{k}.jpg"), rgb[..., ::-1], flags)
  testing.write_image(root / "fake" / "p.png", testing.synthetic_image(64, 64, seed=3))
  good = (root / "real" / "0.jpg").read_bytes()
  (root / "real" / "truncated.jpg").write_bytes(good[: len(good) // 2])
  scan = good.rfind(b"\xff\xda")
  flipped = bytearray(good)
  for k in range(scan + 40, len(flipped) - 10, 7):
    flipped[k] ^= 0xFF
  (root / "real" / "corrupt.jpg").write_bytes(bytes(flipped))
  return str(root)


def _degrade(folder, out, **runner):
  """As stored, at the common QF, and through CHAINS: no QF or resize grid."""
  grids = dict(qualities=(), resize_factors=(1.0,), resize_qualities=(None,), chains=CHAINS)
  return degrade.degrade(folder, str(out), seed=3, **grids, **runner)


@pytest.fixture(scope="module")
def local(folder, tmp_path_factory):
  out = tmp_path_factory.mktemp("local") / "degraded"
  return str(out), _degrade(folder, out)


@pytest.fixture(scope="module")
def on_beam(folder, local, tmp_path_factory):
  pytest.importorskip(
    "apache_beam", reason="apache-beam is an optional extra (.[beam], in .[test])"
  )
  out = tmp_path_factory.mktemp("beam") / "degraded"
  return str(out), _degrade(folder, out, runner="beam", beam_options=BEAM)


def test_a_truncated_and_a_corrupt_jpeg_are_named_never_written(folder, local):
  out, summary = local
  assert summary["bad"] == 2 and summary["images"] == 7
  bad = pd.read_csv(os.path.join(out, "bad_files.csv"))
  assert [os.path.basename(p) for p in bad["path"]] == ["corrupt.jpg", "truncated.jpg"]
  for row in bad.to_dict("records"):  # the problem the report's probe names
    with pytest.raises(images.BadImageError) as probed:
      images.probe(row["path"])
    assert row["problem"] == probed.value.problem
  written = [f for _, _, names in os.walk(out) for f in names]
  assert not [f for f in written if f.startswith(("corrupt", "truncated"))]
  manifest = pd.read_csv(os.path.join(out, "manifest.csv"), dtype={"image_id": str})
  assert len(manifest) == summary["files"] == 7 * summary["conditions"]


def test_the_manifest_gives_the_qf_a_chain_drew_and_none_where_none_was(local):
  out, _ = local
  manifest = pd.read_csv(os.path.join(out, "manifest.csv"), dtype={"image_id": str})
  draws = pd.read_csv(os.path.join(out, "chain_draws.csv"), dtype={"image_id": str})
  rows = manifest[manifest["condition"] == CHAINS[0]].merge(draws, on="image_id")
  saved = rows["0_jpeg_applied"] == 1
  assert 0 < saved.sum() < len(rows)  # both cases are tested
  assert (rows[saved]["qf"] == rows[saved]["0_jpeg_qf"]).all()
  assert rows[saved]["qf"].between(65, 100).all() and rows[~saved]["qf"].isna().all()
  assert manifest[manifest["condition"] == "stored"]["qf"].isna().all()
  common = manifest[manifest["condition"] == "common"]["qf"]
  assert common.notna().all() and common.nunique() == 1


def test_beam_writes_the_local_paths_bytes(local, on_beam):
  """Every file, the manifest, the draws, degrade.json and bad_files.csv."""
  (here, summary), (there, beam_summary) = local, on_beam
  assert beam_summary == summary

  def differences(compared):
    found = compared.diff_files + compared.left_only + compared.right_only
    return found + [f for sub in compared.subdirs.values() for f in differences(sub)]

  compared = filecmp.dircmp(here, there)
  assert not differences(compared)
  for name in ("manifest.csv", "chain_draws.csv", "degrade.json", "bad_files.csv"):
    assert filecmp.cmp(os.path.join(here, name), os.path.join(there, name), shallow=False)
  assert not os.path.exists(os.path.join(there, ".beam"))  # the shards merged and gone


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
  """A small two-class Keras detector taking whole images resized to 32."""
  inputs = keras.Input((32, 32, 3))
  hidden = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
  model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
  model.layers[-1].set_weights([np.array([[3.0, -3.0], [-1.0, 2.0], [0.5, 0.1]]), np.zeros(2)])
  path = tmp_path_factory.mktemp("detector") / "detector.keras"
  model.save(path)
  return str(path)


def _predict(detector, folder, out, **runner):
  return predict.run(
    detector,
    [folder],
    str(out),
    class_names=["real", "fake"],
    preprocessing=classifier_lib.Preprocessing(input="resize"),
    **runner,
  )


def test_predict_passes_over_degrades_own_files_and_beam_scores_as_here(local, detector, tmp_path):
  out, degraded = local
  here = tmp_path / "here.csv"
  summary = _predict(detector, out, here)
  rows = pd.read_csv(here, keep_default_na=False)
  assert summary["errors"] == 0 and summary["files"] == len(rows) == degraded["files"]
  assert not rows["path"].str.endswith((".csv", ".json")).any()
  # A detector at chance as stored gets one line saying so, and nothing else.
  page = file_report.from_scores(str(here), out, str(tmp_path / "report"))
  assert len(page["verdict"]) == 1 and page["verdict"][0].startswith("At chance as stored")
  html = (tmp_path / "report" / "report.html").read_text()
  assert 'src="data:image/png;base64,' in html and 'href="stability.csv"' in html
  assert html.count('<div class="wide"><table') == html.count("<table")  # within the page
  pytest.importorskip(
    "apache_beam", reason="apache-beam is an optional extra (.[beam], in .[test])"
  )
  there = tmp_path / "there.csv"
  beam_summary = _predict(detector, out, there, runner="beam", beam_options=BEAM_ONE)
  assert here.read_bytes() == there.read_bytes()
  beam_summary.pop("images_per_second"), summary.pop("images_per_second")
  assert beam_summary == summary


def test_the_beam_runner_without_beam_is_one_line_saying_what_to_install(monkeypatch):
  monkeypatch.setattr(beam, "available", lambda: False)
  with pytest.raises(ConfigError) as refused:
    degrade.degrade("nowhere", "nothing", runner="beam")
  assert "pip install -e '.[beam]'" in str(refused.value) and "\n" not in str(refused.value)
  with pytest.raises(ConfigError, match="runner must be one of local, beam"):
    beam.check_runner("spark")


def test_only_a_detector_at_chance_as_stored_gets_the_chance_line():
  row = dict(balanced_accuracy=0.52, balanced_accuracy_low=0.41, balanced_accuracy_high=0.63)
  assert stability.at_chance(row, 2)[0].startswith("At chance as stored: balanced accuracy 0.52")
  assert not stability.at_chance(dict(row, balanced_accuracy_low=0.51), 2)  # above chance
  assert not stability.at_chance(dict(row, balanced_accuracy=0.61), 2)  # wide, not at chance
  assert stability.at_chance(dict(row, balanced_accuracy=0.3, balanced_accuracy_low=0.2), 4)
