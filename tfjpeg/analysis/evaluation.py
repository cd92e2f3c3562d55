"""Testing a model under a config's test conditions: one row of results.csv
per condition (the columns are `RESULT_COLUMNS`; the metrics are
`tfjpeg.core.metrics`'), plus a confusion matrix per condition.
"""

import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfjpeg.analysis import plotting
from tfjpeg.codec import chain_syntax
from tfjpeg.core import metrics
from tfjpeg.core import runlock
from tfjpeg.core.errors import DataError
from tfjpeg.data import audit
from tfjpeg.models import inference
from tfjpeg.pipeline import input_pipeline
from tfjpeg.serving import classifier
from tfjpeg.train import rundir

# A results row: the settings and test condition it belongs to, then what was measured.
SETTING_COLUMNS = (
  "task",
  "net",
  "train_crop",
  "train_qf",
  "train_chain",
  "test_crop",
  "test_grid",
  "test_qf",
  "test_first_qf",
  "test_resave",
  "test_chain",
)
METRIC_COLUMNS = (
  "balanced_accuracy",
  "balanced_accuracy_low",
  "balanced_accuracy_high",
  "accuracy",
  "n_images",
  "n_patches",
  "image_balanced_accuracy",
  "roc_auc",
  "roc_auc_low",
  "roc_auc_high",
  "average_precision",
)
RESULT_COLUMNS = SETTING_COLUMNS + METRIC_COLUMNS
# What the chain conditions drew for each test image (`chain_draws`).
DRAWS_FILE = "chain_draws.csv"


def evaluate(
  model,
  task,
  config,
  split="test",
  conditions=None,
  seen=None,
  profile=None,
  draws_path=None,
  keep=None,
):
  """Scores `model` on every test condition of `config`. With `seen` (an
  `input_pipeline.ImagesSeen`), an image that fails to decode is skipped, for
  the caller to report. Conditions that re-save whole images (swap, common)
  draw from `profile` (tfjpeg.data.audit's compression profile of the task's
  files), read from the files' headers when not given. With `draws_path`,
  what each chain condition drew for each image (crop places, sizes, sigmas,
  QFs) is written there as CSV (`chain_draws`), so that the operations can be
  checked or applied again elsewhere. `keep`, a dict, receives every patch's
  arrays (`inference.predict`'s: probabilities, condition, label, image_id,
  valid...), for per-image analyses such as verdict stability.

  Returns:
    (results, confusions): a DataFrame with `RESULT_COLUMNS`, and a dict
    condition name -> confusion matrix.
  """
  conditions = list(conditions or input_pipeline.conditions(config.test))
  if profile is None and any(c.resave != "none" for c in conditions):
    profile = audit.task_profile(task)
  pipeline = input_pipeline.PipelineConfig.for_run(config, task, profile, training=False)
  dataset = input_pipeline.eval_dataset(task, split, conditions, pipeline, seen)
  out = inference.predict(model, dataset)
  if "condition" not in out:
    raise DataError(f"no {split} image of the {task.name} task could be read and cut")
  if keep is not None:
    keep.update(out)
  rows, confusions = [], {}
  for number, condition in enumerate(conditions):
    mask = out["condition"] == number
    if "valid" in out:  # a chain left some images smaller than a patch: not in this row
      mask &= out["valid"]
    probabilities, labels = out["probabilities"][mask], out["label"][mask]
    if not mask.any():  # every image too small for this chain: measured on none
      measured = dict.fromkeys(METRIC_COLUMNS, float("nan"))
      measured.update(n_images=0, n_patches=0)
    else:
      measured = metrics.condition_metrics(probabilities, labels, out["image_id"][mask])
    rows.append(
      dict(
        task=config.task.name,
        net=config.net,
        train_crop=config.jpeg.train_crop,
        train_qf=config.train_qf_label,
        train_chain=config.jpeg.train_chain,
        test_crop=condition.crop,
        test_grid=condition.grid,
        test_qf=condition.qf or "none",
        test_first_qf=condition.first_qf or "none",
        test_resave=condition.resave,
        test_chain=condition.chain,
        **measured,
      )
    )
    confusions[condition.name] = (
      metrics.confusion_matrix(labels, probabilities.argmax(-1), task.num_classes)
      if mask.any()
      else np.zeros((task.num_classes, task.num_classes), int)
    )
  if draws_path and "draws" in out:
    rundir.write_atomically(draws_path, chain_draws(out, conditions).to_csv(index=False))
  return pd.DataFrame(rows, columns=RESULT_COLUMNS), confusions


def chain_draws(out, conditions):
  """One row per chain condition and image: the chain, the image and what the
  chain drew for it (`chain_syntax.draw_columns`), from `inference.predict`'s output."""
  tables = []
  for number, condition in enumerate(conditions):
    if condition.chain == "none":
      continue
    columns = chain_syntax.draw_columns(chain_syntax.parse(condition.chain))
    mask = (out["condition"] == number) & (out["patch_index"] == 0)
    table = pd.DataFrame(out["draws"][mask][:, : len(columns)], columns=columns)
    table["valid"] = out["valid"][mask]  # False: the chain left it smaller than a patch
    ids = [i.decode() if isinstance(i, bytes) else i for i in out["image_id"][mask]]
    table.insert(0, "image_id", ids)
    table.insert(0, "test_crop", condition.spelling)
    table.insert(0, "test_chain", condition.chain)
    tables.append(table)
  return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def write_results(workdir, results, confusions, class_names):
  """Adds `results` to workdir/results.csv (replacing rows of the same test
  conditions), with each condition's confusion matrix as CSV and PNG."""
  table, stems = rundir.write_results(workdir, results, confusions, class_names)
  for name, stem in stems.items():
    plotting.confusion_figure(confusions[name], class_names, name, stem + ".png")
  return table


def evaluate_run(
  workdir: str,
  test_crops: Sequence[str] | None = None,
  test_qfs: Sequence[int | None] | None = None,
  test_first_qfs: Sequence[int | None] | None = None,
  builtin_seed: int | None = None,
  test_chains: Sequence[str] | None = None,
) -> pd.DataFrame:
  """Evaluates the selected weights of a trained run under any test conditions.

  `test_chains` adds processing-chain conditions (tfjpeg.codec.chain_syntax).
  With `builtin_seed`, a built-in task is generated anew with that seed (new
  scenes and noise, never seen in training or validation) and the results go
  to workdir/builtin_seed<N>/ instead of the run's own results.csv. Holds the
  run directory's lock while it reads and writes there, as training does: a
  run being trained is refused in one line.
  """
  with runlock.hold(workdir, create=False):
    return _evaluate_run(workdir, test_crops, test_qfs, test_first_qfs, builtin_seed, test_chains)


def _evaluate_run(workdir, test_crops, test_qfs, test_first_qfs, builtin_seed, test_chains):
  config, task, model = classifier.load_run(
    workdir,
    test_crops=test_crops,
    test_qfs=test_qfs,
    test_first_qfs=test_first_qfs,
    test_chains=test_chains,
    builtin_seed=builtin_seed,
  )
  seen = input_pipeline.ImagesSeen()
  out_dir = rundir.output_dir(workdir, builtin_seed)
  results, confusions = evaluate(
    model, task, config, seen=seen, draws_path=os.path.join(out_dir, DRAWS_FILE)
  )
  rundir.report_lost_images(workdir, task, "test", seen, logging.warning)
  write_results(out_dir, results, confusions, task.class_names)
  return results
