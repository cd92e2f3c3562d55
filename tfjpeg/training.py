"""`train_and_evaluate(config, workdir)`: the paper's schedule, resumable.

The run directory holds:
  config.json        the resolved config, written before training starts
  run.json           what the model is without the data: task, class names,
                     patch size, net, weights file, input (tfjpeg.rundir)
  data_summary.txt   images per split and class, every bad file, and the
                     shortcut audit's short form (tfjpeg.audit)
  checkpoints/       latest.keras (model + optimizer), best.weights.h5, state.json
  logs/              TensorBoard: train/validation loss and accuracy, lr,
                     augmented training patches, HParams with test metrics
  results.csv        one row per test condition (see evaluation.RESULT_COLUMNS)
  offsets_*          per-offset sweeps, if `offset_periods` asks (see tfjpeg.offsets)
  finished.json      written last: the run is complete (what a study's skip checks)

The schedule: Adam; the learning rate is multiplied by `lr_factor` when the
validation loss has not improved for `lr_patience` epochs (never, if None);
training stops when it has not improved for `stop_patience` epochs (if set), or
after `epochs`; the weights `select` names (the best validation loss, or the
last epoch's) are restored before testing. Its state is saved with
every epoch's checkpoint, so a killed run started again with the same command
continues from its last finished epoch and, with a fixed seed, ends with the
same results as an uninterrupted one.
"""

import dataclasses
import hashlib
import json
import logging
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from tfjpeg import audit
from tfjpeg import baseline
from tfjpeg import config as config_lib
from tfjpeg import evaluation
from tfjpeg import input_pipeline
from tfjpeg import lattice
from tfjpeg import models
from tfjpeg import offsets
from tfjpeg import preemption
from tfjpeg import progress
from tfjpeg import rundir
from tfjpeg import runlock


@dataclasses.dataclass
class ScheduleState:
  epoch: int = 0  # epochs finished
  learning_rate: float = 1e-3
  best_val_loss: float = float("inf")
  best_epoch: int = -1
  epochs_since_best: int = 0
  epochs_since_lr_change: int = 0
  stopped: bool = False
  history: list = dataclasses.field(default_factory=list)

  def update(self, val_loss, config):
    """Applies one finished epoch; returns True when it is the best so far."""
    self.epoch += 1
    improved = val_loss < self.best_val_loss
    if improved:
      self.best_val_loss, self.best_epoch = float(val_loss), self.epoch - 1
      self.epochs_since_best = self.epochs_since_lr_change = 0
    else:
      self.epochs_since_best += 1
      self.epochs_since_lr_change += 1
      if config.lr_patience and self.epochs_since_lr_change >= config.lr_patience:
        self.learning_rate *= config.lr_factor
        self.epochs_since_lr_change = 0
    if ((config.stop_patience and self.epochs_since_best >= config.stop_patience)
        or self.epoch >= config.epochs):
      self.stopped = True
    return improved


def check_finite(metrics, epoch, workdir):
  """Stops a run at its first non-finite training or validation loss: a NaN
  never counts as an improvement, so the run would otherwise go on to its last
  epoch with nothing to test."""
  bad = {k: v for k, v in metrics.items() if k in ("loss", "val_loss") and not math.isfinite(v)}
  if bad:
    raise FloatingPointError(
        f"{workdir}: non-finite {', '.join(f'{k} {v}' for k, v in bad.items())} in epoch "
        f"{epoch + 1}; the run stops here (lower the learning rate, or check the inputs). "
        "Earlier epochs' checkpoints are kept.")


