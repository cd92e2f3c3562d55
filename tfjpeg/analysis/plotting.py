"""Figures from arrays and DataFrames (matplotlib is imported here only).

A leaf: it imports no other module of the project, so anything may draw.
"""

import os
from typing import NamedTuple

import numpy as np
import pandas as pd


class OffsetPanel(NamedTuple):
  """One sweep as `offset_figure` draws it (`tfjpeg.analysis.offsets.figure_panel`)."""

  label: str
  grid: np.ndarray  # [period, period] metric by grid phase (dy, dx)
  curve: pd.DataFrame  # direction, shift, score_change
  asd_percent: float


def task_examples(examples, path):
  """A grid of example images per class, with their high-pass residual beneath.

  Args:
    examples: {class name: [RGB uint8 arrays]}, as `tasks.examples` gives.
    path: PNG path.

  The residual (a 3x3 Laplacian of luma, as the `hpf` net's fixed front end)
  shows the fine detail where forensic classes differ.
  """
  plt = _pyplot()
  import cv2  # pylint: disable=g-import-not-at-top

  per_class = max(len(v) for v in examples.values())
  fig, axes = plt.subplots(
    2 * len(examples), per_class, figsize=(1.6 * per_class, 3.2 * len(examples)), squeeze=False
  )
  for row, (name, pictures) in enumerate(examples.items()):
    for column, picture in enumerate(pictures):
      luma = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY).astype(np.float32)
      residual = cv2.Laplacian(luma, cv2.CV_32F)
      axes[2 * row, column].imshow(picture)
      axes[2 * row + 1, column].imshow(np.clip(residual, -20, 20), cmap="gray")
      axes[2 * row, column].set_title(name, fontsize=8)
  for axis in axes.ravel():
    axis.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return path


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  return plt


def _save(fig, stem):
  """Writes `stem`.png and `stem`.pdf; returns both paths."""
  paths = [f"{stem}.png", f"{stem}.pdf"]
  for path in paths:
    fig.savefig(path, dpi=100, bbox_inches="tight")
  _pyplot().close(fig)
  return paths


def confusion_figure(matrix, class_names, title, path):
  plt = _pyplot()
  size = max(3.0, 0.45 * len(class_names) + 1.5)
  fig, axis = plt.subplots(figsize=(size, size))
  axis.imshow(matrix, cmap="Blues")
  axis.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
  axis.set_yticks(range(len(class_names)), class_names, fontsize=7)
  axis.set_xlabel("predicted")
  axis.set_ylabel("true")
  axis.set_title(title, fontsize=9)
  for (i, j), value in np.ndenumerate(matrix):
    axis.text(j, i, str(value), ha="center", va="center", fontsize=6)
  fig.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(fig)
  return path


def _single_compression(table):
  """Rows of single-compression test conditions on the 8-pixel grid (the
  paper's; older tables have neither column)."""
  if "test_first_qf" in table.columns:
    table = table[table["test_first_qf"].astype(str).isin(["none", "", "nan"])]
  if "test_grid" in table.columns:
    table = table[table["test_grid"].astype(str).isin(["8", ""])]
  if "test_resave" in table.columns:  # the compression swap is a figure of its own
    table = table[table["test_resave"].astype(str).isin(["none", "", "nan"])]
  return table


