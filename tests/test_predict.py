"""bin/predict: a briefly trained bondi, exported from its run directory alone (its data
deleted first), run on a folder with bad files in it, as a run directory, a SavedModel
and a .keras file."""

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfjpeg.codec import grid
from tfjpeg.codec import images
from tfjpeg.core.errors import ConfigError
from tfjpeg.serving import classifier
from tfjpeg.serving import predict

import helpers as testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """bondi trained briefly on the built-in camera task, then exported."""
  base = tmp_path_factory.mktemp("predict")
  env = dict(
    os.environ, TFJPEG_CACHE=str(base / "cache"), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""
  )
  workdir = base / "run"
  subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "bin", "train"),
      "--net=bondi",
      "--epochs=1",
      "--steps_per_epoch=5",
      "--test_qfs=none",
      "--builtin_scenes=24",
      f"--workdir={workdir}",
    ],
    env=env,
    check=True,
    capture_output=True,
  )
  kept = base / "kept"
  kept.mkdir()
  camera_files = []
  for number, path in enumerate(sorted((base / "cache").rglob("*.jpg"), key=str)[:4]):
    camera_files.append(kept / f"{number}.jpg")
    shutil.copy(path, camera_files[-1])
  shutil.rmtree(base / "cache")  # export and predict need the run directory alone
  subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "bin", "export"),
      f"--workdir={workdir}",
      f"--out={base / 'model'}",
    ],
    env=env,
    check=True,
    capture_output=True,
  )
  return base / "model", camera_files, env, workdir


@pytest.fixture
def folder(tmp_path, exported):
  _, camera_files, _, _ = exported
  (tmp_path / "cam_a").mkdir()
  shutil.copy(camera_files[0], tmp_path / "cam_a" / "good.jpg")
  testing.write_image(tmp_path / "loose.png", testing.synthetic_image(130, 150, seed=3))
  data = camera_files[1].read_bytes()
  (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
  (tmp_path / "notes.txt").write_text("not an image")
  testing.write_image(tmp_path / "tiny.png", testing.synthetic_image(30, 30))
  return tmp_path


def test_predict_cli_one_row_per_file_errors_included(exported, folder, tmp_path):
  model, _, env, _ = exported
  out = tmp_path / "predictions.csv"
  patch_scores = tmp_path / "patches.csv"
  result = subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "bin", "predict"),
      f"--model={model}",
      f"--out={out}",
      f"--patch_scores={patch_scores}",
      str(folder),
    ],
    env=env,
    check=True,
    capture_output=True,
    text=True,
  )
  frame = pd.read_csv(out, keep_default_na=False)
  names = {os.path.basename(p): row for p, row in zip(frame["path"], frame.to_dict("records"))}
  assert set(names) == {"good.jpg", "loose.png", "truncated.jpg", "notes.txt", "tiny.png"}
  assert "truncated JPEG" in names["truncated.jpg"]["error"]
  assert "not an image" in names["notes.txt"]["error"]
  assert "smaller than the 64x64 patch" in names["tiny.png"]["error"]
  assert names["good.jpg"]["label"] == "cam_a" and names["loose.png"]["label"] == ""
  assert names["loose.png"]["num_patches"] == 4  # 130x150 tiled by 64
  assert names["loose.png"]["offsets"] == "0:0;0:64;64:0;64:64"
  assert "errors: 3" in result.stdout and "images_per_second" in result.stdout
  assert "labelled: 1" in result.stdout and "balanced_accuracy" in result.stdout
  assert "5/5 files" in result.stderr  # the progress bar
  patches = pd.read_csv(patch_scores)
  assert len(patches) == int(frame["num_patches"].astype(int).sum())


