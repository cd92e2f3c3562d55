"""Grids of runs: the paper's two experiments, run resumably and in shards, merged.

A study is a list of (run name, Config). `run` trains each run of its shard in
STUDY_DIR/runs/<name> (a finished run, one with its completion marker, is
skipped if its saved config is the preset's, and stops the study otherwise; a
broken one resumes), then `merge` gathers every finished run's results.csv
into STUDY_DIR/table.csv and table.parquet, one row per test condition with
every setting as a column. A study repeated over seeds (`with_seeds`) also
gets STUDY_DIR/summary.csv: per run setting and test condition, the mean,
standard deviation and count over seeds of each metric. All runs log under STUDY_DIR/runs, so
`tensorboard --logdir=STUDY_DIR/runs` compares them in the HParams dashboard.
"""

import dataclasses
import os

import pandas as pd
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from tfjpeg import config as config_lib
from tfjpeg.analysis import invariance
from tfjpeg.analysis import offsets
from tfjpeg.analysis import plotting
from tfjpeg.analysis import tables
from tfjpeg.core import runlock
from tfjpeg.core.errors import ConfigError
from tfjpeg.experiments import run as run_lib
from tfjpeg.train import hparams
from tfjpeg.train import rundir

PAPER_TASKS = ("vision", "gan", "imagenet", "lsun")
PAPER_NETS = ("efficientnetb0", "efficientnetb4", "resnet50", "xception")
PAPER_QFS = (50, 60, 70, 80, 90, 99)


@dataclasses.dataclass(frozen=True)
class Study:
  name: str
  runs: tuple  # ((run_name, Config), ...)

  def __post_init__(self):
    names = [n for n, _ in self.runs]
    if len(set(names)) != len(names):
      raise ConfigError(f"study {self.name} names a run twice")


def alignment_runs(
  tasks, nets, base=config_lib.make(), test_crops=("aligned", "random", "realigned")
):
  """Experiment 1: every image compressed at QF 100 first; train on aligned or
  random crops; test on aligned and random crops, uncompressed, and (beyond the
  paper) on random crops moved onto the blindly estimated grid."""
  return tuple(
    (
      f"alignment_{task}_{net}_train-{crop}",
      config_lib.replace(
        base,
        experiment="alignment",
        task=task,
        net=net,
        lattice_qf=100,
        train_crop=crop,
        train_qfs=(),
        test_crops=tuple(test_crops),
        test_qfs=(None,),
      ),
    )
    for task in tasks
    for net in nets
    for crop in ("aligned", "random")
  )


def quality_runs(tasks, nets, train_qfs=PAPER_QFS, test_qfs=PAPER_QFS, base=config_lib.make()):
  """Experiment 2: random crops; no augmentation, or half of the training
  patches compressed at one QF; tested uncompressed and at each test QF."""
  return tuple(
    (
      f"quality_{task}_{net}_aug-{qf or 'none'}",
      config_lib.replace(
        base,
        experiment="quality",
        task=task,
        net=net,
        lattice_qf=None,
        train_crop="random",
        train_qfs=(qf,) if qf else (),
        aug_fraction=0.5,
        test_crops=("random",),
        test_qfs=(None,) + tuple(test_qfs),
      ),
    )
    for task in tasks
    for net in nets
    for qf in (None,) + tuple(train_qfs)
  )


def with_data_dirs(study, data_dirs):
  """Sets each run's data_dir from a {task: directory} mapping."""
  return Study(
    study.name,
    tuple(
      (name, config_lib.replace(c, data_dir=data_dirs.get(c.task.name, c.task.data_dir)))
      for name, c in study.runs
    ),
  )


def with_seeds(study, seeds, new_split=True):
  """Each run repeated once per seed, named `<run>_seed<N>`. `new_split` also
  draws a new train/validation/test split per seed (`split_seed`), so the
  spread covers which images land in test as well as training randomness;
  every run of one seed shares that seed's split, so runs compare paired."""
  seeds = tuple(int(s) for s in seeds)
  if len(set(seeds)) != len(seeds):
    raise ConfigError(f"seeds repeat: {seeds}")
  return Study(
    study.name,
    tuple(
      (
        f"{name}_seed{seed}",
        config_lib.replace(c, seed=seed, split_seed=seed if new_split else c.task.split_seed),
      )
      for name, c in study.runs
      for seed in seeds
    ),
  )


def shard(runs, index, count):
  """Runs index, index + count, ...: array job `index` of `count` (0-based)."""
  if not 0 <= index < count:
    raise ConfigError(f"shard index must be in 0..{count - 1}, got {index}")
  return runs[index::count]


def parse_shard(text):
  """'2/4' -> (1, 4): the second of four shards, as array jobs count from 1."""
  try:
    number, count = (int(v) for v in text.split("/"))
  except ValueError as e:
    raise ConfigError(f"--shard takes i/n, e.g. 1/4; got {text!r}") from e
  if not 1 <= number <= count:
    raise ConfigError(f"--shard {text}: i must be in 1..n")
  return number - 1, count


