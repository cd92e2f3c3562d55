"""Per-offset analysis: how a net's score depends on where its test crop falls
on the JPEG grid.

One sweep (`input_pipeline.offset_dataset`) cuts every test image at
base + (dy, dx) for dy, dx in 0..period, the base on the 16-pixel MCU grid, so
each image is seen at every phase with the same content. Two views of it:

- the offset map: balanced accuracy (and mean true-class score) for each of the
  period x period grid phases; a net that relies on the grid has a bright
  (0, 0) and a dark rest, a net that does not is flat;
- the displacement curve: the change in score as the same crop shifts by
  s = 0..period pixels, diagonally (s, s), down (s, 0) and right (0, s). At
  s = period the crop is on the grid again (a sanity check).

The score of a patch is the probability the net gives its true class. ASD%,
the average score drop (Cannas et al., 2024, as we read it: their formula was
not available here), is the mean relative drop of that score over the
misaligned diagonal shifts, in percent: 100 * mean_{s=1..period-1}
(S(0) - S(s)) / S(0), with S(s) the mean score at shift (s, s). 0 means the
net ignores the grid; 100 means misalignment removes all its confidence.
"""

import logging
import os

import numpy as np
import pandas as pd

from tfjpeg import evaluation
from tfjpeg import input_pipeline
from tfjpeg import rundir

DIRECTIONS = {"diagonal": (1, 1), "vertical": (1, 0), "horizontal": (0, 1)}


def phase_table(probabilities, labels, phases, num_classes):
  """One row per shift (dy, dx): balanced_accuracy, accuracy, score (mean
  true-class probability) and n_patches."""
  probabilities, labels, phases = (np.asarray(a) for a in (probabilities, labels, phases))
  predictions = probabilities.argmax(-1)
  scores = probabilities[np.arange(len(labels)), labels]
  rows = []
  for dy, dx in sorted({tuple(p) for p in phases.tolist()}):
    mask = (phases[:, 0] == dy) & (phases[:, 1] == dx)
    rows.append(dict(dy=dy, dx=dx,
                     balanced_accuracy=evaluation.balanced_accuracy(
                         labels[mask], predictions[mask], num_classes),
                     accuracy=float(np.mean(predictions[mask] == labels[mask])),
                     score=float(np.mean(scores[mask])), n_patches=int(mask.sum())))
  return pd.DataFrame(rows)


def period_of(table):
  return int(table["dy"].max())


def offset_map(table, metric="balanced_accuracy"):
  """[period, period] array of `metric` by grid phase (dy, dx) of the crop."""
  period = period_of(table)
  inside = table[(table["dy"] < period) & (table["dx"] < period)]
  grid = np.full((period, period), np.nan)
  grid[inside["dy"].to_numpy(), inside["dx"].to_numpy()] = inside[metric].to_numpy()
  return grid


def displacement_curve(table):
  """Rows (direction, shift, balanced_accuracy, score, score_change,
  accuracy_change) for shifts 0..period along each direction; changes are
  against the unshifted crop."""
  period = period_of(table)
  indexed = table.set_index(["dy", "dx"])
  origin = indexed.loc[(0, 0)]
  rows = []
  for direction, (ky, kx) in DIRECTIONS.items():
    for shift in range(period + 1):
      row = indexed.loc[(ky * shift, kx * shift)]
      rows.append(dict(direction=direction, shift=shift,
                       balanced_accuracy=row["balanced_accuracy"], score=row["score"],
                       score_change=row["score"] - origin["score"],
                       accuracy_change=row["balanced_accuracy"] - origin["balanced_accuracy"]))
  return pd.DataFrame(rows)


def average_score_drop(curve):
  """ASD% along the diagonal (see the module docstring)."""
  diagonal = curve[curve["direction"] == "diagonal"].set_index("shift")
  period = int(diagonal.index.max())
  start = diagonal.loc[0, "score"]
  drops = [(start - diagonal.loc[s, "score"]) / start for s in range(1, period)]
  return float(100.0 * np.mean(drops))