def test_predictions_match_the_savedmodel_called_directly(exported, folder, tmp_path):
  model, _, _, _ = exported
  out = tmp_path / "p.csv"
  predict.run(str(model), [str(folder / "loose.png")], str(out), stream=open(os.devnull, "w"))
  row = pd.read_csv(out).iloc[0]
  loaded = tf.saved_model.load(str(model))
  names = [n.decode() for n in loaded.metadata()["class_names"].numpy()]
  direct = loaded.serve_bytes(tf.constant((folder / "loose.png").read_bytes()))
  np.testing.assert_allclose(
    [row[f"prob_{n}"] for n in names], direct["probabilities"].numpy(), rtol=1e-5, atol=1e-6
  )
  assert row["predicted"] == names[int(np.argmax(direct["probabilities"].numpy()))]


def test_random_placement_is_seeded(exported, folder):
  model, _, _, _ = exported
  detector = classifier.load(str(model))
  image = images.decode((folder / "loose.png").read_bytes())
  first = predict.cut(image, detector.patch_size, "random", num_patches=5, seed=1)[1]
  again = predict.cut(image, detector.patch_size, "random", num_patches=5, seed=1)[1]
  other = predict.cut(image, detector.patch_size, "random", num_patches=5, seed=2)[1]
  np.testing.assert_array_equal(first, again)
  assert first.shape == (5, 2) and not np.array_equal(first, other)
  with pytest.raises(ValueError, match="policy"):
    predict.cut(image, 64, "centre")


def test_realigned_tiles_start_on_the_estimated_grid(exported, tmp_path):
  model, camera_files, _, _ = exported
  photo = images.decode(camera_files[0].read_bytes()).numpy()
  # Cropped by (3, 5) after its in-camera JPEG, then saved losslessly: the
  # grid now starts at (5, 3).
  testing.write_image(tmp_path / "cropped.png", photo[3:, 5:])
  shutil.copy(camera_files[0], tmp_path / "original.jpg")
  rows = {}
  for policy in ("grid", "realigned"):
    out = tmp_path / f"{policy}.csv"
    predict.run(
      str(model),
      [str(tmp_path / "cropped.png"), str(tmp_path / "original.jpg")],
      str(out),
      policy=policy,
      stream=open(os.devnull, "w"),
    )
    rows[policy] = {
      os.path.basename(r["path"]): r
      for r in pd.read_csv(out, keep_default_na=False).to_dict("records")
    }
  for policy in rows:
    assert rows[policy]["cropped.png"]["grid_origin"] == "5:3"
    assert rows[policy]["original.jpg"]["grid_origin"] == "0:0"
  assert rows["grid"]["cropped.png"]["offsets"] == "0:0"
  assert rows["realigned"]["cropped.png"]["offsets"] == "5:3"
  assert rows["realigned"]["original.jpg"]["offsets"] == "0:0;0:64;64:0;64:64"
  # Never compressed: no grid, and realigned tiles from the top-left.
  testing.write_image(tmp_path / "raw.png", testing.synthetic_image(100, 100, seed=2))
  predict.run(
    str(model),
    [str(tmp_path / "raw.png")],
    str(tmp_path / "raw.csv"),
    policy="realigned",
    stream=open(os.devnull, "w"),
  )
  raw = pd.read_csv(tmp_path / "raw.csv", keep_default_na=False).iloc[0]
  assert raw["grid_origin"] == "" and raw["grid_confidence"] < 0.05 and raw["offsets"] == "0:0"


def test_missing_model_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="no model at"):
    classifier.load(str(tmp_path / "nope"))
  (tmp_path / "folder").mkdir()
  with pytest.raises(ValueError, match="neither a run directory"):
    classifier.load(str(tmp_path / "folder"))