def offset_figure(panels, stem, metric="balanced_accuracy"):
  """Per-offset analysis of one or more sweeps: for each, the map of `metric`
  by grid phase of the test crop; beside them, every sweep's displacement curve
  (score change as the crop shifts diagonally, and along each axis).

  Args:
    panels: [OffsetPanel].
    stem: output path without extension (PNG and PDF are written).
  """
  plt = _pyplot()
  fig, axes = plt.subplots(
    1, len(panels) + 1, figsize=(3.3 * len(panels) + 5.0, 3.4), squeeze=False
  )
  for axis, panel in zip(axes[0], panels):
    period = panel.grid.shape[0]
    image = axis.imshow(panel.grid, vmin=0, vmax=1, cmap="viridis")
    axis.set_xticks(range(period))
    axis.set_yticks(range(period))
    axis.tick_params(labelsize=6 if period > 8 else 8)
    axis.set_xlabel(f"dx (crop offset mod {period})")
    axis.set_ylabel("dy")
    if period <= 8:
      for (i, j), value in np.ndenumerate(panel.grid):
        axis.text(
          j,
          i,
          f"{value:.2f}",
          ha="center",
          va="center",
          fontsize=6,
          color="k" if value > 0.6 else "w",
        )
    axis.set_title(f"{panel.label}\nASD {panel.asd_percent:.1f}%", fontsize=8)
  fig.colorbar(
    image, ax=axes[0][: len(panels)].tolist(), shrink=0.8, label=metric.replace("_", " ")
  )
  curves = axes[0][-1]
  styles = {"diagonal": "-", "vertical": "--", "horizontal": ":"}
  for number, panel in enumerate(panels):
    for direction, rows in panel.curve.groupby("direction"):
      curves.plot(
        rows["shift"],
        rows["score_change"],
        styles[direction],
        marker="o",
        markersize=3,
        color=f"C{number}",
        label=panel.label if direction == "diagonal" else None,
      )
  for direction, style in styles.items():  # a key to the line styles
    curves.plot(
      [],
      [],
      style,
      color="gray",
      label=f"shift {direction}" if direction != "diagonal" else "shift diagonally",
    )
  curves.axhline(0, color="gray", linewidth=0.5)
  curves.set_xlabel("crop shift (pixels)")
  curves.set_ylabel("true-class score change")
  curves.set_title("displacement", fontsize=9)
  curves.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1)
  return _save(fig, stem)


def _qf_key(value):
  """Test QFs from mild to harsh: none (as stored), then falling numbers."""
  value = str(value)
  return -1 if value == "none" else 101 - int(value)


def alignment_figure(
  table, out_dir, metric="balanced_accuracy", experiment="alignment", name="fig1_alignment"
):
  """The paper's Fig. 1: per task, accuracy of each train/test alignment pair, per
  net (and recipe, where a study has several); with several seeds, their mean,
  and error bars of one standard deviation."""
  plt = _pyplot()
  table = _single_compression(table[table["experiment"] == experiment])
  if "variant" in table.columns and (table["variant"].fillna("") != "").any():
    table = table.assign(net=table["net"] + "\n(" + table["variant"].fillna("") + ")")
  task_names = sorted(table["task"].unique())
  width = max(4.5, 1.3 * table["net"].nunique())
  fig, axes = plt.subplots(
    1, len(task_names), figsize=(width * len(task_names), 3.6), squeeze=False
  )
  pairs = [
    ("aligned", "aligned"),
    ("aligned", "random"),
    ("random", "aligned"),
    ("random", "random"),
  ]
  for axis, task in zip(axes[0], task_names):
    rows = table[table["task"] == task]
    nets = sorted(rows["net"].unique())
    width = 0.8 / len(pairs)
    for k, (train, test) in enumerate(pairs):
      runs = [
        rows[(rows["net"] == n) & (rows["train_crop"] == train) & (rows["test_crop"] == test)][
          metric
        ].astype(float)
        for n in nets
      ]
      axis.bar(
        np.arange(len(nets)) + (k - 1.5) * width,
        [r.mean() for r in runs],
        width,
        yerr=[r.std() if len(r) > 1 else 0.0 for r in runs],
        capsize=2,
        label=f"train {train} / test {test}",
      )
    axis.set_xticks(range(len(nets)), nets)
    axis.set_ylim(0, 1)
    axis.set_title(task)
    axis.set_ylabel(metric.replace("_", " "))
  axes[0][-1].legend(fontsize=7, loc="lower right")
  fig.tight_layout()
  return _save(fig, os.path.join(out_dir, name))


