"""Per-offset analysis: how a net's score depends on where its test crop falls
on the JPEG grid.

One sweep (`input_pipeline.offset_dataset`) cuts every test image at
base + (dy, dx) for dy, dx in 0..period, the base on the 16-pixel MCU grid, so
each image is seen at every phase with the same content. Its phase table gives
two views (`tfjpeg.core.metrics`):

- the offset map: balanced accuracy (and mean true-class score) for each of the
  period x period grid phases, and the share of patches on their own image's
  chroma MCU grid at each (16x16 at 4:2:0, 8 high x 16 wide at 4:2:2); a net
  that relies on the grid has a bright (0, 0) and a dark rest, a net that does
  not is flat;
- the displacement curve: the change in score as the same crop shifts by
  s = 0..period pixels, diagonally (s, s), down (s, 0) and right (0, s), with
  its average score drop (ASD%).
"""

import logging
import os

import pandas as pd

from tfjpeg.analysis import plotting
from tfjpeg.core import metrics
from tfjpeg.core import progress
from tfjpeg.core import runlock
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import MissingError
from tfjpeg.models import inference
from tfjpeg.pipeline import input_pipeline
from tfjpeg.serving import classifier
from tfjpeg.train import rundir


def analyse(model, task, config, split="test", period=8, qf=None, first_qf=None, seen=None):
  """Runs the sweep for `model`; returns its phase table (`metrics.phase_table`).
  With `seen`, an image that fails to decode is skipped, for the caller to report."""
  dataset = input_pipeline.offset_dataset(
    task,
    split,
    input_pipeline.PipelineConfig.for_run(config, task, training=False),
    period,
    qf,
    first_qf,
    seen,
  )
  out = inference.predict(model, dataset)
  return metrics.phase_table(
    out["probabilities"], out["label"], out["phase"], out["offset"], out["mcu"]
  )


def figure_panel(label, table, metric="balanced_accuracy"):
  """What `plotting.offset_figure` draws of one sweep's phase table."""
  return plotting.OffsetPanel(
    label,
    metrics.offset_map(table, metric),
    metrics.displacement_curve(table),
    metrics.offset_summary(table)["asd_percent"],
  )


def resummarize(workdir):
  """offsets_summary.csv of a run with every row recomputed from its phase
  table, so summaries follow this code whatever version wrote them."""
  summary = rundir.read_table(os.path.join(workdir, "offsets_summary.csv"))
  rows = []
  for row in summary.to_dict("records"):
    path = rundir.sweep_path(workdir, row["test_qf"], row["test_first_qf"], row["period"])
    if os.path.exists(path):
      row.update(metrics.offset_summary(pd.read_csv(path)))
    rows.append(row)
  return pd.DataFrame(rows)


def analyse_run(workdir, period=8, test_qfs=None, test_first_qfs=None, builtin_seed=None):
  """Per-offset analysis of a trained run's selected weights (see
  `write_analysis`); with `builtin_seed`, on a built-in task generated anew,
  written where `evaluation.evaluate_run` puts such results. Holds the run
  directory's lock while it reads and writes there, as training does."""
  with runlock.hold(workdir, create=False):
    config, task, model = classifier.load_run(
      workdir, test_qfs=test_qfs, test_first_qfs=test_first_qfs, builtin_seed=builtin_seed
    )
    return write_analysis(rundir.output_dir(workdir, builtin_seed), model, task, config, period)


def write_analysis(workdir, model, task, config, period=8):
  """The sweep once per test compression condition of `config`.

  Writes workdir/offsets_<tag>.csv (the phase table), displacement_<tag>.csv,
  offsets_<tag>.png/.pdf (map and curve) and offsets_summary.csv; the tag
  names the compression and a period other than 8 (`rundir.sweep_tag`).

  Returns:
    The summary DataFrame: one row per compression condition swept so far.
  """
  summary = None
  conditions = [(qf, first_qf) for first_qf in config.test.first_qfs for qf in config.test.qfs]
  bar = progress.Progress(len(conditions), f"per-offset sweeps, period {period}", "conditions")
  for qf, first_qf in conditions:
    seen = input_pipeline.ImagesSeen()
    table = analyse(model, task, config, "test", period, qf, first_qf, seen)
    rundir.report_lost_images(workdir, task, "test", seen, logging.warning)
    row = dict(
      task=config.task.name,
      net=config.net,
      train_crop=config.jpeg.train_crop,
      crop_grid=config.jpeg.crop_grid,
      train_qf=config.train_qf_label,
      test_qf=qf or "none",
      test_first_qf=first_qf or "none",
      **metrics.offset_summary(table),
    )
    summary = rundir.write_sweep(
      workdir, table, metrics.displacement_curve(table), row, qf, first_qf, period
    )
    plotting.offset_figure(
      [figure_panel(f"{config.task.name}/{config.net} train {config.jpeg.train_crop}", table)],
      os.path.join(workdir, f"offsets_{rundir.sweep_tag(qf, first_qf, period)}"),
    )
    bar.update()
  bar.close()
  return summary


def figure_from_files(paths, labels=None, stem=None, metric="balanced_accuracy"):
  """`plotting.offset_figure` of offsets_*.csv files; labels default to their run folders."""
  labels = list(labels or [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in paths])
  if len(labels) != len(paths):
    raise ConfigError(f"{len(paths)} offsets files but {len(labels)} labels")
  panels = []
  for label, path in zip(labels, paths):
    if not os.path.exists(path):
      raise MissingError(f"no offsets table at {path}")
    table = pd.read_csv(path)
    missing = {"dy", "dx", "score", metric} - set(table.columns)
    if missing:
      raise ConfigError(
        f"{path} is not an offsets file of bin/evaluate --per_offset "
        f"(no {', '.join(sorted(missing))})"
      )
    panels.append(figure_panel(label, table, metric))
  stem = stem or os.path.splitext(paths[0])[0] + "_figure"
  os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
  return plotting.offset_figure(panels, stem, metric)
