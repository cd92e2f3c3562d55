"""Metrics over test conditions: one row of results.csv per condition.

`balanced_accuracy` is the paper's metric, the average per-class accuracy over
patches. `balanced_accuracy_low` and `_high` bound its 95% interval, by
bootstrap over test images: patches of one image are not independent, so
whole images are resampled (within each class, so every class stays present).
`image_balanced_accuracy` first averages the log-probabilities of an image's
patches, then scores images. Two-class tasks (real vs generated) also
get `roc_auc` and `average_precision` of the second class's probability, since
a fixed 0.5 threshold hides how separable the classes are; both are empty for
more classes.
"""

import logging
import os
import warnings

import numpy as np
import pandas as pd
from sklearn import metrics
import tensorflow as tf

from tfjpeg import input_pipeline
from tfjpeg import rundir

RESULT_COLUMNS = ("task", "net", "train_crop", "train_qf", "test_crop", "test_grid", "test_qf",
                  "test_first_qf",
                  "balanced_accuracy", "balanced_accuracy_low", "balanced_accuracy_high",
                  "accuracy", "n_images", "n_patches",
                  "image_balanced_accuracy", "roc_auc", "average_precision")


def balanced_accuracy(labels, predictions, num_classes):
  """Mean over the classes present in `labels` of the fraction predicted right
  (scikit-learn's balanced accuracy); NaN without labels."""
  del num_classes  # classes absent from `labels` do not count
  if len(labels) == 0:
    return float("nan")
  with warnings.catch_warnings():  # predictions of classes absent from `labels`
    warnings.simplefilter("ignore", UserWarning)
    return float(metrics.balanced_accuracy_score(labels, predictions))


def bootstrap_interval(labels, predictions, image_ids, level=0.95,
                       resamples=1000, seed=0):
  """The `level` percentile interval of patch-level balanced accuracy when
  test images (all patches of each) are resampled with replacement within
  their class. Returns (low, high); NaN without test images."""
  frame = pd.DataFrame(dict(image=np.asarray(image_ids), label=np.asarray(labels),
                            correct=np.asarray(predictions) == np.asarray(labels)))
  if frame.empty:
    return float("nan"), float("nan")
  per_image = frame.groupby("image").agg(label=("label", "first"), correct=("correct", "sum"),
                                         patches=("correct", "size"))
  rng = np.random.default_rng(seed)
  recalls = []
  for _, rows in per_image.groupby("label"):
    # Each resample's count of every image of this class: (resamples, images).
    picks = rng.integers(0, len(rows), size=(resamples, len(rows)))
    counts = np.apply_along_axis(np.bincount, 1, picks, minlength=len(rows))
    recalls.append(counts @ rows["correct"].to_numpy() / (counts @ rows["patches"].to_numpy()))
  scores = np.mean(recalls, axis=0)
  tail = 100 * (1 - level) / 2
  return float(np.percentile(scores, tail)), float(np.percentile(scores, 100 - tail))


def roc_auc(positive, scores):
  """Area under the ROC curve (scikit-learn); NaN unless both classes occur."""
  positive = np.asarray(positive, bool)
  if positive.all() or not positive.any():
    return float("nan")
  return float(metrics.roc_auc_score(positive, scores))


def average_precision(positive, scores):
  """Average precision (scikit-learn); NaN without a positive."""
  positive = np.asarray(positive, bool)
  if not positive.any():
    return float("nan")
  return float(metrics.average_precision_score(positive, scores))


def two_class_scores(labels, probabilities):
  """ROC AUC and AP of class 1 against class 0; NaN for other class counts."""
  if probabilities.ndim != 2 or probabilities.shape[1] != 2:
    return dict(roc_auc=float("nan"), average_precision=float("nan"))
  positive, scores = np.asarray(labels) == 1, probabilities[:, 1]
  return dict(roc_auc=roc_auc(positive, scores),
              average_precision=average_precision(positive, scores))


def confusion_matrix(labels, predictions, num_classes):
  return metrics.confusion_matrix(labels, predictions, labels=np.arange(num_classes))


def predict(model, dataset):
  """Runs `model` over an eval dataset; returns per-patch arrays: `probabilities`
  and every other key of the batches but the images."""
  collected = {}
  # One traced forward pass: calling a Keras model eagerly costs a few
  # milliseconds per batch, which dominates small-patch evaluation.
  forward = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
  for batch in dataset:
    collected.setdefault("probabilities", []).append(np.asarray(forward(batch["image"])))
    for k, v in batch.items():
      if k != "image":
        collected.setdefault(k, []).append(v.numpy())
  return {k: np.concatenate(v) for k, v in collected.items()}


def condition_metrics(probabilities, labels, image_ids, num_classes):
  predictions = probabilities.argmax(-1)
  frame = pd.DataFrame(np.log(np.clip(probabilities, 1e-12, 1.0)))
  frame["image_id"], frame["label"] = image_ids, labels
  per_image = frame.groupby("image_id").mean()
  image_predictions = per_image.drop(columns="label").to_numpy().argmax(-1)
  low, high = bootstrap_interval(labels, predictions, image_ids)
  return dict(
      balanced_accuracy=balanced_accuracy(labels, predictions, num_classes),
      balanced_accuracy_low=low, balanced_accuracy_high=high,
      accuracy=float(np.mean(predictions == labels)),
      n_images=int(len(per_image)), n_patches=int(len(labels)),
      image_balanced_accuracy=balanced_accuracy(per_image["label"].astype(int),
                                                image_predictions, num_classes),
      **two_class_scores(labels, probabilities))