def summarize(table):
  """Headline numbers of one sweep.

  aligned: the phase (0, 0), on the 8x8 blocks and the 16x16 MCUs alike;
  block_aligned_only: (period 16) phases on the 8x8 luma blocks but across
  4:2:0 chroma MCUs, (0, 8), (8, 0) and (8, 8); misaligned_*: every phase off
  the 8x8 blocks.
  """
  grid = offset_map(table)
  period = grid.shape[0]
  dy, dx = np.meshgrid(np.arange(period), np.arange(period), indexing="ij")
  on_blocks = (dy % 8 == 0) & (dx % 8 == 0)
  block_only = on_blocks & ((dy > 0) | (dx > 0))
  return dict(period=period, aligned=float(grid[0, 0]),
              block_aligned_only=float(np.mean(grid[block_only])) if block_only.any()
              else float("nan"),
              misaligned_mean=float(np.nanmean(grid[~on_blocks])),
              misaligned_min=float(np.nanmin(grid[~on_blocks])),
              all_phases_mean=float(np.nanmean(grid)),
              asd_percent=average_score_drop(displacement_curve(table)))


def analyse(model, task, config, split="test", period=8, qf=None, first_qf=None, seen=None):
  """Runs the sweep for `model`; returns its phase table (see `phase_table`).
  With `seen`, an image that fails to decode is skipped, for the caller to report."""
  dataset = input_pipeline.offset_dataset(task, split, config.pipeline(task), period,
                                          qf, first_qf, seen)
  out = evaluation.predict(model, dataset)
  return phase_table(out["probabilities"], out["label"], out["phase"], task.num_classes)


def tag(qf=None, first_qf=None, period=8):
  """File tag of a sweep: qfnone, qf90, qf90_first50, qfnone_period16."""
  qf, first_qf = (None if str(q).lower() in ("none", "0", "") else int(q)
                  for q in (qf, first_qf))
  return (f"qf{qf or 'none'}" + (f"_first{first_qf}" if first_qf else "")
          + ("" if int(period) == 8 else f"_period{period}"))


def table_path(workdir, qf=None, first_qf=None, period=8):
  """Where `write_analysis` keeps a sweep's phase table."""
  return os.path.join(workdir, f"offsets_{tag(qf, first_qf, period)}.csv")


def resummarize(workdir):
  """offsets_summary.csv of a run with every row recomputed from its phase
  table, so summaries follow this code whatever version wrote them."""
  summary = evaluation.read_table(os.path.join(workdir, "offsets_summary.csv"))
  rows = []
  for row in summary.to_dict("records"):
    path = table_path(workdir, row["test_qf"], row["test_first_qf"], row["period"])
    if os.path.exists(path):
      row.update(summarize(pd.read_csv(path)))
    rows.append(row)
  return pd.DataFrame(rows)


def analyse_run(workdir, period=8, test_qfs=None, test_first_qfs=None, builtin_seed=None):
  """Per-offset analysis of a trained run's best weights (see `write_analysis`);
  with `builtin_seed`, on a built-in task generated anew, written where
  `evaluation.evaluate_run` puts such results."""
  config, task, model = evaluation.load_run(workdir, test_qfs=test_qfs,
                                            test_first_qfs=test_first_qfs,
                                            builtin_seed=builtin_seed)
  return write_analysis(evaluation.output_dir(workdir, builtin_seed), model, task, config,
                        period)


def write_analysis(workdir, model, task, config, period=8):
  """The sweep once per test compression condition of `config`.

  Writes workdir/offsets_<tag>.csv (the phase table), displacement_<tag>.csv,
  offsets_<tag>.png/.pdf (map and curve) and offsets_summary.csv; the tag
  names the compression (`tag`) and a period other than 8.

  Returns:
    The summary DataFrame: one row per compression condition.
  """
  from tfjpeg import plotting  # pylint: disable=g-import-not-at-top
  summaries = []
  for first_qf in config.test_first_qfs:
    for qf in config.test_qfs:
      seen = input_pipeline.ImagesSeen()
      table = analyse(model, task, config, "test", period, qf, first_qf, seen)
      rundir.report_lost_images(workdir, task, "test", seen, logging.warning)
      name = tag(qf, first_qf, period)
      table.to_csv(table_path(workdir, qf, first_qf, period), index=False)
      displacement_curve(table).to_csv(os.path.join(workdir, f"displacement_{name}.csv"),
                                       index=False)
      plotting.offset_figure([(f"{config.task}/{config.net} train {config.train_crop}",
                               table)], os.path.join(workdir, f"offsets_{name}"))
      summaries.append(dict(task=config.task, net=config.net, train_crop=config.train_crop,
                            crop_grid=config.crop_grid, train_qf=config.train_qf_label,
                            test_qf=qf or "none", test_first_qf=first_qf or "none",
                            **summarize(table)))
  # Other periods and conditions already swept stay.
  return evaluation.upsert_rows(os.path.join(workdir, "offsets_summary.csv"),
                                pd.DataFrame(summaries), ("period", "test_qf", "test_first_qf"))
