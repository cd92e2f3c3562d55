"""The three answers to misalignment side by side (configs/invariance.py):
one table with each setting's spread over seeds and over grid phases, and
one figure.

A study of runs labelled experiment "invariance" (each with its
--antialias, its training crop, test crops and per-offset sweeps) gives:

- invariance.csv: a row per (antialias, training crop); for each test
  condition (aligned, misaligned, realigned crops, as stored and after the
  whole image is saved again) the mean, standard deviation and 95% interval
  of the mean over seeds of the balanced accuracy; the paired drop from
  aligned to misaligned crops (each seed's own); and the spread of the
  per-offset map (max minus min of the balanced accuracy over the 64 grid
  phases), mean and sd over seeds.
- invariance.png/.pdf: the accuracies by test condition with their sd, and
  the seed-mean per-offset map of each net trained on aligned crops.
"""

import os

import numpy as np
import pandas as pd
import scipy.stats

from tfjpeg.analysis import plotting
from tfjpeg.core import metrics
from tfjpeg.core.errors import ConfigError
from tfjpeg.train import rundir

EXPERIMENT = "invariance"
ORDER = ("none", "blur", "aps")
METRIC = "balanced_accuracy"


def _condition(row):
  chain = str(row["test_chain"])
  return row["test_crop"] + ("" if chain in ("none", "nan") else f" {chain}")


CROPS = ("aligned", "misaligned", "realigned", "random")


def _condition_order(condition):
  """As stored before a resave; aligned, misaligned, realigned within each."""
  crop, _, chain = condition.partition(" ")
  return (chain != "", chain, CROPS.index(crop) if crop in CROPS else len(CROPS), crop)


def _interval(values):
  """(mean, sd, half-width of the mean's 95% interval) of `values`."""
  values = np.asarray(values, float)
  values = values[np.isfinite(values)]
  if len(values) < 2:
    return (float(values.mean()) if len(values) else np.nan), np.nan, np.nan
  sd = float(values.std(ddof=1))
  half = float(scipy.stats.t.ppf(0.975, len(values) - 1) * sd / np.sqrt(len(values)))
  return float(values.mean()), sd, half


def phase_maps(table, study_dir):
  """{run: per-offset map (period x period balanced accuracy)} of each run of
  `table` with a sweep as stored."""
  maps = {}
  for run in table["run"].unique():
    path = rundir.sweep_path(os.path.join(study_dir, "runs", run))
    if os.path.exists(path):
      maps[run] = metrics.offset_map(pd.read_csv(path), METRIC)
  return maps


def summarize(table, maps):
  """invariance.csv's rows (see the module's docstring) from a study table
  and `phase_maps`."""
  rows = table[(table["experiment"] == EXPERIMENT) & (table["test_qf"].astype(str) == "none")]
  if rows.empty:
    raise ConfigError("no invariance runs in the table (configs/invariance.py)")
  rows = rows.assign(condition=rows.apply(_condition, axis=1))
  out = []
  for (mode, crop), group in rows.groupby(["antialias", "train_crop"], sort=False):
    summary = {"antialias": mode, "train_crop": crop, "n_seeds": group["seed"].nunique()}
    by_seed = group.pivot_table(index="seed", columns="condition", values=METRIC)
    for condition in sorted(by_seed.columns, key=_condition_order):
      mean, sd, half = _interval(by_seed[condition])
      summary.update({f"{condition}_mean": mean, f"{condition}_sd": sd, f"{condition}_ci95": half})
    if {"aligned", "misaligned"} <= set(by_seed.columns):
      drop = _interval(by_seed["aligned"] - by_seed["misaligned"])
      summary.update(dict(zip(("drop_mean", "drop_sd", "drop_ci95"), drop)))
    spreads = [np.nanmax(maps[r]) - np.nanmin(maps[r]) for r in group["run"].unique() if r in maps]
    summary.update(dict(zip(("phase_spread_mean", "phase_spread_sd"), _interval(spreads)[:2])))
    out.append(summary)
  frame = pd.DataFrame(out)
  frame["_order"] = frame["antialias"].map({m: i for i, m in enumerate(ORDER)})
  return frame.sort_values(["train_crop", "_order"]).drop(columns="_order").reset_index(drop=True)


def figure(summary, maps, table, stem):
  """invariance.png/.pdf: accuracies by test condition (bars, sd), one panel
  per training crop; below, the seed-mean per-offset maps of the nets
  trained on aligned crops. Returns the paths."""
  plt = plotting._pyplot()  # pylint: disable=protected-access
  crops = [c for c in ("aligned", "random") if c in set(summary["train_crop"])]
  conditions = [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]
  conditions = [c for c in conditions if c not in ("drop", "phase_spread")]
  modes = [m for m in ORDER if m in set(summary["antialias"])]
  fig = plt.figure(figsize=(12, 7.5))
  grid = fig.add_gridspec(2, max(len(crops), len(modes)))
  for column, crop in enumerate(crops):
    axis = fig.add_subplot(grid[0, column] if len(crops) > 1 else grid[0, :])
    width = 0.8 / len(modes)
    for number, mode in enumerate(modes):
      row = summary[(summary["train_crop"] == crop) & (summary["antialias"] == mode)]
      if row.empty:
        continue
      means = [float(row[f"{c}_mean"].iloc[0]) for c in conditions]
      sds = [float(row[f"{c}_sd"].iloc[0]) for c in conditions]
      axis.bar(
        np.arange(len(conditions)) + (number - (len(modes) - 1) / 2) * width,
        means,
        width,
        yerr=np.nan_to_num(sds),
        capsize=2,
        label=mode,
      )
    axis.set_xticks(range(len(conditions)), conditions, rotation=20, fontsize=8)
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("balanced accuracy")
    axis.set_title(f"trained on {crop} crops")
    axis.legend(title="--antialias", fontsize=8)
  aligned = table[(table["experiment"] == EXPERIMENT) & (table["train_crop"] == "aligned")]
  for column, mode in enumerate(modes):
    runs = [r for r in aligned[aligned["antialias"] == mode]["run"].unique() if r in maps]
    if not runs:
      continue
    mean_map = np.mean([maps[r] for r in runs], axis=0)
    axis = fig.add_subplot(grid[1, column])
    image = axis.imshow(mean_map, vmin=0, vmax=1, cmap="viridis")
    for (i, j), value in np.ndenumerate(mean_map):
      axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5, color="w")
    spread = float(np.nanmax(mean_map) - np.nanmin(mean_map))
    axis.set_title(f"{mode}, trained aligned: spread {spread:.2f}", fontsize=9)
    axis.set_xlabel("dx (crop offset mod 8)")
    axis.set_ylabel("dy")
    fig.colorbar(image, ax=axis, fraction=0.046)
  fig.tight_layout()
  return plotting._save(fig, stem)  # pylint: disable=protected-access


def write(table, study_dir, out_dir=None):
  """invariance.csv and the figure for a study table whose runs are under
  `study_dir`/runs; returns the paths written."""
  out_dir = out_dir or study_dir
  os.makedirs(out_dir, exist_ok=True)
  maps = phase_maps(table, study_dir)
  summary = summarize(table, maps)
  csv = os.path.join(out_dir, "invariance.csv")
  summary.to_csv(csv, index=False, float_format="%.4f")
  return [csv] + figure(summary, maps, table, os.path.join(out_dir, "invariance"))
