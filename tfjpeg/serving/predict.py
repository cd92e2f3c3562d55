"""Use a trained classifier on files: a run directory, its exported
SavedModel, or any model `tfjpeg.serving.classifier` loads.

No training code, no run config and no dataset are read: the model's own
metadata (run.json, or the SavedModel's `metadata` signature) gives the class
names and patch size.
Each file is probed and decoded with the same rules as training (exact JPEG,
bad files reported, images smaller than the patch refused, not resized).

Patch policies:
  grid       non-overlapping patches tiled from the top-left pixel, so aligned
             with the JPEG grid of an uncropped image (the default);
  realigned  the same tiling started at the JPEG grid estimated from the
             image's pixels (`tfjpeg.codec.grid`), for images cropped after they
             were compressed; from the top-left when no grid is found;
  random     `num_patches` patches at random positions (seeded).
An image's patch scores are combined by averaging log-probabilities. Every
row also reports the estimated grid origin ("dy:dx", empty when none is
found) and its confidence: a grid not at 0:0 means the image was cropped
after its last compression.

On Apache Beam (`run(..., runner="beam")`), each file is keyed by its place
in the list `collect` makes; a RunInference `ModelHandler` around
`tfjpeg.serving.classifier` loads the model once per worker process (shared
by its threads) and scores each file with `predict_file`, the local path's
own function; the rows come back (from sharded files on a file system every
worker writes, beside the output CSV) and are put in the list's order, so
the CSV is the local path's, byte for byte. Beam's own TensorFlow and ONNX
handlers take tensors a model is ready for; here each file is decoded,
checked, cut into patches or resized and its patches' scores combined as
the local path does (`classifier.Preprocessing`), which is why the handler
wraps tfjpeg's classifier, SavedModel, Keras and ONNX alike.
"""

import glob
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import IO
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from tfjpeg.codec import crops
from tfjpeg.codec import grid
from tfjpeg.codec import images
from tfjpeg.core import beam
from tfjpeg.core import metrics
from tfjpeg.core import progress
from tfjpeg.core import seeds
from tfjpeg.core.errors import ConfigError
from tfjpeg.serving import classifier as classifier_lib
from tfjpeg.serving import export

POLICIES = ("grid", "realigned", "random")
# bin/degrade's own files at the top of a folder it wrote
# (tfjpeg.analysis.degrade): known, not images, so not listed.
DEGRADE_FILES = ("manifest.csv", "chain_draws.csv", "degrade.json", "bad_files.csv")


def cut(image, patch_size, policy, num_patches=8, seed=0, origin=None):
  """Patches of one decoded image and their (y, x) offsets, by `policy`.

  `origin` is the (dy, dx) where `realigned` starts tiling (None: 0, 0).
  """
  if policy == "realigned" and origin is not None:
    dy, dx = (int(v) for v in origin)
    height, width = image.shape[:2]
    if height - dy >= patch_size and width - dx >= patch_size:
      patches, offsets = export.grid_tiles(image[dy:, dx:], patch_size)
      return patches.numpy(), offsets.numpy() + np.array([dy, dx])
  if policy in ("grid", "realigned"):
    patches, offsets = export.grid_tiles(image, patch_size)  # the export's own rule
    return patches.numpy(), offsets.numpy()
  if policy == "random":
    pairs = [
      crops.crop(image, patch_size, "random", seed=seeds.for_example(seed, k))
      for k in range(num_patches)
    ]
    return (np.stack([p.numpy() for p, _ in pairs]), np.stack([o.numpy() for _, o in pairs]))
  raise ConfigError(f"patch policy must be one of {POLICIES}, got {policy!r}")


def collect(inputs, class_names):
  """(path, label or None) for every file named or found below a named folder.

  Every regular file counts, images or not, so nothing is skipped silently,
  but for bin/degrade's own files at the top of a folder it wrote
  (`DEGRADE_FILES`, beside its degrade.json). A file inside a subfolder
  named like a class (DIR/<class>/...) gets that label.
  """
  found = []
  for item in inputs:
    if os.path.isdir(item):
      degraded = os.path.isfile(os.path.join(item, "degrade.json"))
      for root, dirs, files in os.walk(item):
        dirs.sort()
        rel = os.path.relpath(root, item).split(os.sep)[0]
        label = rel if rel in class_names else None
        known = DEGRADE_FILES if degraded and rel == os.curdir else ()
        found += [
          (os.path.join(root, f), label)
          for f in sorted(files)
          if not f.startswith(".") and f not in known
        ]
    else:
      found.append((item, None))  # a missing file gets its error row too
  return found


