"""The reference baseline: a plain Keras loop, run beside the project's recipe.

What a researcher would write outside the project: one fixed set of patches
drawn once (from the training and the validation images, through the same
pipeline, so the same crops and JPEG conditions), `model.fit` on arrays with a
full shuffle every epoch, Adam at a constant rate, the last epoch's weights.
`Config(recipe="baseline")` selects it; the run directory, the test split and
the evaluation are the project's, so both recipes are scored on the same
images in the same way.
"""

import os

import keras
import numpy as np

from tfjpeg.models import nets
from tfjpeg.pipeline import input_pipeline
from tfjpeg.train import preemption
from tfjpeg.train import rundir

SPLITS = ("train", "validation")


def fixed_patches(task, pipeline, splits=SPLITS, seen=None):
  """(patches, labels) of one epoch of the training pipeline, as arrays; with
  `seen`, images that fail to decode are skipped (see input_pipeline.ImagesSeen)."""
  patches, labels = [], []
  for batch in input_pipeline.train_dataset(task, pipeline, epoch=0, splits=splits, seen=seen):
    patches.append(batch["image"].numpy())
    labels.append(batch["label"].numpy())
  return np.concatenate(patches), np.concatenate(labels)


class _EpochLog(keras.callbacks.Callback):
  def __init__(self, epochs, log):
    super().__init__()
    self.epochs, self.log = epochs, log

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    self.log(f"epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f} "
             f"acc {logs.get('accuracy', float('nan')):.3f} (baseline)")


def fit(config, task, workdir, log=print, profile=None):
  """Trains `config.net` the plain way; writes checkpoints/best.weights.h5 (the
  last epoch's) and returns the model. An interrupted run resumes at its last
  finished epoch (Keras's BackupAndRestore). `profile`: the task's compression
  profile (tfjpeg.data.audit), for `match_compression`."""
  seen = input_pipeline.ImagesSeen()
  patches, labels = fixed_patches(task, config.pipeline(task, profile), seen=seen)
  for split in SPLITS:
    rundir.report_lost_images(workdir, task, split, seen, log)
  log(f"baseline: {len(labels)} fixed patches from the {' and '.join(SPLITS)} images")
  model = nets.build(config.net, task.patch_size, task.num_classes, config.weights)
  model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
  checkpoints = os.path.join(workdir, "checkpoints")
  model.fit(patches, labels, batch_size=config.batch_size, epochs=config.epochs, shuffle=True,
            verbose=0, callbacks=[
                keras.callbacks.BackupAndRestore(os.path.join(checkpoints, "backup")),
                keras.callbacks.TensorBoard(os.path.join(workdir, "logs"), write_graph=False),
                _EpochLog(config.epochs, log), preemption.StopOnSignal()])
  # Keras's BackupAndRestore keeps the last complete epoch: nothing else to save.
  preemption.stop_if_asked(workdir, "the completed")
  rundir.save_atomically(model, os.path.join(checkpoints, "best.weights.h5"), weights_only=True)
  return model
