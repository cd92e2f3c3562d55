"""`train_and_evaluate(config, workdir)`: one run, trained then tested.

The run directory holds:
  config.json        the resolved config, written once every check before
                     training passed (task, net, patch size, data, weights):
                     a start refused before then leaves no run directory
  run.json           what the model is without the data: task, class names,
                     patch size, net, weights file, input (tfjpeg.train.rundir)
  data_summary.txt   images per split and class, every bad file, and the
                     shortcut audit's short form (tfjpeg.data.audit)
  checkpoints/       latest.keras (model + optimizer), best.weights.h5, state.json
  logs/              TensorBoard: train/validation loss and accuracy, lr,
                     augmented training patches, HParams with test metrics
  results.csv        one row per test condition (see evaluation.RESULT_COLUMNS)
  offsets_*          per-offset sweeps, if `offset_periods` asks (see tfjpeg.analysis.offsets)
  finished.json      written last: the run is complete (what a study's skip checks)
"""

import contextlib
import os
import shutil
from collections.abc import Callable

import keras
import pandas as pd
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.analysis import evaluation
from tfjpeg.analysis import offsets
from tfjpeg.core import runlock
from tfjpeg.core.errors import ConfigError
from tfjpeg.data import audit
from tfjpeg.data import lattice
from tfjpeg.data import tasks
from tfjpeg.models import nets
from tfjpeg.pipeline import input_pipeline
from tfjpeg.train import baseline
from tfjpeg.train import distribute
from tfjpeg.train import hparams
from tfjpeg.train import preemption
from tfjpeg.train import rundir
from tfjpeg.train import schedule


def _check_workdir(config, workdir):
  """Refuses a run directory that holds another run: before anything is done."""
  if os.path.exists(os.path.join(workdir, "config.json")):
    changed = config_lib.differences(config_lib.saved(workdir), config)
    if changed:
      raise ConfigError(
        f"{workdir} holds a run with another config (differs in {changed}); use a new --workdir"
      )


def _start_workdir(config, workdir):
  """The run has started: its config is written (once; a resumed run keeps it)."""
  os.makedirs(os.path.join(workdir, "checkpoints"), exist_ok=True)
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    rundir.write_atomically(path, config.to_json())


def _make_workdir(workdir):
  """Creates `workdir` (one line when it cannot be); True if this call made
  it (os.mkdir: of two processes starting at once, one only)."""
  try:
    os.makedirs(os.path.dirname(os.path.abspath(workdir)), exist_ok=True)
  except OSError as e:
    if e.errno in rundir.WRITE_ERRNOS:  # a full or read-only disk: the binary's exit 74
      raise
    raise ConfigError(f"--workdir={workdir} cannot be created: {e.strerror or e}") from None
  try:
    os.mkdir(workdir)
    fresh = True
  except FileExistsError:
    fresh = False
  except OSError as e:
    if e.errno in rundir.WRITE_ERRNOS:  # a full or read-only disk: the binary's exit 74
      raise
    raise ConfigError(f"--workdir={workdir} cannot be created: {e.strerror or e}") from None
  if not os.path.isdir(workdir):
    raise ConfigError(f"--workdir={workdir} is a file, not a folder")
  if not os.access(workdir, os.W_OK):
    raise ConfigError(f"--workdir={workdir} cannot be written to")
  return fresh


def _clear_unstarted(workdir):
  """Removes what a start that failed before the run began wrote in the run
  directory it made, but the lock, which its holder removes on release."""
  for name in os.listdir(workdir):
    if name != runlock.LOCK_NAME:
      path = os.path.join(workdir, name)
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        os.remove(path)


