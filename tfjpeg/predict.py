"""Use a trained detector on files, from its exported SavedModel alone.

No training code and no run config are read: the SavedModel's `metadata`
signature gives the class names and patch size, `serve_patches` the scores.
Each file is probed and decoded with the same rules as training (exact JPEG,
bad files reported, images smaller than the patch refused, not resized).

Patch policies:
  grid    non-overlapping patches tiled from the top-left pixel, so aligned
          with the JPEG grid of an uncropped image (the default);
  random  `num_patches` patches at random positions (seeded).
An image's patch scores are combined by averaging log-probabilities.
"""

import dataclasses
import os
import sys
import time

import numpy as np
import pandas as pd
import tensorflow as tf

from tfjpeg import crops
from tfjpeg import evaluation
from tfjpeg import export
from tfjpeg import images
from tfjpeg import seeds

POLICIES = ("grid", "random")


@dataclasses.dataclass
class Detector:
  """An exported model: class names, patch size, and patch probabilities."""
  module: object
  class_names: list
  patch_size: int

  @classmethod
  def load(cls, path):
    if not os.path.isdir(path):
      raise FileNotFoundError(f"no SavedModel at {path}")
    module = tf.saved_model.load(path)
    metadata = module.metadata()
    names = [n.decode() for n in metadata["class_names"].numpy()]
    return cls(module, names, int(metadata["patch_size"]))

  def probabilities(self, patches, batch_size=64):
    out = [self.module.serve_patches(tf.constant(patches[i:i + batch_size]))["probabilities"]
           for i in range(0, len(patches), batch_size)]
    return np.concatenate([o.numpy() for o in out])


def cut(image, patch_size, policy, num_patches=8, seed=0):
  """Patches of one decoded image and their (y, x) offsets, by `policy`."""
  if policy == "grid":
    patches, offsets = export.grid_tiles(image, patch_size)  # the export's own rule
    return patches.numpy(), offsets.numpy()
  if policy == "random":
    pairs = [crops.crop(image, patch_size, "random", seed=seeds.for_example(seed, k))
             for k in range(num_patches)]
    return (np.stack([p.numpy() for p, _ in pairs]), np.stack([o.numpy() for _, o in pairs]))
  raise ValueError(f"patch policy must be one of {POLICIES}, got {policy!r}")


def collect(inputs, class_names):
  """(path, label or None) for every file named or found below a named folder.

  Every regular file counts, images or not, so nothing is skipped silently. A
  file inside a subfolder named like a class (DIR/<class>/...) gets that label.
  """
  found = []
  for item in inputs:
    if os.path.isdir(item):
      for root, dirs, files in os.walk(item):
        dirs.sort()
        rel = os.path.relpath(root, item).split(os.sep)[0]
        label = rel if rel in class_names else None
        found += [(os.path.join(root, f), label) for f in sorted(files) if not f.startswith(".")]
    else:
      found.append((item, None))  # a missing file gets its error row too
  return found


def predict_file(detector, path, policy, num_patches=8, seed=0):
  """One row for `path` (error filled instead of scores on bad input), and patch rows."""
  row = dict(path=path, predicted="", num_patches=0, placement=policy, offsets="", error="")
  try:
    images.probe(path, min_size=(detector.patch_size, detector.patch_size))
    with open(path, "rb") as f:
      image = images.decode(f.read())
  except images.BadImageError as e:
    row["error"] = e.problem
    return row, []
  except tf.errors.OpError as e:  # passed the probe, still undecodable
    row["error"] = f"cannot be decoded ({e.message.splitlines()[0]})"
    return row, []
  patches, offsets = cut(image, detector.patch_size, policy, num_patches, seed)
  probabilities = detector.probabilities(patches)
  log_probabilities = np.log(np.clip(probabilities, 1e-12, 1.0))
  combined = np.exp(log_probabilities.mean(0))
  combined /= combined.sum()
  row.update(predicted=detector.class_names[int(combined.argmax())],
             num_patches=len(patches),
             offsets=";".join(f"{y}:{x}" for y, x in offsets.tolist()))
  row.update({f"prob_{n}": float(p) for n, p in zip(detector.class_names, combined)})
  patch_rows = [dict(path=path, y=int(y), x=int(x),
                     **{f"prob_{n}": float(p) for n, p in zip(detector.class_names, probs)})
                for (y, x), probs in zip(offsets.tolist(), probabilities)]
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
    summary["balanced_accuracy"] = evaluation.balanced_accuracy(labels, predictions,
                                                                len(class_names))
    probabilities = labelled[[f"prob_{n}" for n in class_names]].to_numpy()
    summary.update(evaluation.two_class_scores(labels, probabilities))
    if len(class_names) != 2:
      summary.pop("roc_auc"), summary.pop("average_precision")
  return summary


def run(model_path, inputs, out, policy="grid", num_patches=8, patch_scores=None, seed=0,
        stream=sys.stderr):
  """Predicts every file of `inputs`, writes `out` (CSV); returns the summary dict."""
  detector = Detector.load(model_path)
  files = collect(inputs, detector.class_names)
  rows, patch_rows = [], []
  started = time.time()
  for number, (path, label) in enumerate(files, 1):
    row, patches = predict_file(detector, path, policy, num_patches, seed)
    row["label"] = label or ""
    rows.append(row)
    patch_rows += patches
    _progress(stream, number, len(files), started)
  columns = (["path", "label", "predicted"] + [f"prob_{n}" for n in detector.class_names]
             + ["num_patches", "placement", "offsets", "error"])
  frame = pd.DataFrame(rows).reindex(columns=columns)
  frame[["label", "error", "predicted", "offsets"]] = frame[
      ["label", "error", "predicted", "offsets"]].fillna("")
  frame.to_csv(out, index=False)
  if patch_scores:
    pd.DataFrame(patch_rows).to_csv(patch_scores, index=False)
  summary = summarize(frame, detector.class_names)
  seconds = time.time() - started
  summary["images_per_second"] = summary["predicted"] / seconds if seconds > 0 else float("nan")
  return summary


def _progress(stream, done, total, started):
  width = 30
  filled = int(width * done / max(total, 1))
  rate = done / max(time.time() - started, 1e-9)
  stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files "
               f"({rate:.1f}/s)")
  if done == total:
    stream.write("\n")
  stream.flush()
