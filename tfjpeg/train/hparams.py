"""The settings that tell runs apart, as TensorBoard HParams: each run logs
one trial with its test metrics; a study declares the columns that vary."""

import os

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from tfjpeg import config as config_lib

# The settings that tell a study's runs apart, as HParams columns: a run logs
# these (with its test metrics), a study declares the ones that vary.
HPARAMS = (
  "task",
  "net",
  "antialias",
  "variant",
  "train_crop",
  "crop_grid",
  "lattice_qf",
  "train_qf",
  "double_qfs",
  "recipe",
  "select",
  "precise_bn_batches",
  "epochs",
  "seed",
  "split_seed",
)


def hparams(config):
  """{setting: value} of `HPARAMS` for TensorBoard (None and tuples as text)."""
  values = config.flat()
  values["train_qf"] = config.train_qf_label
  return {
    k: (
      values[k]
      if isinstance(values[k], (int, float, str, bool))
      else "none"
      if values[k] is None
      else ",".join(map(str, values[k])) or "none"
    )
    for k in HPARAMS
  }


def metric_tag(row):
  """The scalar tag of a results row's balanced accuracy."""
  first = "" if str(row.test_first_qf) == "none" else f"_first{row.test_first_qf}"
  resave = getattr(row, "test_resave", "none")
  first += "" if resave == "none" else f"_{resave}"
  chain = str(getattr(row, "test_chain", "none"))
  first += "" if chain == "none" else f"_chain-{config_lib.file_name(chain)}"
  grid = str(row.test_grid)
  grid = "" if grid == "8" or row.test_crop.endswith(grid) else f"_grid{grid}"
  return f"test/{row.test_crop}{grid}_qf{row.test_qf}{first}/balanced_accuracy"


def log_hparams(workdir, config, results):
  """One HParams trial named after the run (its folder), with its defining
  settings and its test metrics."""
  logdir = os.path.join(workdir, "logs")
  with tf.summary.create_file_writer(os.path.join(logdir, "hparams")).as_default():
    hp.hparams(hparams(config), trial_id=os.path.basename(os.path.abspath(workdir)))
    for row in results.itertuples():
      tf.summary.scalar(metric_tag(row), row.balanced_accuracy, step=0)