def configure_cpu_devices(count):
  """Splits the CPU into `count` logical devices (before TensorFlow starts)."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def make_strategy(name):
  if name == "mirrored":
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
        d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multiworker":  # reads TF_CONFIG; a single local worker without it
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def worker_workdir(workdir, cluster=None):
  """Where this process writes: the run directory for a single process or a
  multi-worker run's chief (TF_CONFIG's "chief", else worker 0); any other
  worker, which takes the same steps, keeps its own files in
  workdir/<type><index>, so no two processes write one file. `cluster`: a
  cluster resolver (default: TF_CONFIG's)."""
  cluster = cluster or tf.distribute.cluster_resolver.TFConfigClusterResolver()
  kind, index = cluster.task_type, cluster.task_id
  if kind is None or kind == "chief" or (
      kind == "worker" and index == 0 and "chief" not in cluster.cluster_spec().as_dict()):
    return workdir
  return os.path.join(workdir, f"{kind}{index}")


def cluster_workers(cluster=None):
  """How many processes the cluster holds (1 without TF_CONFIG)."""
  spec = (cluster or tf.distribute.cluster_resolver.TFConfigClusterResolver()
          ).cluster_spec().as_dict()
  return max(1, sum(len(spec.get(kind, [])) for kind in ("chief", "worker")))


def _prepare_workdir(config, workdir):
  os.makedirs(os.path.join(workdir, "checkpoints"), exist_ok=True)
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    changed = config_lib.differences(config_lib.saved(workdir), config)
    if changed:
      raise ValueError(f"{workdir} holds a run with another config (differs in "
                       f"{changed}); use a new --workdir")
  else:
    rundir.write_atomically(path, config.to_json())


def _start_over(workdir):
  return (f"move {os.path.join(workdir, 'checkpoints')} away to train this run from its "
          "first epoch")


def _load_state(workdir, config):
  path = os.path.join(workdir, "checkpoints", "state.json")
  if not os.path.exists(path):
    return ScheduleState(learning_rate=config.learning_rate)
  try:
    with open(path) as f:
      state = ScheduleState(**json.load(f))
  except (ValueError, TypeError) as e:
    raise rundir.UnusableError(f"{path} is unusable ({e}); {_start_over(workdir)}") from e
  if state.epoch > config.epochs or len(state.history) != state.epoch:
    raise rundir.UnusableError(
        f"{path} does not fit this run ({state.epoch} epochs done of {config.epochs}, "
        f"{len(state.history)} in its history); {_start_over(workdir)}")
  return state


def _log_epoch(writer, validation_writer, state, sample=None):
  metrics = state.history[-1]
  with validation_writer.as_default(step=state.epoch - 1):  # beside Keras's train curves
    tf.summary.scalar("epoch_loss", metrics["val_loss"])
    tf.summary.scalar("epoch_accuracy", metrics["val_accuracy"])
  with writer.as_default(step=state.epoch - 1):
    tf.summary.scalar("learning_rate", metrics["learning_rate"])
    if sample is not None:
      tf.summary.image("augmented_training_patches", tf.cast(sample, tf.float32) / 255.0,
                       max_outputs=6)


# The settings that tell a study's runs apart, as HParams columns: a run logs
# these (with its test metrics), a study declares the ones that vary.
HPARAMS = ("task", "net", "variant", "train_crop", "crop_grid", "lattice_qf", "train_qf",
           "double_qfs", "recipe", "select", "precise_bn_batches", "epochs", "seed",
           "split_seed")


def hparams(config):
  """{setting: value} of `HPARAMS` for TensorBoard (None and tuples as text)."""
  values = dataclasses.asdict(config)
  values["train_qf"] = config.train_qf_label
  return {k: (values[k] if isinstance(values[k], (int, float, str, bool)) else
              "none" if values[k] is None else ",".join(map(str, values[k])) or "none")
          for k in HPARAMS}


def metric_tag(row):
  """The scalar tag of a results row's balanced accuracy."""
  first = "" if str(row.test_first_qf) == "none" else f"_first{row.test_first_qf}"
  resave = getattr(row, "test_resave", "none")
  first += "" if resave == "none" else f"_{resave}"
  grid = str(row.test_grid)
  grid = "" if grid == "8" or row.test_crop.endswith(grid) else f"_grid{grid}"
  return f"test/{row.test_crop}{grid}_qf{row.test_qf}{first}/balanced_accuracy"


def _log_hparams(workdir, config, results):
  """One HParams trial named after the run (its folder), with its defining
  settings and its test metrics."""
  logdir = os.path.join(workdir, "logs")
  with tf.summary.create_file_writer(os.path.join(logdir, "hparams")).as_default():
    hp.hparams(hparams(config), trial_id=os.path.basename(os.path.abspath(workdir)))
    for row in results.itertuples():
      tf.summary.scalar(metric_tag(row), row.balanced_accuracy, step=0)


class BatchProgress(keras.callbacks.Callback):
  """A bar of the epoch's batches with the time left, on a terminal; elsewhere
  the epoch's own line, printed once it is saved, is the only one."""

  def __init__(self, total, epochs, stream=None):
    super().__init__()
    self.total, self.epochs, self.stream = total, epochs, stream or sys.stderr
    self.bar = None

  def on_epoch_begin(self, epoch, logs=None):
    if self.stream.isatty():
      self.bar = progress.Progress(self.total, f"epoch {epoch + 1}/{self.epochs}", "batches",
                                   self.stream)

  def on_train_batch_end(self, batch, logs=None):
    if self.bar:
      self.bar.update()

  def on_epoch_end(self, epoch, logs=None):
    if self.bar:
      self.bar.close()
      self.bar = None


def steps_per_epoch(config, task):
  """Training batches in one epoch."""
  patches = task.num_images["train"] * task.patches_per_image
  return config.steps_per_epoch or max(1, math.ceil(patches / config.batch_size))


def _build_model(config, task, state, workdir):
  latest = os.path.join(workdir, "checkpoints", "latest.keras")
  if state.epoch > 0:
    if not os.path.exists(latest):
      raise rundir.UnusableError(f"{latest} is missing although {state.epoch} epoch(s) are "
                                 f"recorded; {_start_over(workdir)}")
    logging.info("resuming %s after epoch %d", workdir, state.epoch)
    try:
      model = keras.models.load_model(latest)
    except Exception as e:  # Keras and h5py raise many types for a damaged file
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise rundir.UnusableError(f"{latest} is unusable ({reason}); "
                                 f"{_start_over(workdir)}") from e
    expected = (task.patch_size, task.patch_size, 3), task.num_classes
    if (tuple(model.input_shape[1:]), model.output_shape[-1]) != expected:
      raise rundir.UnusableError(
          f"{latest} takes {model.input_shape[1:]} and gives {model.output_shape[-1]} classes, "
          f"but this run's task needs {expected[0]} and {expected[1]}; {_start_over(workdir)}")
    return model
  model = models.build(config.net, task.patch_size, task.num_classes, config.weights)
  model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
  return model


def train_and_evaluate(config, workdir, log=print, break_lock=False):
  """Trains by `config.recipe` (resuming if `workdir` holds a run), then tests.

  The run holds its directory's lock (`tfjpeg.runlock`) while it writes: a
  multi-worker run's chief the run directory, every other worker its own
  folder. `break_lock` removes a lock held from another host.

  Returns:
    The results DataFrame, also written to `workdir/results.csv`.

  Raises:
    runlock.RunLockedError: another live process writes `workdir`.
  """
  # A multi-worker strategy configures collective ops: before any other op.
  strategy = make_strategy(config.strategy)
  workdir = worker_workdir(workdir)
  with runlock.hold(workdir, break_lock), preemption.stop_on_sigterm():
    return _train_and_evaluate(config, workdir, log, strategy)


def _train_and_evaluate(config, workdir, log, strategy):
  _prepare_workdir(config, workdir)
  keras.utils.set_random_seed(config.seed)
  tf.config.experimental.enable_op_determinism()
  if config.mixed_precision:
    keras.mixed_precision.set_global_policy("mixed_float16")
  task = evaluation.task_for(config, log)
  cached = (f"lattice images (QF {task.lattice_qf}) read from "
            f"{lattice.cache_dir(task.lattice_qf, config.chroma)}\n" if task.lattice_qf else "")
  # The files as stored (before any lattice QF): do they give the class away?
  found = audit.audit_task(task, seed=config.seed)
  profile = audit.compression_profile(found.files, task.class_names)
  matched = ""
  if config.match_compression:
    matched = (f"match_compression: lossless images saved once, then every training patch "
               f"saved, at QFs drawn from {audit.describe_qfs(profile.match_qfs)}\n")
    limit = audit.matching_limit(found)
    if limit:
      matched += limit + "\n"
      log(limit)
  rundir.write_atomically(os.path.join(workdir, "data_summary.txt"),
                          task.summary + "\n" + cached + found.short_form() + "\n" + matched)
  rundir.write_description(workdir, config, task)
  log(task.summary)
  if found.warning():
    log(found.warning())
  empty = [s for s, n in task.num_images.items() if n == 0]
  if empty:
    raise ValueError(f"the {config.task} task has no {' or '.join(empty)} images "
                     f"({task.num_images}): too few source images for the split; add "
                     "images or change --test_fraction/--validation_fraction")
  if config.recipe == "baseline":
    model = baseline.fit(config, task, workdir, log, profile)
  else:
    model = _fit_schedule(config, task, workdir, log, strategy, profile)
  preemption.stop_if_asked(workdir, "all")
  seen = input_pipeline.ImagesSeen()
  results, confusions = evaluation.evaluate(model, task, config, seen=seen, profile=profile)
  lost = rundir.report_lost_images(workdir, task, "test", seen, log)
  evaluation.write_results(workdir, results, confusions, task.class_names)
  _log_hparams(workdir, config, results)
  log(results.to_string(index=False))
  for period in config.offset_periods:
    log(offsets.write_analysis(workdir, model, task, config, period).to_string(index=False))
  rundir.mark_finished(workdir, conditions=len(results), test_images_lost=lost)
  return results


def _train_epoch_across_workers(model, strategy, dataset, steps):
  """One epoch of `steps` synchronous steps on every worker, with a step of our
  own: Keras 3's fit does not run a MultiWorkerMirroredStrategy across
  processes (keras-team/keras#20585). Each worker reads its share of the
  batches (tf.data's automatic sharding); gradients, loss and accuracy are
  summed over all replicas. Returns {loss, accuracy}."""
  batches = iter(strategy.experimental_distribute_dataset(dataset.repeat()))

  def replica_step(images, labels):
    with tf.GradientTape() as tape:
      probabilities = model(images, training=True)
      loss = tf.nn.compute_average_loss(
          keras.losses.sparse_categorical_crossentropy(labels, probabilities))
    variables = model.trainable_variables
    model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    right = tf.equal(tf.argmax(probabilities, -1, output_type=tf.int32),
                     tf.cast(labels, tf.int32))
    return loss, tf.reduce_sum(tf.cast(right, tf.float32)), tf.cast(tf.size(labels), tf.float32)

  @tf.function
  def step(iterator):
    out = strategy.run(replica_step, args=next(iterator))
    return [strategy.reduce("SUM", value, axis=None) for value in out]

  loss = right = count = 0.0
  for _ in range(steps):
    step_loss, step_right, step_count = (float(v) for v in step(batches))
    loss, right, count = loss + step_loss, right + step_right, count + step_count
  return dict(loss=loss / steps, accuracy=right / count)


def _evaluate_locally(model, dataset):
  """{loss, accuracy} of `model` on `dataset`, computed in this process alone
  (every worker of a cluster gets the same numbers)."""
  out = evaluation.predict(model, dataset)
  probabilities = np.clip(out["probabilities"], 1e-7, 1.0)
  if not len(probabilities):
    return {}
  labels = out["label"]
  return dict(loss=float(-np.mean(np.log(probabilities[np.arange(len(labels)), labels]))),
              accuracy=float(np.mean(probabilities.argmax(-1) == labels)))


def _validate(model, task, condition, pipeline, workdir, epoch, log):
  """({val_loss, val_accuracy}, images lost) of one pass over the validation images."""
  seen = input_pipeline.ImagesSeen()
  dataset = input_pipeline.eval_dataset(task, "validation", [condition], pipeline, seen)
  if cluster_workers() > 1:
    validated = _evaluate_locally(model, dataset)
  else:
    # The exact batch count, as for training (Keras warns at the end of a
    # dataset of unknown length).
    steps = max(1, math.ceil(task.num_images["validation"] * task.patches_per_image
                             / pipeline.batch_size))
    validated = model.evaluate(input_pipeline.to_inputs(dataset), steps=steps, verbose=0,
                               return_dict=True)
  lost = rundir.report_lost_images(workdir, task, "validation", seen, log)
  if "loss" not in validated:
    raise ValueError(f"{workdir}: no validation image could be decoded in epoch {epoch + 1} "
                     "(see data_summary.txt)")
  return {f"val_{k}": float(v) for k, v in validated.items()}, lost


def _fit_schedule(config, task, workdir, log, strategy, profile=None):
  """The project's loop; returns the model with the weights `config.select` chose."""
  job = "tfjpeg-" + hashlib.sha1(os.path.abspath(workdir).encode()).hexdigest()[:12]
  pipeline = dataclasses.replace(config.pipeline(task, profile), service_job=job)
  # Samples for TensorBoard and batch-norm statistics come from this host's own
  # pipeline: a second consumer of the run's service job would take its batches.
  local = dataclasses.replace(pipeline, data_service=None)
  state = _load_state(workdir, config)
  with strategy.scope():
    model = _build_model(config, task, state, workdir)
  validation_condition = input_pipeline.Condition(
      config.train_crop, grid=config.crop_grid if config.train_crop != "random" else 8)
  logdir = os.path.join(workdir, "logs")
  writer = tf.summary.create_file_writer(os.path.join(logdir, "train"))
  validation_writer = tf.summary.create_file_writer(os.path.join(logdir, "validation"))
  checkpoints = os.path.join(workdir, "checkpoints")
  while not state.stopped:
    epoch = state.epoch
    preemption.stop_if_asked(workdir, epoch)
    seen = input_pipeline.ImagesSeen()
    train = input_pipeline.train_dataset(task, pipeline, epoch, seen=seen)
    # A first batch costs a shuffle buffer of patches: take it once per run.
    sample = (next(iter(input_pipeline.train_dataset(
        task, local, epoch, seen=input_pipeline.ImagesSeen())))["image"][:6]
              if epoch == 0 else None)
    model.optimizer.learning_rate.assign(state.learning_rate)
    started = time.time()
    workers = cluster_workers()
    if workers > 1:
      metrics = _train_epoch_across_workers(
          model, strategy, input_pipeline.to_inputs(train),
          config.steps_per_epoch or max(1, steps_per_epoch(config, task) // workers))
    else:
      # The epoch's exact batch count: Keras warns "ran out of data" at the end
      # of a dataset of unknown length. A tf.data service's workers batch their
      # own shares, so there the count is left open.
      steps = config.steps_per_epoch or (None if config.data_service
                                         else steps_per_epoch(config, task))
      history = model.fit(
          input_pipeline.to_inputs(train),
          initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=steps,
          callbacks=[keras.callbacks.TensorBoard(logdir, write_graph=False),
                     keras.callbacks.TerminateOnNaN(), preemption.StopOnSignal(),
                     BatchProgress(steps_per_epoch(config, task), config.epochs)], verbose=0,
          shuffle=False)  # the pipeline shuffles, seeded
      metrics = {k: float(v[-1]) for k, v in history.history.items()}
      preemption.stop_if_asked(workdir, epoch)
    if config.precise_bn_batches:
      # The moving averages follow the last few batches; on high-pass residuals,
      # whose energy differs widely between flat and textured patches, they
      # swung validation accuracy by 0.2 between epochs. Every later use of the
      # weights (validation, checkpoints, testing, export) sees the re-estimate.
      # No more batches than the epoch trained on.
      batches = min(config.precise_bn_batches, config.steps_per_epoch or float("inf"))
      models.precise_batch_norm(model, (images for images, _ in input_pipeline.to_inputs(
          input_pipeline.train_dataset(task, local, epoch, seen=input_pipeline.ImagesSeen())
      ).take(int(batches))))
    # A file that fails to decode now (changed on disk since the probe) is
    # skipped, named in data_summary.txt and counted; the run goes on.
    lost = 0
    if config.steps_per_epoch is None and not config.data_service:  # a whole epoch was read
      lost = rundir.report_lost_images(workdir, task, "train", seen, log)
    validated, validation_lost = _validate(model, task, validation_condition, pipeline,
                                           workdir, epoch, log)
    metrics.update(validated, images_lost=lost + validation_lost)
    metrics.update(learning_rate=state.learning_rate, seconds=time.time() - started)
    check_finite(metrics, epoch, workdir)
    state.history.append(metrics)
    preemption.stop_if_asked(workdir, epoch)  # before this epoch's files: it is redone on resume
    if state.update(metrics["val_loss"], config) or config.select == "last":
      rundir.save_atomically(model, os.path.join(checkpoints, "best.weights.h5"),
                             weights_only=True)
    _log_epoch(writer, validation_writer, state, sample)
    # Checkpoint first, then the state that points at it: a kill in between
    # only repeats this epoch. Each is written whole or not at all.
    rundir.save_atomically(model, os.path.join(checkpoints, "latest.keras"))
    rundir.write_atomically(os.path.join(checkpoints, "state.json"),
                            json.dumps(dataclasses.asdict(state), indent=1))
    # Printed once the epoch is safe on disk.
    log(f"epoch {epoch + 1}/{config.epochs}: loss {metrics['loss']:.4f} "
        f"acc {metrics['accuracy']:.3f} val_loss {metrics['val_loss']:.4f} "
        f"val_acc {metrics['val_accuracy']:.3f} lr {metrics['learning_rate']:.0e} "
        f"({metrics['seconds']:.0f}s)")
  best = os.path.join(checkpoints, "best.weights.h5")
  try:
    model.load_weights(best)
  except (OSError, ValueError) as e:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise rundir.UnusableError(f"{best} is unusable ({reason}); {_start_over(workdir)}") from e
  return model