def quality_figures(table, out_dir, metric="balanced_accuracy"):
  """Figs. 2-5: per task and net, accuracy against test QF (one curve per
  training augmentation), beside a heatmap of the same matrix; with several
  seeds, means with error bars of one standard deviation."""
  plt = _pyplot()
  table = _single_compression(table[table["experiment"] == "quality"])
  paths = []
  for (task, net), rows in table.groupby(["task", "net"]):
    rows = rows.assign(test_qf=rows["test_qf"].astype(str), train_qf=rows["train_qf"].astype(str))
    rows = rows.assign(**{metric: rows[metric].astype(float)})
    matrix = rows.pivot_table(index="train_qf", columns="test_qf", values=metric)
    matrix = matrix[sorted(matrix.columns, key=_qf_key)]
    matrix = matrix.loc[sorted(matrix.index, key=_qf_key)]
    spread = (
      rows.pivot_table(index="train_qf", columns="test_qf", values=metric, aggfunc="std")
      .reindex_like(matrix)
      .fillna(0.0)
    )
    fig, (curves, heat) = plt.subplots(1, 2, figsize=(10, 3.6))
    for train_qf, values in matrix.iterrows():
      curves.errorbar(
        range(len(values)),
        values.to_numpy(),
        yerr=spread.loc[train_qf],
        marker="o",
        capsize=2,
        label=f"aug {train_qf}" if train_qf != "none" else "no aug",
      )
    curves.set_xticks(range(len(matrix.columns)), matrix.columns)
    curves.set_xlabel("test QF")
    curves.set_ylabel(metric.replace("_", " "))
    curves.set_ylim(0, 1)
    curves.legend(fontsize=7)
    curves.set_title(f"{task} / {net}")
    image = heat.imshow(matrix.to_numpy(), vmin=0, vmax=1, cmap="viridis")
    heat.set_xticks(range(len(matrix.columns)), matrix.columns)
    heat.set_yticks(range(len(matrix.index)), matrix.index)
    heat.set_xlabel("test QF")
    heat.set_ylabel("training augmentation QF")
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
      heat.text(
        j,
        i,
        f"{value:.2f}",
        ha="center",
        va="center",
        fontsize=7,
        color="k" if value > 0.6 else "w",
      )
    fig.colorbar(image, ax=heat)
    fig.tight_layout()
    paths += _save(fig, os.path.join(out_dir, f"quality_{task}_{net}"))
  return paths


def study_figures(table, out_dir, metric="balanced_accuracy"):
  """Every figure a study table supports: Fig. 1 if it has alignment runs,
  Figs. 2-5 (one per task and net) if it has quality runs."""
  if "experiment" not in table.columns or table.empty:
    raise ValueError("not a study table (no experiment column, or no rows)")
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  if (table["experiment"] == "alignment").any():
    paths += alignment_figure(table, out_dir, metric)
  if (table["experiment"] == "real").any():  # configs/real.py: recipes side by side
    paths += alignment_figure(table, out_dir, metric, "real", "real_photos")
  if (table["experiment"] == "quality").any():
    paths += quality_figures(table, out_dir, metric)
  return paths


def accuracy_by_quality(table, stem, chance=None):
  """Balanced accuracy against test QF, one curve per test crop, with each
  point's 95% interval; `table` has test_crop, test_qf ("none" or a number),
  balanced_accuracy and its _low and _high."""
  plt = _pyplot()
  fig, axis = plt.subplots(figsize=(6.4, 3.6))
  order = sorted(table["test_qf"].astype(str).unique(), key=_qf_key)
  for number, (crop, rows) in enumerate(table.groupby("test_crop", sort=False)):
    rows = rows.assign(test_qf=rows["test_qf"].astype(str)).set_index("test_qf").reindex(order)
    value = rows["balanced_accuracy"].astype(float).to_numpy()
    spread = np.stack(
      [
        value - rows["balanced_accuracy_low"].astype(float).to_numpy(),
        rows["balanced_accuracy_high"].astype(float).to_numpy() - value,
      ]
    )
    axis.errorbar(
      np.arange(len(order)) + 0.06 * number,
      value,
      yerr=spread,
      marker="o",
      capsize=3,
      label=f"{crop} crops",
    )
  if chance is not None:
    axis.axhline(chance, color="gray", linewidth=0.8, linestyle=":", label="chance")
  axis.set_xticks(range(len(order)), order)
  axis.set_xlabel("test QF (none: as stored)")
  axis.set_ylabel("balanced accuracy (95% interval)")
  axis.set_ylim(0, 1.02)
  axis.legend(fontsize=7)
  return _save(fig, stem)