def train_and_evaluate(
  config: config_lib.Config,
  workdir: str,
  log: Callable[[str], object] = print,
  break_lock: bool = False,
) -> pd.DataFrame:
  """Trains by `config.schedule.recipe` (resuming if `workdir` holds a run), then tests.

  The run holds its directory's lock (`tfjpeg.core.runlock`) while it writes: a
  multi-worker run's chief the run directory, every other worker its own
  folder. `break_lock` removes a lock held from another host.

  Returns:
    The results DataFrame, also written to `workdir/results.csv`.

  Raises:
    runlock.RunLockedError: another live process writes `workdir`.
  """
  config_lib.check_runnable(config)
  # A multi-worker strategy configures collective ops: before any other op.
  strategy = distribute.make_strategy(config.runtime.strategy)
  workdir = distribute.worker_workdir(workdir)
  _check_workdir(config, workdir)
  fresh = _make_workdir(workdir)
  started = []
  try:
    with runlock.hold(workdir, break_lock), preemption.stop_on_sigterm():
      try:
        return _train_and_evaluate(config, workdir, log, strategy, started)
      except BaseException:
        # A start that failed before the run began leaves no folder behind, so
        # that the corrected command can use the same --workdir: emptied while
        # this process holds it, removed once released (if still empty).
        if fresh and not started:
          _clear_unstarted(workdir)
        raise
  finally:
    if fresh and not started:
      with contextlib.suppress(OSError):
        os.rmdir(workdir)


def _train_and_evaluate(config, workdir, log, strategy, started):
  nets.resolve_weights(config.net, config.weights)  # a missing weights file: now
  keras.utils.set_random_seed(config.schedule.seed)
  tf.config.experimental.enable_op_determinism()
  if config.runtime.mixed_precision:
    keras.mixed_precision.set_global_policy("mixed_float16")
  task = tasks.task_for(config, log)
  cached = (
    f"lattice images (QF {task.lattice_qf}) read from "
    f"{lattice.cache_dir(task.lattice_qf, config.jpeg.chroma)}\n"
    if task.lattice_qf
    else ""
  )
  empty = [s for s, n in task.num_images.items() if n == 0]
  if empty:
    raise ConfigError(
      f"the {config.task.name} task has no {' or '.join(empty)} images "
      f"({task.num_images}): too few source images for the split; add "
      "images or change --test_fraction/--validation_fraction"
    )
  if task.patch_size < config_lib.NET_MIN_PATCH[config.net]:
    raise ConfigError(
      f"--net: {config.net} needs patches of at least "
      f"{config_lib.NET_MIN_PATCH[config.net]} pixels, but the task cuts {task.patch_size}"
    )
  _start_workdir(config, workdir)
  started.append(True)
  # The files as stored (before any lattice QF): do they give the class away?
  found = audit.audit_task(task, seed=config.schedule.seed)
  profile = audit.compression_profile(found.files, task.class_names)
  matched = ""
  if config.jpeg.match_compression:
    matched = (
      f"match_compression: lossless images saved once, then every training patch "
      f"saved, at QFs drawn from {audit.describe_qfs(profile.match_qfs)}\n"
    )
    limit = audit.matching_limit(found)
    if limit:
      matched += limit + "\n"
      log(limit)
  rundir.write_atomically(
    os.path.join(workdir, "data_summary.txt"),
    task.summary + "\n" + cached + found.short_form() + "\n" + matched,
  )
  rundir.write_description(workdir, config, task)
  log(task.summary)
  if found.warning():
    log(found.warning())
  if config.schedule.recipe == "baseline":
    model = baseline.fit(config, task, workdir, log, profile)
  else:
    model = schedule.fit(config, task, workdir, log, strategy, profile)
  preemption.stop_if_asked(workdir, "all")
  seen = input_pipeline.ImagesSeen()
  results, confusions = evaluation.evaluate(
    model,
    task,
    config,
    seen=seen,
    profile=profile,
    draws_path=os.path.join(workdir, evaluation.DRAWS_FILE),
  )
  lost = rundir.report_lost_images(workdir, task, "test", seen, log)
  evaluation.write_results(workdir, results, confusions, task.class_names)
  hparams.log_hparams(workdir, config, results)
  log(results.to_string(index=False))
  for period in config.test.offset_periods:
    log(offsets.write_analysis(workdir, model, task, config, period).to_string(index=False))
  rundir.mark_finished(workdir, conditions=len(results), test_images_lost=lost)
  return results
