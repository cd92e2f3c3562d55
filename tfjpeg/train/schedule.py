"""The project's training loop: the paper's schedule, resumable.

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
import math
import os
import sys
import time

import keras
import tensorflow as tf

from tfjpeg.core import progress
from tfjpeg.models import nets
from tfjpeg.pipeline import input_pipeline
from tfjpeg.train import distribute
from tfjpeg.train import preemption
from tfjpeg.train import resume
from tfjpeg.train import rundir


def check_finite(metrics, epoch, workdir):
  """Stops a run at its first non-finite training or validation loss: a NaN
  never counts as an improvement, so the run would otherwise go on to its last
  epoch with nothing to test."""
  bad = {k: v for k, v in metrics.items() if k in ("loss", "val_loss") and not math.isfinite(v)}
  if bad:
    raise FloatingPointError(
      f"{workdir}: non-finite {', '.join(f'{k} {v}' for k, v in bad.items())} in epoch "
      f"{epoch + 1}; the run stops here (lower the learning rate, or check the inputs). "
      "Earlier epochs' checkpoints are kept."
    )


def _log_epoch(writer, validation_writer, state, sample=None):
  metrics = state.history[-1]
  with validation_writer.as_default(step=state.epoch - 1):  # beside Keras's train curves
    tf.summary.scalar("epoch_loss", metrics["val_loss"])
    tf.summary.scalar("epoch_accuracy", metrics["val_accuracy"])
  with writer.as_default(step=state.epoch - 1):
    tf.summary.scalar("learning_rate", metrics["learning_rate"])
    if sample is not None:
      tf.summary.image(
        "augmented_training_patches", tf.cast(sample, tf.float32) / 255.0, max_outputs=6
      )


class BatchProgress(keras.callbacks.Callback):
  """A bar of the epoch's batches with the time left, on a terminal; elsewhere
  the epoch's own line, printed once it is saved, is the only one."""

  def __init__(self, total, epochs, stream=None):
    super().__init__()
    self.total, self.epochs, self.stream = total, epochs, stream or sys.stderr
    self.bar = None

  def on_epoch_begin(self, epoch, logs=None):
    if self.stream.isatty():
      self.bar = progress.Progress(
        self.total, f"epoch {epoch + 1}/{self.epochs}", "batches", self.stream
      )

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
  return config.schedule.steps_per_epoch or max(1, math.ceil(patches / config.schedule.batch_size))


def _validate(model, task, condition, pipeline, workdir, epoch, log):
  """({val_loss, val_accuracy}, images lost) of one pass over the validation images."""
  seen = input_pipeline.ImagesSeen()
  dataset = input_pipeline.eval_dataset(task, "validation", [condition], pipeline, seen)
  if distribute.cluster_workers() > 1:
    validated = distribute.evaluate_locally(model, dataset)
  else:
    # The exact batch count, as for training (Keras warns at the end of a
    # dataset of unknown length).
    steps = max(
      1,
      math.ceil(
        task.num_images["validation"] * task.patches_per_image / pipeline.schedule.batch_size
      ),
    )
    validated = model.evaluate(
      input_pipeline.to_inputs(dataset), steps=steps, verbose=0, return_dict=True
    )
  lost = rundir.report_lost_images(workdir, task, "validation", seen, log)
  if "loss" not in validated:
    raise ValueError(
      f"{workdir}: no validation image could be decoded in epoch {epoch + 1} (see data_summary.txt)"
    )
  return {f"val_{k}": float(v) for k, v in validated.items()}, lost