def predict_file(classifier, path, policy, num_patches=8, seed=0):
  """One row for `path` (error filled instead of scores on bad input), and patch rows."""
  row = dict(
    path=path,
    predicted="",
    num_patches=0,
    placement=policy,
    offsets="",
    grid_origin="",
    grid_confidence=float("nan"),
    error="",
  )
  whole = classifier.preprocessing.whole_image
  try:
    size = classifier.patch_size
    images.probe(path, min_size=None if whole else (size, size))
    with open(path, "rb") as f:
      image = images.decode(f.read())
  except images.BadImageError as e:
    row["error"] = e.problem
    return row, []
  except tf.errors.OpError as e:  # passed the probe, still undecodable
    row["error"] = f"cannot be decoded ({e.message.splitlines()[0]})"
    return row, []
  origin, confidence = (v.numpy() for v in grid.traced()(image))
  found = confidence >= grid.CONFIDENT
  row.update(
    grid_origin=f"{origin[0]}:{origin[1]}" if found else "", grid_confidence=float(confidence)
  )
  if whole:  # the model's own input: the whole image resized or centre-cropped
    pre = classifier.preprocessing
    patches = crops.model_input(image, pre.input, classifier.patch_size, pre.kernel).numpy()[None]
    offsets, row["placement"] = np.zeros((1, 2), int), pre.input
  else:
    patches, offsets = cut(
      image, classifier.patch_size, policy, num_patches, seed, origin if found else None
    )
  probabilities = classifier.probabilities(patches)
  if len(probabilities) == 1:  # one input: its probabilities as the model gave them
    combined = probabilities[0]
  else:
    log_probabilities = np.log(np.clip(probabilities, 1e-12, 1.0))
    combined = np.exp(log_probabilities.mean(0))
    combined /= combined.sum()
  row.update(
    predicted=classifier.class_names[int(combined.argmax())],
    num_patches=len(patches),
    offsets=";".join(f"{y}:{x}" for y, x in offsets.tolist()),
  )
  row.update({f"prob_{n}": float(p) for n, p in zip(classifier.class_names, combined)})
  patch_rows = [
    dict(
      path=path,
      y=int(y),
      x=int(x),
      **{f"prob_{n}": float(p) for n, p in zip(classifier.class_names, probs)},
    )
    for (y, x), probs in zip(offsets.tolist(), probabilities)
  ]
  return row, patch_rows


def summarize(frame, class_names):
  """Counts, and the scores of the labelled good files."""
  good = frame[frame["error"] == ""]
  summary = dict(files=len(frame), predicted=len(good), errors=len(frame) - len(good))
  labelled = good[good["label"] != ""]
  if len(labelled):
    index = {n: i for i, n in enumerate(class_names)}
    labels = labelled["label"].map(index).to_numpy()
    predictions = labelled["predicted"].map(index).to_numpy()
    summary["labelled"] = len(labelled)
    summary["balanced_accuracy"] = metrics.balanced_accuracy(labels, predictions)
    probabilities = labelled[[f"prob_{n}" for n in class_names]].to_numpy()
    summary.update(metrics.two_class_scores(labels, probabilities))
    if len(class_names) != 2:
      summary.pop("roc_auc"), summary.pop("average_precision")
  return summary


def run(
  model_path: str,
  inputs: Sequence[str],
  out: str,
  policy: str = "grid",
  num_patches: int = 8,
  patch_scores: str | None = None,
  seed: int = 0,
  stream: IO[str] = sys.stderr,
  class_names: Sequence[str] | None = None,
  patch_size: int | None = None,
  preprocessing: classifier_lib.Preprocessing | None = None,
  runner: str = "local",
  beam_options: str | Sequence[str] | None = None,
) -> dict:
  """Predicts every file of `inputs` with the model at `model_path` (class
  names and patch size from the model, else from the arguments;
  `preprocessing` as `tfjpeg.serving.classifier.load` takes it), writes `out`
  (CSV); returns the summary dict. A model that takes whole images
  (resized or centre-cropped) gets each file once, as its input step makes it.
  `runner="beam"` scores the files on Apache Beam (module docstring;
  `beam_options` as
  `tfjpeg.core.beam.options` takes them): the same CSV."""
  beam.check_runner(runner)  # before any work: Beam is an optional extra
  classifier = classifier_lib.load(model_path, class_names, patch_size, preprocessing)
  files = collect(inputs, classifier.class_names)
  rows, patch_rows = [], []
  started = time.time()
  if runner == "beam":
    scored = _score_on_beam(
      [path for path, _ in files],
      model_path,
      policy,
      num_patches,
      seed,
      class_names,
      patch_size,
      preprocessing,
      beam_options,
      shards_dir=os.path.dirname(os.path.abspath(out)),
    )
  else:
    scored = _score_here(classifier, files, policy, num_patches, seed, stream)
  for (_, label), (row, patches) in zip(files, scored):
    row["label"] = label or ""
    rows.append(row)
    patch_rows += patches
  columns = (
    ["path", "label", "predicted"]
    + [f"prob_{n}" for n in classifier.class_names]
    + ["num_patches", "placement", "offsets", "grid_origin", "grid_confidence", "error"]
  )
  frame = pd.DataFrame(rows).reindex(columns=columns)
  text = ["label", "error", "predicted", "offsets", "grid_origin"]
  frame[text] = frame[text].fillna("")
  frame.to_csv(out, index=False)
  if patch_scores:
    pd.DataFrame(patch_rows).to_csv(patch_scores, index=False)
  summary = summarize(frame, classifier.class_names)
  seconds = time.time() - started
  summary["images_per_second"] = summary["predicted"] / seconds if seconds > 0 else float("nan")
  return summary


