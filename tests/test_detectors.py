"""Any detector: ONNX models as PyTorch users export them, whole-image
conditions, bin/degrade's files, anyone's scores, verdict stability."""

import hashlib
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tfjpeg.analysis import degrade
from tfjpeg.analysis import file_report
from tfjpeg.analysis import report
from tfjpeg.analysis import stability
from tfjpeg.codec import crops
from tfjpeg.codec import images
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import DataError
from tfjpeg.core.errors import MissingError
from tfjpeg.data import tasks
from tfjpeg.pipeline import whole_images
from tfjpeg.serving import classifier as classifier_lib
from tfjpeg.serving import predict

import helpers as testing

SIZE = 32  # the detectors' input
IMAGENET = classifier_lib.Preprocessing(
  input="resize", layout="nchw", scale="0..1", mean="imagenet", std="imagenet", outputs="logits"
)
# Small grids: one test QF, one resize factor then one QF, one protocol.
GRIDS = dict(
  qualities=(None, 50),
  resize_factors=(0.5, 1.0),
  resize_qualities=(None, 75),
  test_chains=("corvi2023",),
)


def _net(outputs, batch_size=None):
  """A small PyTorch-style net: NCHW input, logits out."""
  keras.utils.set_random_seed(1)
  return keras.Sequential(
    [
      keras.Input((3, SIZE, SIZE), batch_size=batch_size),
      keras.layers.Permute((2, 3, 1)),
      keras.layers.Conv2D(6, 3, strides=2, activation="relu"),
      keras.layers.Conv2D(6, 3, activation="relu"),
      keras.layers.GlobalAveragePooling2D(),
      keras.layers.Dense(outputs),
    ]
  )


def _exported(model, path):
  model.predict(np.zeros((1,) + model.input_shape[1:], "float32"), verbose=0)
  model.export(str(path), format="onnx", verbose=False)
  return str(path)


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
  """(ONNX file, the same net as a .keras file): two logits, NCHW."""
  base = tmp_path_factory.mktemp("detectors")
  net = _net(2)
  onnx = _exported(net, base / "detector.onnx")
  net.save(base / "detector.keras")
  return onnx, str(base / "detector.keras")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """real/ as lossless PNG and fake/ as JPEG at QF 90, 4 images each, of
  sizes around the detector's input and larger (a swap draws a QF)."""
  root = tmp_path_factory.mktemp("labelled")
  for number in range(8):
    cls = "real" if number < 4 else "fake"
    image = testing.synthetic_image(70 + 9 * number, 96 - 5 * number, seed=number)
    os.makedirs(root / cls, exist_ok=True)
    name = f"frame.{number:04d}" if number % 3 == 0 else str(number)  # dots in a name
    if cls == "real":
      Image.fromarray(image).save(root / cls / f"{name}.png")
    else:
      Image.fromarray(image).save(root / cls / f"{name}.jpg", quality=90)
  return str(root)


def _numbers(folder):
  table = pd.read_csv(os.path.join(folder, "conditions.csv"))
  return table.select_dtypes("number").to_numpy(float)


def test_an_onnx_detector_scores_as_the_same_net_in_keras_on_every_condition(
  detectors, folder, tmp_path
):
  """NCHW with ImageNet normalisation, the whole image resized to its input:
  every condition's numbers equal those of the same net run by Keras."""
  onnx, keras_file = detectors
  names = ["real", "fake"]
  by_onnx = file_report.make(
    onnx, str(tmp_path / "onnx"), folder, class_names=names, preprocessing=IMAGENET, **GRIDS
  )
  by_keras = file_report.make(
    keras_file, str(tmp_path / "keras"), folder, class_names=names, preprocessing=IMAGENET, **GRIDS
  )
  np.testing.assert_allclose(_numbers(tmp_path / "onnx"), _numbers(tmp_path / "keras"), atol=1e-6)
  assert by_onnx["verdict"] == by_keras["verdict"]
  a = pd.read_csv(tmp_path / "onnx" / "predictions.csv")
  b = pd.read_csv(tmp_path / "keras" / "predictions.csv")
  assert len(a) == 8 * 8  # stored, a QF, swap, common, 3 resize chains, corvi2023
  np.testing.assert_allclose(a["prob_fake"], b["prob_fake"], atol=1e-5)
  assert a["prob_fake"].std() > 1e-4  # the net does not answer the same for all
  page = (tmp_path / "onnx" / "report.html").read_text()
  assert "NCHW, 0..1, mean [0.485, 0.456, 0.406]" in page and "resized to 32x32" in page