def test_run_directory_and_keras_file_predict_as_the_export(exported, folder, tmp_path_factory):
  model, _, _, workdir = exported
  tmp_path = tmp_path_factory.mktemp("outputs")  # outside the folder predicted
  from_run = classifier.load(str(workdir))
  from_export = classifier.load(str(model))
  assert (from_run.form, from_export.form) == ("run", "tfjpeg-savedmodel")
  assert from_run.class_names == from_export.class_names
  assert from_run.patch_size == from_export.patch_size == 64
  assert len(from_run.fingerprint()) == 64 and from_run.fingerprint() == from_run.fingerprint()
  keras_file = tmp_path / "detector.keras"
  from_run.keras_model.save(keras_file)
  with pytest.raises(ValueError, match="4 class probabilities but 2 class names"):
    classifier.load(str(keras_file), class_names=["a", "b"])
  assert classifier.load(str(keras_file)).class_names == ["class0", "class1", "class2", "class3"]
  # Anyone's SavedModel: a serving signature, class names from the caller.
  plain = tmp_path / "plain_savedmodel"
  from_run.keras_model.export(str(plain), verbose=False)
  other = classifier.load(str(plain), class_names=from_run.class_names)
  assert (other.form, other.patch_size) == ("savedmodel", 64)
  patches = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3)).astype(np.uint8)
  np.testing.assert_allclose(
    other.probabilities(patches), from_run.probabilities(patches), rtol=1e-5, atol=1e-6
  )
  tables = {}
  for name, path, names in (
    ("export", model, None),
    ("run", workdir, None),
    ("keras", keras_file, from_run.class_names),
  ):
    out = tmp_path / f"{name}.csv"
    predict.run(str(path), [str(folder)], str(out), stream=open(os.devnull, "w"), class_names=names)
    tables[name] = pd.read_csv(out, keep_default_na=False)
  columns = [f"prob_{n}" for n in from_run.class_names]
  for name in ("run", "keras"):
    np.testing.assert_allclose(
      tables[name][columns].replace("", np.nan).astype(float),
      tables["export"][columns].replace("", np.nan).astype(float),
      rtol=1e-5,
      atol=1e-6,
    )
    assert tables[name]["error"].tolist() == tables["export"]["error"].tolist()


def test_two_class_summary_has_auc_and_ap():
  frame = pd.DataFrame(
    dict(
      path=list("abcd"),
      label=["real", "real", "fake", "fake"],
      predicted=["real", "fake", "fake", "fake"],
      error=[""] * 4,
      prob_real=[0.9, 0.4, 0.3, 0.1],
      prob_fake=[0.1, 0.6, 0.7, 0.9],
    )
  )
  summary = predict.summarize(frame, ["real", "fake"])
  assert summary["balanced_accuracy"] == pytest.approx(0.75)
  assert summary["roc_auc"] == pytest.approx(1.0) and summary["average_precision"] == 1.0
  assert "roc_auc" not in predict.summarize(frame.assign(prob_x=0.0), ["real", "fake", "x"])


def test_tfjpeg_exports_refuse_preprocessing_they_do_not_take(exported):
  """tfjpeg's own SavedModel takes uint8 patches as they are: a flag that
  would normalise them is refused in one line; --input still applies."""
  model, _, _, _ = exported
  with pytest.raises(ConfigError) as error:
    classifier.load(
      str(model),
      preprocessing=classifier.Preprocessing(scale="0..1", mean="imagenet", std="imagenet"),
    )
  assert "--scale, --mean, --std do not apply" in str(error.value) and "\n" not in str(error.value)
  loaded = classifier.load(str(model), preprocessing=classifier.Preprocessing(input="centre_crop"))
  assert loaded.preprocessing.input == "centre_crop" and loaded.preprocessing.scale == "0..255"


def test_one_trace_whatever_came_before(tmp_path):
  """A file's scores must not hang on the files scored before it (Beam's
  workers see them in another order than the local path): a trace per shape,
  or one relaxed from the shapes seen first, gives other DCTs in the last
  bits, which moves zero counts near 0.5. So the grid estimate and a
  classifier are traced once, for any image size and any number of patches."""
  inputs = keras.Input((16, 16, 3))
  model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
  model.save(tmp_path / "tiny.keras")
  tiny = classifier.load(str(tmp_path / "tiny.keras"), class_names=["a", "b"])
  for count, side in ((1, 40), (3, 57), (5, 64)):
    image = testing.synthetic_image(side, side + 3, seed=side)
    grid.traced()(tf.constant(image))
    tiny.probabilities(np.zeros((count, 16, 16, 3), np.uint8))
  assert grid.traced().experimental_get_tracing_count() == 1
  assert tiny.forward.experimental_get_tracing_count() == 1