def double_compression_map(table, stem):
  """Balanced accuracy by first QF (rows) and second QF (columns), one panel
  per test crop; `table` has test_crop, test_first_qf, test_qf, balanced_accuracy."""
  plt = _pyplot()
  crops = list(dict.fromkeys(table["test_crop"]))
  fig, axes = plt.subplots(1, len(crops), figsize=(3.4 * len(crops) + 0.8, 3.2), squeeze=False)
  for axis, crop in zip(axes[0], crops):
    rows = table[table["test_crop"] == crop]
    grid = rows.pivot_table(
      index="test_first_qf", columns="test_qf", values="balanced_accuracy", aggfunc="mean"
    )
    image = axis.imshow(grid.to_numpy(float), vmin=0, vmax=1, cmap="viridis")
    axis.set_xticks(range(len(grid.columns)), grid.columns)
    axis.set_yticks(range(len(grid.index)), grid.index)
    axis.set_xlabel("second QF (after the crop)")
    axis.set_ylabel("first QF (whole image)")
    axis.set_title(f"{crop} crops", fontsize=9)
    for (i, j), value in np.ndenumerate(grid.to_numpy(float)):
      axis.text(
        j,
        i,
        f"{value:.2f}",
        ha="center",
        va="center",
        fontsize=7,
        color="k" if value > 0.6 else "w",
      )
  fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="balanced accuracy")
  return _save(fig, stem)


def accuracy_by_resize(table, stem, chance=None):
  """Balanced accuracy against resize factor, one curve per QF the resized
  image is then saved at ("none": not saved again), with each point's 95%
  interval; `table` has resize_factor, resize_qf, balanced_accuracy and its
  _low and _high."""
  plt = _pyplot()
  fig, axis = plt.subplots(figsize=(6.4, 3.6))
  for qf, rows in table.groupby("resize_qf", sort=False):
    rows = rows.sort_values("resize_factor")
    value = rows["balanced_accuracy"].astype(float).to_numpy()
    spread = np.stack(
      [
        value - rows["balanced_accuracy_low"].astype(float).to_numpy(),
        rows["balanced_accuracy_high"].astype(float).to_numpy() - value,
      ]
    )
    label = "not saved again" if str(qf) == "none" else f"then JPEG QF {qf}"
    axis.errorbar(rows["resize_factor"], value, yerr=spread, marker="o", capsize=3, label=label)
  if chance is not None:
    axis.axhline(chance, color="gray", linewidth=0.8, linestyle=":", label="chance")
  axis.set_xscale("log", base=2)
  factors = sorted(table["resize_factor"].unique())
  axis.set_xticks(factors, [f"{f:g}" for f in factors])
  axis.set_xlabel("resize factor of the whole image (1: as stored)")
  axis.set_ylabel("balanced accuracy (95% interval)")
  axis.set_ylim(0, 1.02)
  axis.legend(fontsize=7)
  return _save(fig, stem)


def stability_heatmap(table, stem):
  """The share of each class's images whose verdict flips (rows: the
  conditions, in their order; columns: the true classes), each cell
  written out with the class most of them went to; `table` is
  `tfjpeg.analysis.stability.table`'s (condition, class_name, flip_share,
  flipped_to)."""
  plt = _pyplot()
  conditions = list(dict.fromkeys(table["condition"]))
  classes = list(dict.fromkeys(table["class_name"]))
  cells = table.set_index(["condition", "class_name"])
  share = np.array(
    [[float(cells.loc[(c, k), "flip_share"]) for k in classes] for c in conditions], float
  )
  fig, axis = plt.subplots(figsize=(2.2 + 1.6 * len(classes), 0.9 + 0.28 * len(conditions)))
  image = axis.imshow(np.nan_to_num(share), cmap="Reds", vmin=0.0, vmax=1.0, aspect="auto")
  for row, condition in enumerate(conditions):
    for column, name in enumerate(classes):
      value = share[row, column]
      to = cells.loc[(condition, name), "flipped_to"]
      text = "" if np.isnan(value) else f"{100 * value:.0f}%" + (f" to {to}" if to else "")
      axis.text(
        column, row, text, ha="center", va="center", fontsize=7,
        color="white" if value > 0.6 else "black",
      )  # fmt: skip
  axis.set_xticks(range(len(classes)), [f"true {k}" for k in classes], fontsize=8)
  axis.set_yticks(range(len(conditions)), conditions, fontsize=7)
  axis.xaxis.tick_top()
  fig.colorbar(image, ax=axis, fraction=0.05, pad=0.02, label="verdicts flipped")
  return _save(fig, stem)