def test_an_onnx_detector_on_patches_scores_as_keras_in_the_patch_report(
  detectors, folder, tmp_path
):
  onnx, keras_file = detectors
  pre = classifier_lib.Preprocessing(
    layout="nchw", scale="0..1", mean="imagenet", std="imagenet", outputs="logits"
  )
  small = dict(
    qualities=(None, 50),
    double_pairs=((50, 90),),
    periods=(8,),
    resize_factors=(1.0,),
    resize_qualities=(None,),
    test_chains=(),
  )
  for path, out in ((onnx, "onnx"), (keras_file, "keras")):
    report.make(
      path, str(tmp_path / out), folder, class_names=["real", "fake"], preprocessing=pre, **small
    )
  np.testing.assert_allclose(_numbers(tmp_path / "onnx"), _numbers(tmp_path / "keras"), atol=1e-6)
  assert (tmp_path / "onnx" / "stability.csv").exists()


def test_one_logit_fixed_batch_detectors_are_their_sigmoid_as_fake(tmp_path):
  """torch.onnx.export with a dummy batch of one fixes the batch size: the
  model is run one image at a time; its single logit is 'fake'."""
  net = _net(1, batch_size=1)
  path = _exported(net, tmp_path / "one.onnx")
  loaded = classifier_lib.load(path, preprocessing=classifier_lib.Preprocessing(input="resize"))
  assert loaded.class_names == ["real", "fake"] and loaded.patch_size == SIZE
  assert loaded.preprocessing.layout == "nchw" and loaded.preprocessing.scale == "0..1"
  batch = np.stack([testing.synthetic_image(SIZE, SIZE, seed=k) for k in range(5)])
  got = loaded.probabilities(batch)
  logits = np.concatenate(
    [net.predict(b[None].transpose(0, 3, 1, 2) / 255.0, verbose=0) for b in batch.astype("float32")]
  )[:, 0]
  np.testing.assert_allclose(got[:, 1], 1 / (1 + np.exp(-logits)), atol=1e-5)
  np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)


def test_a_centre_cropping_detector_gets_each_file_once_as_torchvision_crops_it(tmp_path):
  """--input=centre_crop through bin/predict's library call: each file decoded
  exactly, centre-cropped as torchvision does (padded where smaller), scored
  once."""
  net = _net(1)
  path = _exported(net, tmp_path / "one.onnx")
  pre = classifier_lib.Preprocessing(input="centre_crop", mean=0.5, std=0.25)
  for number, shape in enumerate([(45, 37), (20, 50)]):
    Image.fromarray(testing.synthetic_image(*shape, seed=number)).save(tmp_path / f"{number}.png")
  predict.run(
    path, [str(tmp_path / f"{n}.png") for n in range(2)], str(tmp_path / "p.csv"), preprocessing=pre
  )
  rows = pd.read_csv(tmp_path / "p.csv")
  assert list(rows["placement"]) == ["centre_crop"] * 2 and list(rows["num_patches"]) == [1, 1]
  loaded = classifier_lib.load(path, preprocessing=pre)
  for row in rows.to_dict("records"):
    with open(row["path"], "rb") as f:
      image = images.decode(f.read())
    fake = loaded.probabilities(crops.centre_crop(image, SIZE).numpy()[None])[0, 1]
    inputs = (crops.centre_crop(image, SIZE).numpy()[None] / 255.0 - 0.5) / 0.25
    logit = net.predict(inputs.transpose(0, 3, 1, 2).astype("float32"), verbose=0)[0, 0]
    assert row["prob_fake"] == pytest.approx(fake, abs=1e-7)
    assert fake == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-5)


