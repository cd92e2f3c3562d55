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

from tfjpeg.pipeline import input_pipeline
from tfjpeg.train import preemption
from tfjpeg.train import resume
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


def fit(config, task, workdir, log=print, profile=None):
  """Trains `config.net` the plain way; writes checkpoints/best.weights.h5 (the
  last epoch's) and returns the model. An interrupted run resumes after its
  last finished epoch (tfjpeg.train.resume, as the schedule does); each epoch's
  shuffle is drawn from (seed, epoch), so a resumed run ends as an
  uninterrupted one. `profile`: the task's compression profile
  (tfjpeg.data.audit), for `match_compression`."""
  seen = input_pipeline.ImagesSeen()
  patches, labels = fixed_patches(
    task, input_pipeline.PipelineConfig.for_run(config, task, profile), seen=seen
  )
  for split in SPLITS:
    rundir.report_lost_images(workdir, task, split, seen, log)
  log(f"baseline: {len(labels)} fixed patches from the {' and '.join(SPLITS)} images")
  state = resume.load_state(workdir, config)
  model = resume.resume_model(config, task, state, workdir)
  epochs = config.schedule.epochs
  while state.epoch < epochs:
    epoch = state.epoch
    preemption.stop_if_asked(workdir, epoch)
    # What fit's shuffle=True does, from a seed that survives a restart.
    order = np.random.default_rng([config.schedule.seed, epoch]).permutation(len(labels))
    history = model.fit(
      patches[order],
      labels[order],
      batch_size=config.schedule.batch_size,
      initial_epoch=epoch,
      epochs=epoch + 1,
      shuffle=False,
      verbose=0,
      callbacks=[
        keras.callbacks.TensorBoard(os.path.join(workdir, "logs"), write_graph=False),
        preemption.StopOnSignal(),
      ],
    )
    preemption.stop_if_asked(workdir, epoch)  # before this epoch's files: redone on resume
    state.history.append({k: float(v[-1]) for k, v in history.history.items()})
    state.epoch += 1
    resume.save_epoch(model, state, workdir)
    metrics = state.history[-1]
    log(
      f"epoch {epoch + 1}/{epochs}: loss {metrics.get('loss', float('nan')):.4f} "
      f"acc {metrics.get('accuracy', float('nan')):.3f} (baseline)"
    )
  rundir.save_atomically(model, os.path.join(workdir, rundir.SELECTED_WEIGHTS), weights_only=True)
  return model
