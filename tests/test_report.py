"""bin/report: a JPEG robustness report of a briefly trained net, from its run
directory and as a .keras file on a labelled folder; its page agrees with its
tables and with bin/evaluate, and opens in a real headless browser."""

import html
import html.parser
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tfjpeg.analysis import evaluation
from tfjpeg.analysis import report
from tfjpeg.serving import classifier
from tfjpeg.serving import export

import helpers as testing

REPO = pathlib.Path(__file__).resolve().parent.parent
SMALL = dict(
  qualities=(None, 50, 90),
  double_pairs=((50, 90),),
  periods=(8,),
  resize_factors=(0.25, 0.5, 1.0, 2.0),  # 0.25 leaves a 32-pixel image: left out
  resize_qualities=(None, 75),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """hpf trained briefly on the built-in camera task (its own cache)."""
  base = tmp_path_factory.mktemp("report")
  env = dict(os.environ, TFJPEG_CACHE=str(base / "cache"), CUDA_VISIBLE_DEVICES="")
  workdir = base / "run"
  subprocess.run(
    [
      sys.executable,
      str(REPO / "bin" / "train"),
      "--epochs=1",
      "--steps_per_epoch=6",
      "--test_qfs=none",
      "--builtin_scenes=24",
      "--seed=3",
      f"--workdir={workdir}",
    ],
    env=env,
    check=True,
    capture_output=True,
  )
  return workdir, base / "cache"


class _Cells(html.parser.HTMLParser):
  """The text of every table row of a page."""

  def __init__(self):
    super().__init__()
    self.rows, self.row, self.cell = [], None, None

  def handle_starttag(self, tag, attrs):
    if tag == "tr":
      self.row = []
    elif tag in ("td", "th") and self.row is not None:
      self.cell = ""

  def handle_endtag(self, tag):
    if tag in ("td", "th") and self.cell is not None:
      self.row.append(self.cell.strip())
      self.cell = None
    elif tag == "tr" and self.row is not None:
      self.rows.append(self.row)
      self.row = None

  def handle_data(self, data):
    if self.cell is not None:
      self.cell += data


@pytest.fixture(scope="module")
def run_report(trained, tmp_path_factory):
  """bin/report's library call on the trained run: (report folder, summary)."""
  workdir, cache = trained
  out = tmp_path_factory.mktemp("run_report") / "report"
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("TFJPEG_CACHE", str(cache))
    summary = report.make(str(workdir), str(out), command="bin/report --model=RUN", **SMALL)
  return out, summary


def test_report_of_a_run_agrees_with_its_tables_and_bin_evaluate(
  trained, run_report, tmp_path, monkeypatch
):
  workdir, cache = trained
  monkeypatch.setenv("TFJPEG_CACHE", str(cache))
  out, summary = run_report
  page = (out / "report.html").read_text()
  everything = pd.read_csv(out / "conditions.csv", keep_default_na=False)
  chained = everything[everything["test_chain"] != "none"]
  table = everything[everything["test_chain"] == "none"]
  # 2 crops x 3 QFs, realigned, 2 crops x 1 double pair, 2 crops x (swap, common): the
  # cameras store at QF 92, 95, 90 and 97, so three are less compressed than cam_c.
  assert len(table) == 6 + 1 + 2 + 4 and set(table["n_images"]) == {summary["images"]}
  assert table["test_resave"].value_counts().to_dict() == {"none": 9, "swap": 2, "common": 2}
  # Resizing: factors 0.5, 1 and 2, each not saved again or saved at QF 75 (1 and
  # not saved is the stored row), and Corvi's protocol, on random crops.
  assert sorted(chained["test_chain"]) == sorted(
    ["resize:0.5", "resize:0.5>jpeg:75", "jpeg:75", "resize:2", "resize:2>jpeg:75", "corvi2023"]
  )
  assert set(chained["test_crop"]) == {"random"}
  resized = pd.read_csv(out / "resize.csv", keep_default_na=False)
  assert sorted(set(resized["resize_factor"])) == [0.5, 1.0, 2.0]
  stored = table[(table["test_crop"] == "random") & (table["test_qf"] == "none")]
  halved = chained[chained["test_chain"] == "resize:0.5"]
  cost = float(stored["balanced_accuracy"].iloc[0] - halved["balanced_accuracy"].iloc[0])
  assert any(
    line.startswith("Resizing: halving the size") and f"{abs(cost):.2f}" in line
    for line in summary["verdict"]
  )
  assert any(line.startswith("Under corvi2023") for line in summary["verdict"])
  assert "Factors 0.25 are left out" in page and "Processing chains and protocols" in page
  draws = pd.read_csv(out / "chain_draws.csv")
  corvi = draws[draws["test_chain"] == "corvi2023"]
  assert len(corvi) == summary["images"]
  assert (corvi["0_crop_height"] == 128).all() and set(corvi["2_jpeg_qf"]) <= set(range(65, 101))
  # Every accuracy of the CSV is in the page's tables, as printed there.
  parser = _Cells()
  parser.feed(page)
  header = next(r for r in parser.rows if "test_crop" in r and "test_chain" not in r)
  printed = {
    (
      r[header.index("test_crop")],
      r[header.index("test_qf")],
      r[header.index("test_first_qf")],
      r[header.index("test_resave")],
    ): r[header.index("balanced_accuracy")]
    for r in parser.rows
    if len(r) == len(header) and r != header
  }
  for row in table.itertuples():
    assert (
      printed[(row.test_crop, str(row.test_qf), str(row.test_first_qf), row.test_resave)]
      == f"{row.balanced_accuracy:.3f}"
    )
  # Per-class recall under every condition; their mean is the balanced accuracy.
  classes = pd.read_csv(out / "per_class.csv", keep_default_na=False)
  assert len(classes) == len(everything) * 4
  keys = ["test_crop", "test_qf", "test_first_qf", "test_resave", "test_chain"]
  means = classes.groupby(keys, sort=False)["recall"].mean().to_numpy()
  np.testing.assert_allclose(means, everything["balanced_accuracy"], atol=1e-9)
  assert "recall cam_a" in page and "Compression swap" in page
  assert any(
    "re-saved at the QFs of the other classes' files" in line for line in summary["verdict"]
  )
  # The same conditions through bin/evaluate's code: the same numbers.
  evaluated = evaluation.evaluate_run(
    str(workdir), ("aligned", "random"), (None, 50), test_chains=("resize:0.5>jpeg:75",)
  )
  assert "resize:0.5>jpeg:75" in set(evaluated["test_chain"])
  for row in evaluated.itertuples():
    if row.test_chain != "none" and row.test_crop != "random":
      continue  # the report puts chains on random crops only
    mine = everything[
      (everything["test_crop"] == row.test_crop)
      & (everything["test_qf"].astype(str) == str(row.test_qf))
      & (everything["test_first_qf"] == "none")
      & (everything["test_resave"] == "none")
      & (everything["test_chain"] == row.test_chain)
    ].iloc[0]
    for column in (
      "balanced_accuracy",
      "balanced_accuracy_low",
      "balanced_accuracy_high",
      "n_patches",
    ):
      assert mine[column] == pytest.approx(getattr(row, column), abs=1e-9), column
  # The verdict, the command and the fingerprint are on the page.
  assert all(html.escape(line) in page for line in summary["verdict"])
  assert "bin/report --model=RUN" in page
  assert classifier.file_fingerprint(str(workdir)) in page
  assert "http://" not in page and "https://" not in page  # nothing fetched
  sweep = pd.read_csv(out / "offsets_8.csv")
  assert len(sweep) == 81 and "asd_percent" in page
  # Over seeds: a second report whose accuracies are 0.1 higher.
  other = tmp_path / "other"
  shutil.copytree(out, other)
  everything.assign(balanced_accuracy=everything["balanced_accuracy"] + 0.1).to_csv(
    other / "conditions.csv", index=False
  )
  conditions, sweeps = report.across([str(out), str(other)], str(tmp_path / "across"))
  assert len(conditions) == len(everything) and set(conditions["n_seeds"]) == {2}
  np.testing.assert_allclose(
    conditions["balanced_accuracy_mean"], everything["balanced_accuracy"] + 0.05
  )
  np.testing.assert_allclose(conditions["balanced_accuracy_sd"], 0.1 / np.sqrt(2))
  assert sweeps["period"].tolist() == [8] and (sweeps["asd_percent_sd"] == 0).all()
  assert (tmp_path / "across" / "across_conditions.csv").exists()


def test_the_report_page_with_its_resize_sections_opens_in_a_browser(run_report, tmp_path):
  out, _ = run_report
  screenshot = tmp_path / "page.png"
  console = testing.open_in_chromium(out / "report.html", screenshot, height=6000)
  assert not console, console
  assert screenshot.stat().st_size > 50_000  # a page with figures, not a blank one


def test_report_of_a_keras_file_on_a_labelled_folder(trained, tmp_path):
  workdir, cache = trained
  keras_file = tmp_path / "detector.keras"
  classifier.load(str(workdir)).keras_model.save(keras_file)
  names = classifier.load(str(workdir)).class_names
  folder = tmp_path / "labelled"
  sources = sorted(p for p in cache.rglob("*.jpg") if p.parent.name in names[:2])
  for path in sources[:6] + [p for p in sources if p.parent.name == names[1]][:6]:
    (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
    shutil.copy(path, folder / path.parent.name / path.name)
  out = tmp_path / "report"
  summary = report.make(
    str(keras_file), str(out), images_dir=str(folder), class_names=names, **SMALL
  )
  table = pd.read_csv(out / "conditions.csv", keep_default_na=False)
  assert summary["images"] == 12 and set(table["n_images"]) == {12}
  assert np.isfinite(table["balanced_accuracy"]).all()
  (folder / "unknown_camera").mkdir()
  shutil.copy(sources[0], folder / "unknown_camera" / "x.jpg")
  with pytest.raises(ValueError, match="unknown_camera"):
    report.make(
      str(keras_file), str(tmp_path / "again"), images_dir=str(folder), class_names=names, **SMALL
    )


def test_labels_follow_the_models_class_order(tmp_path):
  task, _, files = testing.folder_task(tmp_path / "data", (70, 80), 64, per_class=3)
  held, columns = report.in_memory(task, ["b", "a", "c"])
  by_id = dict(zip(files["image_id"], files["class_name"]))
  for image_id, label in zip(columns["image_id"], columns["label"]):
    assert ["b", "a", "c"][label] == by_id[image_id.decode()]
  assert held.class_names == ["b", "a", "c"]
  assert [int(e["label"]) for e in held.images("test")] == columns["label"].tolist()
  with pytest.raises(ValueError, match="does not know"):
    report.in_memory(task, ["a"])


def test_an_onnx_export_of_a_run_gives_the_runs_report(trained, run_report, tmp_path, monkeypatch):
  """bin/export --format=onnx carries the run's classes, patch size and
  config: the report of the file, with no flag, is the run's report (ONNX
  Runtime's arithmetic against TensorFlow's: probabilities within 1e-6,
  every accuracy and AUC equal)."""
  workdir, cache = trained
  monkeypatch.setenv("TFJPEG_CACHE", str(cache))
  path = export.export_run(str(workdir), str(tmp_path / "run.onnx"), "onnx")
  summary = report.make(
    path, str(tmp_path / "onnx"), command="bin/report --model=RUN.onnx", **SMALL
  )
  out, by_run = run_report
  assert summary["verdict"] == by_run["verdict"]
  for name in ("conditions.csv", "per_class.csv", "resize.csv", "stability.csv"):
    mine, theirs = pd.read_csv(tmp_path / "onnx" / name), pd.read_csv(out / name)
    assert list(mine.columns) == list(theirs.columns) and len(mine) == len(theirs), name
    numbers = mine.select_dtypes("number").columns
    np.testing.assert_array_equal(
      mine[numbers].to_numpy(), theirs[numbers].to_numpy(), err_msg=name
    )
  offsets = pd.read_csv(tmp_path / "onnx" / "offsets_8.csv")
  np.testing.assert_allclose(
    offsets["score"], pd.read_csv(out / "offsets_8.csv")["score"], atol=1e-6
  )


def test_the_patch_reports_stability_compares_each_image_with_itself_as_stored(run_report, trained):
  """One row per random-crop condition and class, every test image of the
  class counted once; the flips are the images whose random crops vote
  otherwise than as stored."""
  out, summary = run_report
  flips = pd.read_csv(out / "stability.csv")
  assert {"qf50", "qf90", "qf50>qf90", "common", "resize:0.5", "corvi2023"} <= set(
    flips["condition"]
  )
  assert "stored" not in set(flips["condition"])
  per_class = pd.read_csv(out / "per_class.csv")
  stored = per_class[
    (per_class["test_crop"] == "random")
    & (per_class["test_qf"] == "none")
    & (per_class["test_resave"] == "none")
    & (per_class["test_chain"] == "none")
    & (per_class["test_first_qf"] == "none")
  ].set_index("class_name")["n_patches"]
  table = pd.read_csv(out / "conditions.csv")
  row = table[(table["test_crop"] == "random") & (table["test_qf"].astype(str) == "none")].iloc[0]
  patches = int(row["n_patches"]) // int(row["n_images"])  # each image's random crops
  for row in flips[flips["condition"] == "qf50"].to_dict("records"):
    assert row["n_images"] == stored[row["class_name"]] // patches
    assert 0 <= row["flipped"] <= row["n_images"]
  assert any(line.startswith("Stability: ") for line in summary["verdict"])