def test_an_onnx_file_that_is_not_one_is_one_line(tmp_path):
  bad = tmp_path / "bad.onnx"
  bad.write_bytes(b"not a model")
  with pytest.raises(ConfigError) as error:
    classifier_lib.load(str(bad))
  assert "not an ONNX model onnxruntime can run" in str(error.value)
  assert "\n" not in str(error.value)
  with pytest.raises(ConfigError, match="give mean and std together"):
    classifier_lib.Preprocessing(mean="imagenet")
  with pytest.raises(ConfigError, match="input: 'whole' is none of"):
    classifier_lib.Preprocessing(input="whole")


def test_centre_crop_is_torchvisions_rounding_half_to_even_and_padding_black():
  def by_hand(image, size):  # torchvision's center_crop, from its documented rule
    height, width = image.shape[:2]
    if height < size or width < size:
      top, left = max(size - height, 0) // 2, max(size - width, 0) // 2
      padded = np.zeros((max(height, size), max(width, size), 3), np.uint8)
      padded[top : top + height, left : left + width] = image
      image, (height, width) = padded, padded.shape[:2]
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return image[top : top + size, left : left + size]

  for shape in [(33, 40), (35, 37), (32, 32), (20, 41), (37, 25)]:
    image = testing.synthetic_image(*shape, seed=shape[0])
    np.testing.assert_array_equal(crops.centre_crop(image, 32).numpy(), by_hand(image, 32))


@pytest.fixture(scope="module")
def degraded(folder, tmp_path_factory):
  out = tmp_path_factory.mktemp("degraded") / "out"
  summary = degrade.degrade(folder, str(out), seed=4, **_degrade_grids())
  return str(out), summary


def _degrade_grids():
  return dict(
    qualities=GRIDS["qualities"],
    resize_factors=GRIDS["resize_factors"],
    resize_qualities=GRIDS["resize_qualities"],
    chains=GRIDS["test_chains"] + ("aigenbench2025",),
  )


def test_degraded_files_decode_to_the_pixels_the_report_measures(degraded, folder):
  out, summary = degraded
  manifest = pd.read_csv(os.path.join(out, "manifest.csv"), dtype={"image_id": str})
  assert summary["files"] == len(manifest) == 8 * 9
  the_plan = file_report.read_plan(out)
  task = tasks.labelled_folder(folder, 1, 1, ["real", "fake"])
  memory, _ = report.in_memory(task, ["real", "fake"])
  dataset = whole_images.dataset(
    memory.images("test"), the_plan.conditions, 4, "4:2:0", the_plan.swap_qfs, the_plan.common_qf
  )
  names = [c.name for c in the_plan.conditions]
  seen = 0
  for element in dataset:
    name, image_id = names[int(element["condition"])], element["image_id"].numpy().decode()
    row = manifest[(manifest["condition"] == name) & (manifest["image_id"] == image_id)].iloc[0]
    with open(os.path.join(out, row["path"]), "rb") as f:
      data = f.read()
    assert hashlib.sha256(data).hexdigest() == row["sha256"]
    np.testing.assert_array_equal(
      images.decode(data).numpy(), element["image"].numpy(), err_msg=row["path"]
    )
    seen += 1
  assert seen == len(manifest)
  stored = manifest[manifest["condition"] == "stored"]
  originals = {p.split("/", 1)[1].rsplit(".", 1)[0]: p for p in stored["path"]}
  for image_id, path in originals.items():  # as stored: the original bytes, not re-encoded
    original = [
      f
      for f in os.listdir(os.path.join(folder, image_id.split("/")[0]))
      if f.startswith(image_id.split("/")[1] + ".")
    ][0]
    with (
      open(os.path.join(folder, image_id.split("/")[0], original), "rb") as a,
      open(os.path.join(out, path), "rb") as b,
    ):
      assert a.read() == b.read()
  saved = manifest[manifest["condition"].isin(["qf50", "jpeg:75"])]
  assert (saved["format"] == "jpeg").all()
  assert (manifest[manifest["condition"] == "resize:0.5"]["format"] == "png").all()
  draws = pd.read_csv(os.path.join(out, "chain_draws.csv"))
  assert set(draws["test_chain"]) == {
    "resize:0.5",
    "resize:0.5>jpeg:75",
    "jpeg:75",
    "corvi2023",
    "aigenbench2025",
  }