def evaluate(model, task, config, split="test", conditions=None, seen=None):
  """Scores `model` on every test condition of `config`. With `seen` (an
  `input_pipeline.ImagesSeen`), an image that fails to decode is skipped, for
  the caller to report.

  Returns:
    (results, confusions): a DataFrame with `RESULT_COLUMNS`, and a dict
    condition name -> confusion matrix.
  """
  conditions = list(conditions or config.conditions())
  dataset = input_pipeline.eval_dataset(task, split, conditions, config.pipeline(task), seen)
  out = predict(model, dataset)
  rows, confusions = [], {}
  for number, condition in enumerate(conditions):
    mask = out["condition"] == number
    probabilities, labels = out["probabilities"][mask], out["label"][mask]
    rows.append(dict(task=config.task, net=config.net, train_crop=config.train_crop,
                     train_qf=config.train_qf_label, test_crop=condition.crop,
                     test_grid=condition.grid,
                     test_qf=condition.qf or "none",
                     test_first_qf=condition.first_qf or "none",
                     **condition_metrics(probabilities, labels, out["image_id"][mask],
                                         task.num_classes)))
    confusions[condition.name] = confusion_matrix(labels, probabilities.argmax(-1),
                                                  task.num_classes)
  return pd.DataFrame(rows, columns=RESULT_COLUMNS), confusions


# QF columns hold "none" or a number: read them as text, whatever the file holds.
TEXT_COLUMNS = {"train_qf": str, "test_qf": str, "test_first_qf": str}


def read_table(path, default_grid=8):
  """A results-like CSV (results.csv, a study table, offsets_summary.csv).

  QF columns come back as text; a file written before double compression
  existed gets its `test_first_qf` column ("none"), and one written before test
  crops named their grid gets `test_grid` = `default_grid` (such crops
  followed the training `crop_grid`).
  """
  table = pd.read_csv(path, keep_default_na=False, dtype=TEXT_COLUMNS)
  if "test_qf" in table.columns and "test_first_qf" not in table.columns:
    table.insert(table.columns.get_loc("test_qf") + 1, "test_first_qf", "none")
  if "test_crop" in table.columns and "test_grid" not in table.columns:
    table.insert(table.columns.get_loc("test_crop") + 1, "test_grid", default_grid)
  return table


def upsert_rows(path, rows, keys):
  """Writes `rows` to the CSV at `path`, replacing the rows already there with
  the same values of `keys` and keeping the others; atomic. Returns the table."""
  if os.path.exists(path):
    old = read_table(path)
    key = lambda f: f[list(keys)].astype(str).agg("/".join, axis=1)
    rows = pd.concat([old[~key(old).isin(set(key(rows)))], rows], ignore_index=True)
  tmp = path + ".tmp"
  rows.to_csv(tmp, index=False)
  os.replace(tmp, path)
  return rows


def write_results(workdir, results, confusions, class_names):
  """Adds `results` to workdir/results.csv (replacing rows of the same test
  conditions) and writes a confusion matrix per condition (CSV and PNG)."""
  from tfjpeg import plotting  # pylint: disable=g-import-not-at-top
  results = upsert_rows(os.path.join(workdir, "results.csv"), results,
                        ("test_crop", "test_grid", "test_qf", "test_first_qf"))
  for name, matrix in confusions.items():
    stem = os.path.join(workdir, f"confusion_{name}")
    np.savetxt(stem + ".csv", matrix, fmt="%d", delimiter=",", header=",".join(class_names))
    plotting.confusion_figure(matrix, class_names, name, stem + ".png")
  return results


def load_run(workdir, **overrides):
  """(config, task, model with its best weights) of a trained run directory;
  `overrides` (None values ignored) change the config, e.g. its test conditions."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from tfjpeg import models  # pylint: disable=g-import-not-at-top
  from tfjpeg import tasks  # pylint: disable=g-import-not-at-top
  if not os.path.exists(os.path.join(workdir, "config.json")):
    raise FileNotFoundError(f"{workdir} is not a run directory (no config.json)")
  config = rundir.saved_config(workdir)
  config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
  best = os.path.join(workdir, "checkpoints", "best.weights.h5")
  if not os.path.exists(best):
    raise FileNotFoundError(f"{workdir} has no trained weights ({best}); train it first")
  task = tasks.get(config.task, config.task_options())
  model = models.build(config.net, task.patch_size, task.num_classes)
  model.load_weights(best)
  return config, task, model


def evaluate_run(workdir, test_crops=None, test_qfs=None, test_first_qfs=None,
                 builtin_seed=None):
  """Evaluates the best weights of a trained run under any test conditions.

  With `builtin_seed`, a built-in task is generated anew with that seed (new
  scenes and noise, never seen in training or validation) and the results go
  to workdir/builtin_seed<N>/ instead of the run's own results.csv.
  """
  config, task, model = load_run(workdir, test_crops=test_crops, test_qfs=test_qfs,
                                 test_first_qfs=test_first_qfs, builtin_seed=builtin_seed)
  seen = input_pipeline.ImagesSeen()
  results, confusions = evaluate(model, task, config, seen=seen)
  rundir.report_lost_images(workdir, task, "test", seen, logging.warning)
  write_results(output_dir(workdir, builtin_seed), results, confusions, task.class_names)
  return results


def output_dir(workdir, builtin_seed=None):
  """Where results on a run's own test split go (the run directory), or on a
  built-in task generated anew with `builtin_seed` (a subfolder, created)."""
  if builtin_seed is None:
    return workdir
  path = os.path.join(workdir, f"builtin_seed{builtin_seed}")
  os.makedirs(path, exist_ok=True)
  return path
