"""Results tables of many runs: a study's table read back, and summaries over seeds."""

import os

import numpy as np
import pandas as pd
import scipy.stats

from tfjpeg.analysis import evaluation
from tfjpeg.core.errors import MissingError
from tfjpeg.train import rundir

# Columns of a results table that are measurements, not settings.
METRICS = evaluation.METRIC_COLUMNS
SEED_COLUMNS = ("run", "seed", "split_seed")


def summarize(table):
  """Mean, standard deviation (ddof 1) and count over seeds of every metric,
  per setting and test condition, and the half-width of the mean's 95%
  interval (Student's t with n - 1 degrees of freedom: 4.30 sd / sqrt(3) for
  3 seeds; none for 1): columns `<metric>_mean`, `<metric>_sd`,
  `<metric>_ci95` and `n_seeds`."""
  keys = [c for c in table.columns if c not in METRICS and c not in SEED_COLUMNS]
  metrics = [c for c in METRICS if c in table.columns]
  grouped = table.assign(**{m: pd.to_numeric(table[m], errors="coerce") for m in metrics}).groupby(
    keys, dropna=False, sort=False
  )
  summary = grouped[metrics].agg(["mean", "std"])
  summary.columns = [f"{m}_{'sd' if stat == 'std' else stat}" for m, stat in summary.columns]
  summary["n_seeds"] = grouped.size()
  counts = summary["n_seeds"].to_numpy()
  quantile = np.where(counts > 1, scipy.stats.t.ppf(0.975, np.maximum(counts - 1, 1)), np.nan)
  for m in metrics:
    summary[f"{m}_ci95"] = quantile * summary[f"{m}_sd"] / np.sqrt(counts)
  return summary.reset_index()


def read_study_table(path):
  """table.csv (QF columns as text) or table.parquet of a study."""
  if not os.path.exists(path):
    raise MissingError(f"no study table at {path}")
  return pd.read_parquet(path) if path.endswith(".parquet") else rundir.read_table(path)
