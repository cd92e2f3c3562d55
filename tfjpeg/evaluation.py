"""Testing a model under a config's test conditions: one row of results.csv
per condition (the columns are `RESULT_COLUMNS`; the metrics are
`tfjpeg.metrics`'), plus a confusion matrix per condition.
"""

import logging

import numpy as np
import pandas as pd
import tensorflow as tf

from tfjpeg import audit
from tfjpeg import config as config_lib
from tfjpeg import input_pipeline
from tfjpeg import lattice
from tfjpeg import metrics
from tfjpeg import plotting
from tfjpeg import rundir
from tfjpeg import tasks

RESULT_COLUMNS = ("task", "net", "train_crop", "train_qf", "test_crop", "test_grid", "test_qf",
                  "test_first_qf", "test_resave",
                  "balanced_accuracy", "balanced_accuracy_low", "balanced_accuracy_high",
                  "accuracy", "n_images", "n_patches",
                  "image_balanced_accuracy", "roc_auc", "average_precision")


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


def evaluate(model, task, config, split="test", conditions=None, seen=None, profile=None):
  """Scores `model` on every test condition of `config`. With `seen` (an
  `input_pipeline.ImagesSeen`), an image that fails to decode is skipped, for
  the caller to report. Conditions that re-save whole images (swap, common)
  draw from `profile` (tfjpeg.audit's compression profile of the task's
  files), read from the files' headers when not given.

  Returns:
    (results, confusions): a DataFrame with `RESULT_COLUMNS`, and a dict
    condition name -> confusion matrix.
  """
  conditions = list(conditions or config.conditions())
  if profile is None and any(c.resave != "none" for c in conditions):
    profile = audit.task_profile(task)
  pipeline = config.eval_pipeline(task, profile)
  dataset = input_pipeline.eval_dataset(task, split, conditions, pipeline, seen)
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
                     test_resave=condition.resave,
                     **metrics.condition_metrics(probabilities, labels, out["image_id"][mask])))
    confusions[condition.name] = metrics.confusion_matrix(labels, probabilities.argmax(-1),
                                                          task.num_classes)
  return pd.DataFrame(rows, columns=RESULT_COLUMNS), confusions


def write_results(workdir, results, confusions, class_names):
  """Adds `results` to workdir/results.csv (replacing rows of the same test
  conditions), with each condition's confusion matrix as CSV and PNG."""
  table, stems = rundir.write_results(workdir, results, confusions, class_names)
  for name, stem in stems.items():
    plotting.confusion_figure(confusions[name], class_names, name, stem + ".png")
  return table


def task_for(config, log=print):
  """The task of `config`, reading cached lattice images if it has a lattice QF
  (unless `config.lattice_cache` is off)."""
  task = tasks.get(config.task, config.task_options())
  if config.lattice_cache:
    task = lattice.cached_task(task, config.lattice_qf, config.chroma, log=log)
  return task


def load_run(workdir, **overrides):
  """(config, task, model with its selected weights) of a trained run, to test
  it on its task; `overrides` (None values ignored) change the config, e.g.
  its test conditions."""
  config = config_lib.override(config_lib.saved(workdir), **overrides)
  task = task_for(config, logging.info)
  about, model = rundir.load_model(workdir)
  if list(task.class_names) != about["class_names"] or task.patch_size != about["patch_size"]:
    raise ValueError(f"{workdir} was trained on classes {about['class_names']} at "
                     f"{about['patch_size']} px, but its task now has {task.class_names} at "
                     f"{task.patch_size} px (has the data folder changed?)")
  return config, task, model


def evaluate_run(workdir, test_crops=None, test_qfs=None, test_first_qfs=None,
                 builtin_seed=None):
  """Evaluates the selected weights of a trained run under any test conditions.

  With `builtin_seed`, a built-in task is generated anew with that seed (new
  scenes and noise, never seen in training or validation) and the results go
  to workdir/builtin_seed<N>/ instead of the run's own results.csv.
  """
  config, task, model = load_run(workdir, test_crops=test_crops, test_qfs=test_qfs,
                                 test_first_qfs=test_first_qfs, builtin_seed=builtin_seed)
  seen = input_pipeline.ImagesSeen()
  results, confusions = evaluate(model, task, config, seen=seen)
  rundir.report_lost_images(workdir, task, "test", seen, logging.warning)
  write_results(rundir.output_dir(workdir, builtin_seed), results, confusions, task.class_names)
  return results