def _handler(settings: dict) -> Any:
  """A RunInference `ModelHandler` of file paths, scoring with `settings`
  (`run`'s model and patch arguments)."""
  from apache_beam.ml.inference import base  # pylint: disable=g-import-not-at-top

  class FileScorer(base.ModelHandler):
    def load_model(self):
      return classifier_lib.load(
        settings["model_path"],
        settings["class_names"],
        settings["patch_size"],
        settings["preprocessing"],
      )

    def run_inference(self, batch, model, inference_args=None):
      return [
        base.PredictionResult(
          path,
          predict_file(model, path, settings["policy"], settings["num_patches"], settings["seed"]),
        )
        for path in batch
      ]

  return base.KeyedModelHandler(FileScorer())


def _score_on_beam(
  paths: Sequence[str],
  model_path: str,
  policy: str = "grid",
  num_patches: int = 8,
  seed: int = 0,
  class_names: Sequence[str] | None = None,
  patch_size: int | None = None,
  preprocessing: classifier_lib.Preprocessing | None = None,
  beam_options: str | Sequence[str] | None = None,
  shards_dir: str | None = None,
) -> list[tuple[dict, list[dict]]]:
  """`predict_file` of every path on Beam (`tfjpeg.core.beam.options`),
  in the order of `paths`. `shards_dir`: where the workers write their
  results (a file system they all reach; a temporary folder by default)."""
  options = beam.options(beam_options)
  import apache_beam as beam_lib  # pylint: disable=g-import-not-at-top
  from apache_beam.ml.inference import base  # pylint: disable=g-import-not-at-top

  settings = dict(
    model_path=model_path,
    class_names=class_names,
    patch_size=patch_size,
    preprocessing=preprocessing,
    policy=policy,
    num_patches=num_patches,
    seed=seed,
  )
  folder = tempfile.mkdtemp(prefix="tfjpeg-beam-", dir=shards_dir)
  try:
    with beam_lib.Pipeline(options=options) as pipeline:
      _ = (
        pipeline
        | "files" >> beam_lib.Create(list(enumerate(paths)), reshuffle=True)
        | "score" >> base.RunInference(_handler(settings))
        | "rows" >> beam_lib.Map(lambda keyed: json.dumps([keyed[0], keyed[1].inference]))
        | "out" >> beam_lib.io.WriteToText(os.path.join(folder, "scores"), ".jsonl")
      )
    results: dict[int, Any] = {}
    for path in sorted(glob.glob(os.path.join(folder, "scores*.jsonl"))):
      with open(path) as f:
        for line in f:
          if line.strip():
            index, (row, patches) = json.loads(line)
            results[index] = (row, patches)
  finally:
    shutil.rmtree(folder, ignore_errors=True)
  missing = [p for k, p in enumerate(paths) if k not in results]
  if missing:  # every file is scored or has its error row: never dropped
    raise RuntimeError(f"Beam returned no scores for {len(missing)} files, first {missing[0]}")
  return [results[k] for k in range(len(paths))]


def _score_here(classifier, files, policy, num_patches, seed, stream):
  """`predict_file` of each of `files` in turn, on this machine."""
  scored = []
  with progress.Progress(len(files), "predicting", "files", stream) as bar:
    for path, _ in files:
      scored.append(predict_file(classifier, path, policy, num_patches, seed))
      bar.update()
  return scored