def run(study, study_dir, shard_index=0, shard_count=1, log=print):
  """Trains the runs of one shard (skipping finished ones, and naming those
  another process is writing), then merges the table. Returns the table, or
  None when the merge must wait for runs other processes still hold."""
  mine = shard(study.runs, shard_index, shard_count)
  for number, (name, config) in enumerate(mine, 1):
    workdir = os.path.join(study_dir, "runs", name)
    found = runlock.holder(workdir)
    if found is not None:
      log(f"[{number}/{len(mine)}] {name}: skipped, {runlock.refusal(workdir, found)}")
      continue
    if rundir.is_finished(workdir):
      changed = config_lib.differences(config_lib.saved(workdir), config)
      if changed:
        raise ConfigError(
          f"{workdir} finished with another config than the preset's "
          f"{name} (differs in {changed}): the preset changed since; use a "
          "new --study_dir, or move the run away to train it again"
        )
      log(f"[{number}/{len(mine)}] {name}: finished, skipped")
      continue
    log(f"[{number}/{len(mine)}] {name}")
    try:
      run_lib.train_and_evaluate(config, workdir, log=log)
    except runlock.RunLockedError as e:  # taken since the check above
      log(f"[{number}/{len(mine)}] {name}: skipped, {e}")
  try:
    return merge(study, study_dir)
  except runlock.RunLockedError as e:
    log(f"not merged yet: {e}")
    return None


def merge(study, study_dir):
  """One tidy table of every finished run of the study, with its settings as
  each run saved them (config.json), not as the preset says now.

  Raises:
    runlock.RunLockedError: some run is being written by another process.
  """
  held = {name: runlock.holder(os.path.join(study_dir, "runs", name)) for name, _ in study.runs}
  held = {name: h for name, h in held.items() if h is not None}
  if held:
    raise runlock.RunLockedError(
      f"{len(held)} run(s) of {study_dir} are being written by other processes ("
      + "; ".join(f"{name}: {h.describe()}" for name, h in held.items())
      + "): merge once they end (bin/study without --shard)"
    )
  frames = []
  for name, _ in study.runs:
    workdir = os.path.join(study_dir, "runs", name)
    if not rundir.is_finished(workdir):
      continue
    config = config_lib.saved(workdir)
    results = rundir.read_table(os.path.join(workdir, "results.csv"), config.jpeg.crop_grid)
    settings = {
      k: (
        v
        if isinstance(v, (int, float, str, bool))
        else ("none" if "qf" in k else v)
        if v is None
        else ",".join("none" if x is None else str(x) for x in v)
      )
      for k, v in config.flat().items()
      if k not in results.columns
    }
    frames.append(results.assign(study=study.name, run=name, **settings))
  table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
  os.makedirs(study_dir, exist_ok=True)
  sweeps = [
    offsets.resummarize(os.path.join(study_dir, "runs", name)).assign(run=name)
    for name, _ in study.runs
    if os.path.exists(os.path.join(study_dir, "runs", name, "offsets_summary.csv"))
  ]
  if sweeps:  # per-offset sweeps of runs with offset_periods
    pd.concat(sweeps, ignore_index=True).to_csv(os.path.join(study_dir, "offsets.csv"), index=False)
  table.to_csv(os.path.join(study_dir, "table.csv"), index=False)
  if len(table):
    write_hparams_config(table, os.path.join(study_dir, "runs"))
  if "seed" in table.columns and table["seed"].nunique() > 1:
    tables.summarize(table).to_csv(os.path.join(study_dir, "summary.csv"), index=False)
  for column in table.columns:  # Parquet wants one type per column
    if table[column].dtype == object:
      table[column] = table[column].astype(str)
  table.to_parquet(os.path.join(study_dir, "table.parquet"), index=False)
  return table


def figures(table_path, out_dir=None, metric="balanced_accuracy"):
  """Every figure of `plotting.study_figures` for a study table file, beside
  it unless `out_dir` is given; for invariance runs (configs/invariance.py),
  `tfjpeg.analysis.invariance`'s table and figure, from the runs beside it."""
  table = tables.read_study_table(table_path)
  if "experiment" not in table.columns or table.empty:
    raise ConfigError(f"{table_path} is not a study table (no experiment column, or no rows)")
  study_dir = os.path.dirname(os.path.abspath(table_path))
  paths = []
  if (table["experiment"] == invariance.EXPERIMENT).any():  # with its runs' per-offset maps
    paths += invariance.write(table, study_dir, out_dir)
    table = table[table["experiment"] != invariance.EXPERIMENT]
  if table.empty:
    return paths
  return paths + plotting.study_figures(table, out_dir or study_dir, metric)


def write_hparams_config(table, logdir):
  """The HParams dashboard's columns for the study's runs under `logdir`: the
  defining settings (`hparams.HPARAMS`) that differ between its runs, and
  every test condition's balanced accuracy."""
  runs = table.drop_duplicates("run")
  columns = [
    hp.HParam(k) for k in hparams.HPARAMS if k in runs.columns and runs[k].astype(str).nunique() > 1
  ]
  metrics = [
    hp.Metric(tag) for tag in dict.fromkeys(hparams.metric_tag(row) for row in table.itertuples())
  ]
  os.makedirs(logdir, exist_ok=True)
  for name in os.listdir(logdir):  # one declaration: the latest merge's
    if name.startswith("events.out.tfevents"):
      os.remove(os.path.join(logdir, name))
  with tf.summary.create_file_writer(logdir).as_default():
    hp.hparams_config(hparams=columns, metrics=metrics)