def test_a_crop_that_cuts_nothing_leaves_the_file_as_stored(folder, tmp_path):
  """crop:1080 of images smaller than 1080 (AI-GenBench's first step): the
  originals, byte for byte, not PNG re-encodings."""
  out = tmp_path / "out"
  degrade.degrade(folder, str(out), chains=("crop:1080", "crop:1080>resize:0.5"), only_chains=True)
  manifest = pd.read_csv(out / "manifest.csv", dtype={"image_id": str})
  kept = manifest[manifest["condition"] == "crop:1080"]
  for row in kept.to_dict("records"):
    original = [
      p
      for p in os.listdir(os.path.join(folder, row["class_name"]))
      if os.path.splitext(p)[0] == row["image_id"].split("/")[1]
    ][0]
    with open(os.path.join(folder, row["class_name"], original), "rb") as f:
      assert hashlib.sha256(f.read()).hexdigest() == row["sha256"]
  resized = manifest[manifest["condition"] == "crop:1080>resize:0.5"]
  assert (resized["format"] == "png").all()


def test_a_bad_file_is_counted_and_named_not_dropped(folder, tmp_path):
  source = tmp_path / "labelled"
  shutil.copytree(folder, source)
  (source / "fake" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
  summary = degrade.degrade(
    str(source), str(tmp_path / "out"), chains=("jpeg:75",), only_chains=True
  )
  assert summary["bad"] == 1 and summary["images"] == 8
  bad = pd.read_csv(tmp_path / "out" / "bad_files.csv")
  assert bad["path"].str.endswith("broken.jpg").all() and bad["problem"].str.len().min() > 0
  # A scorer given the whole folder lists bin/degrade's own files too: passed over.
  scores = tmp_path / "scores.csv"
  listed = [os.path.join(tmp_path, "out", p) for p in sorted(os.listdir(tmp_path / "out"))]
  files = pd.read_csv(tmp_path / "out" / "manifest.csv")["path"]
  paths = [p for p in listed if os.path.isfile(p)] + [str(tmp_path / "out" / p) for p in files]
  pd.DataFrame(dict(path=paths, score=0.25)).to_csv(scores, index=False)
  read = file_report.read_scores(str(scores), str(tmp_path / "out"), ["real", "fake"])
  assert len(read) == len(files) and (read["prob_fake"] == 0.25).all()


def test_two_files_of_one_name_are_refused_before_any_is_written(folder, tmp_path):
  """real/4.png and real/4.jpg would both be degraded to real/4.<ext>: refused
  in one line naming them, before any file is written."""
  source = tmp_path / "labelled"
  shutil.copytree(folder, source)
  twin = next(n for n in sorted(os.listdir(source / "real")) if n.endswith(".png"))
  Image.open(source / "real" / twin).save(source / "real" / twin.replace(".png", ".jpg"))
  with pytest.raises(DataError) as error:
    degrade.degrade(str(source), str(tmp_path / "out"), chains=("jpeg:75",), only_chains=True)
  message = str(error.value)
  assert "1 names hold two files" in message and f"real/{twin[:-4]}" in message
  assert "\n" not in message and not (tmp_path / "out").exists()


def test_the_same_seed_writes_the_same_bytes(degraded, folder, tmp_path):
  out, _ = degraded
  again = tmp_path / "again"
  chains = ("corvi2023", "aigenbench2025", "resize:0.5>jpeg:75")
  degrade.degrade(folder, str(again), seed=4, chains=chains, only_chains=True)
  first = pd.read_csv(os.path.join(out, "manifest.csv"))
  second = pd.read_csv(again / "manifest.csv")
  mine = first[first["condition"].isin(chains)].sort_values("path").reset_index(drop=True)
  pd.testing.assert_frame_equal(mine, second.sort_values("path").reset_index(drop=True))
  other = tmp_path / "other"
  degrade.degrade(folder, str(other), seed=5, only_chains=True, chains=("corvi2023",))
  third = pd.read_csv(other / "manifest.csv")
  assert set(third["condition"]) == {"corvi2023"}
  mine = first[first["condition"] == "corvi2023"].set_index("path")["sha256"]
  assert (third.set_index("path")["sha256"] != mine.loc[third["path"]]).any()


def test_scores_from_bin_predict_give_the_models_report(detectors, folder, degraded, tmp_path):
  """bin/predict's own CSV of the degraded files, through --scores: the same
  numbers as the report of the model on the folder."""
  onnx, _ = detectors
  out, _ = degraded
  names = ["real", "fake"]
  by_model = file_report.make(
    onnx,
    str(tmp_path / "model"),
    folder,
    class_names=names,
    preprocessing=IMAGENET,
    seed=4,
    **GRIDS,
  )
  scores = tmp_path / "scores.csv"
  predict.run(onnx, [out], str(scores), class_names=names, preprocessing=IMAGENET)
  by_scores = file_report.from_scores(str(scores), out, str(tmp_path / "scores"))
  model_table = pd.read_csv(tmp_path / "model" / "conditions.csv")
  scores_table = pd.read_csv(tmp_path / "scores" / "conditions.csv")
  kept = scores_table["test_chain"] != "aigenbench2025"  # degraded, not asked of the model
  assert list(model_table["test_chain"]) == list(scores_table[kept]["test_chain"])
  numbers = model_table.select_dtypes("number").columns
  np.testing.assert_allclose(
    model_table[numbers].to_numpy(float), scores_table[kept][numbers].to_numpy(float), atol=1e-9
  )
  flips = pd.read_csv(tmp_path / "scores" / "stability.csv")
  mine = pd.read_csv(tmp_path / "model" / "stability.csv")
  pd.testing.assert_frame_equal(
    mine, flips[flips["condition"] != "aigenbench2025"].reset_index(drop=True)
  )
  assert by_model["verdict"] == by_scores["verdict"]
  assert by_model["findings"][1] == by_scores["findings"][1]  # the swap, in the same words


def _scores_of(degraded_dir, tmp_path, rows):
  path = tmp_path / "bad.csv"
  manifest = pd.read_csv(os.path.join(degraded_dir, "manifest.csv"))
  frame = pd.DataFrame(
    dict(path=[os.path.join(degraded_dir, p) for p in manifest["path"]], score="0.5")
  )
  for number, change in rows:
    for column, value in change.items():
      frame.loc[number, column] = value
  frame.to_csv(path, index=False)
  return str(path)


def test_malformed_scores_are_refused_in_one_line_naming_the_row(degraded, tmp_path):
  out, _ = degraded
  cases = [
    ([(3, {"score": "abc"})], "row 5: score 'abc' is not a number"),
    ([(0, {"path": "elsewhere/x.png"})], "row 2: 'elsewhere/x.png' is not a file of"),
    ([(6, {"score": "1.5"})], "row 8: score 1.5 is not a probability in 0..1"),
  ]
  manifest = pd.read_csv(os.path.join(out, "manifest.csv"))
  elsewhere = pd.DataFrame(  # scored on another machine: the folder's own tail of each path
    dict(path=["/data/run7/degraded/" + p for p in manifest["path"]], score=0.5)
  )
  elsewhere.to_csv(tmp_path / "elsewhere.csv", index=False)
  assert len(
    file_report.read_scores(str(tmp_path / "elsewhere.csv"), out, ["real", "fake"])
  ) == len(manifest)
  for changes, message in cases:
    with pytest.raises(DataError) as error:
      file_report.read_scores(_scores_of(out, tmp_path, changes), out, ["real", "fake"])
    assert message in str(error.value) and "\n" not in str(error.value)
  short = tmp_path / "short.csv"
  pd.read_csv(_scores_of(out, tmp_path, [])).iloc[:-1].to_csv(short, index=False)
  with pytest.raises(DataError, match="1 have no score"):
    file_report.read_scores(str(short), out, ["real", "fake"])
  with pytest.raises(MissingError, match="no scores file"):
    file_report.read_scores(str(tmp_path / "none.csv"), out, ["real", "fake"])
  done = subprocess.run(
    [
      sys.executable,
      str(testing.REPO / "bin" / "report"),
      f"--scores={_scores_of(out, tmp_path, [(3, {'score': 'abc'})])}",
      f"--degraded={out}",
      f"--out={tmp_path / 'r'}",
    ],
    capture_output=True,
    text=True,
    # As a user runs it: TensorFlow's start-up lines are the binary's to drop.
    env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
  )
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 1 and len(lines) == 1 and "row 5: score 'abc'" in lines[0], done.stderr


def test_stability_counts_the_verdicts_that_flip_and_says_the_worst():
  labels = np.array([0, 0, 1, 1] * 3)
  conditions = np.array(["stored"] * 4 + ["qf75"] * 4 + ["resize:0.5"] * 4)
  ids = np.array(["a", "b", "c", "d"] * 3)
  fake = np.array([0.1, 0.2, 0.9, 0.8, 0.1, 0.2, 0.3, 0.8, 0.6, 0.2, 0.9, 0.9])
  verdicts = stability.image_verdicts(np.stack([1 - fake, fake], 1), labels, ids, conditions)
  table = stability.table(verdicts, "stored", ["real", "fake"])
  row = table[(table["condition"] == "qf75") & (table["class_name"] == "fake")].iloc[0]
  assert (row["n_images"], row["flipped"], row["flip_share"], row["flipped_to"]) == (
    2,
    1,
    0.5,
    "real",
  )
  assert table["flipped"].sum() == 2
  lines = stability.verdict(table)
  assert lines[0] == (
    "Stability: A JPEG re-save at QF 75 flips 50% of the 'fake' images to 'real' "
    "(1 of 2, against their verdicts as stored)."
  )
  assert "Processing by resize:0.5 flips 50% of the 'real' images to 'fake'" in lines[1]


def test_the_scores_report_shows_where_the_jpeg_grid_is_still_found(degraded, tmp_path):
  """bin/report --scores --grid_found: per condition, the share of images whose
  main grid bin/grid's map still finds: half as stored (the fake class's
  JPEGs, not the real class's PNGs), all once saved at a QF."""
  out, _ = degraded
  file_report.from_scores(_scores_of(out, tmp_path, []), out, str(tmp_path / "r"), grid_found=True)
  grids = pd.read_csv(tmp_path / "r" / "grid_found.csv").set_index("condition")
  assert grids.loc["stored", "images"] == 8 and grids.loc["stored", "grid_found"] == 4
  saved = [name for name in grids.index if name.startswith("qf")]
  assert saved and (grids.loc[saved, "grid_found_share"] == 1.0).all()
  assert "Is the JPEG grid still there?" in (tmp_path / "r" / "report.html").read_text()