def fit(config, task, workdir, log, strategy, profile=None):
  """The project's loop; returns the model with the weights `config.schedule.select` chose."""
  job = "tfjpeg-" + hashlib.sha1(os.path.abspath(workdir).encode()).hexdigest()[:12]
  pipeline = dataclasses.replace(
    input_pipeline.PipelineConfig.for_run(config, task, profile), service_job=job
  )
  # Samples for TensorBoard and batch-norm statistics come from this host's own
  # pipeline: a second consumer of the run's service job would take its batches.
  local = dataclasses.replace(pipeline, data_service=None)
  state = resume.load_state(workdir, config)
  with strategy.scope():
    model = resume.resume_model(config, task, state, workdir)
  validation_condition = input_pipeline.Condition(
    config.jpeg.train_crop, grid=config.jpeg.crop_grid if config.jpeg.train_crop != "random" else 8
  )
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
    sample = (
      next(
        iter(input_pipeline.train_dataset(task, local, epoch, seen=input_pipeline.ImagesSeen()))
      )["image"][:6]
      if epoch == 0
      else None
    )
    model.optimizer.learning_rate.assign(state.learning_rate)
    started = time.time()
    workers = distribute.cluster_workers()
    if workers > 1:
      metrics = distribute.train_epoch_across_workers(
        model,
        strategy,
        input_pipeline.to_inputs(train),
        config.schedule.steps_per_epoch or max(1, steps_per_epoch(config, task) // workers),
      )
    else:
      # The epoch's exact batch count: Keras warns "ran out of data" at the end
      # of a dataset of unknown length. A tf.data service's workers batch their
      # own shares, so there the count is left open.
      steps = config.schedule.steps_per_epoch or (
        None if config.runtime.data_service else steps_per_epoch(config, task)
      )
      history = model.fit(
        input_pipeline.to_inputs(train),
        initial_epoch=epoch,
        epochs=epoch + 1,
        steps_per_epoch=steps,
        callbacks=[
          keras.callbacks.TensorBoard(logdir, write_graph=False),
          keras.callbacks.TerminateOnNaN(),
          preemption.StopOnSignal(),
          BatchProgress(steps_per_epoch(config, task), config.schedule.epochs),
        ],
        verbose=0,
        shuffle=False,
      )  # the pipeline shuffles, seeded
      metrics = {k: float(v[-1]) for k, v in history.history.items()}
      preemption.stop_if_asked(workdir, epoch)
    if config.schedule.precise_bn_batches:
      # The moving averages follow the last few batches; on high-pass residuals,
      # whose energy differs widely between flat and textured patches, they
      # swung validation accuracy by 0.2 between epochs. Every later use of the
      # weights (validation, checkpoints, testing, export) sees the re-estimate.
      # No more batches than the epoch trained on.
      batches = min(
        config.schedule.precise_bn_batches, config.schedule.steps_per_epoch or float("inf")
      )
      nets.precise_batch_norm(
        model,
        (
          images
          for images, _ in input_pipeline.to_inputs(
            input_pipeline.train_dataset(task, local, epoch, seen=input_pipeline.ImagesSeen())
          ).take(int(batches))
        ),
      )
    # A file that fails to decode now (changed on disk since the probe) is
    # skipped, named in data_summary.txt and counted; the run goes on.
    lost = 0
    if (
      config.schedule.steps_per_epoch is None and not config.runtime.data_service
    ):  # a whole epoch was read
      lost = rundir.report_lost_images(workdir, task, "train", seen, log)
    validated, validation_lost = _validate(
      model, task, validation_condition, pipeline, workdir, epoch, log
    )
    metrics.update(validated, images_lost=lost + validation_lost)
    metrics.update(learning_rate=state.learning_rate, seconds=time.time() - started)
    check_finite(metrics, epoch, workdir)
    state.history.append(metrics)
    preemption.stop_if_asked(workdir, epoch)  # before this epoch's files: it is redone on resume
    if state.update(metrics["val_loss"], config) or config.schedule.select == "last":
      rundir.save_atomically(model, os.path.join(checkpoints, "best.weights.h5"), weights_only=True)
    _log_epoch(writer, validation_writer, state, sample)
    resume.save_epoch(model, state, workdir)
    # Printed once the epoch is safe on disk.
    log(
      f"epoch {epoch + 1}/{config.schedule.epochs}: loss {metrics['loss']:.4f} "
      f"acc {metrics['accuracy']:.3f} val_loss {metrics['val_loss']:.4f} "
      f"val_acc {metrics['val_accuracy']:.3f} lr {metrics['learning_rate']:.0e} "
      f"({metrics['seconds']:.0f}s)"
    )
  return resume.load_selected(model, workdir)
