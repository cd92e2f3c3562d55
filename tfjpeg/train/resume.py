"""One way to resume, for every recipe.

After each finished epoch, `save_epoch` writes checkpoints/latest.keras (the
model and its optimizer) and then checkpoints/state.json (the epochs done,
the schedule's state and the history), each whole or not at all
(tfjpeg.train.rundir). A run started again with the same command loads both
(`load_state`, `resume_model`), checks that they fit the run, and continues
after its last finished epoch; with a fixed seed it ends with the same results
as an uninterrupted run. The project's schedule (tfjpeg.train.schedule), the
reference baseline (tfjpeg.train.baseline) and the multi-worker loop all
resume this way: Keras's BackupAndRestore writes neither whole files nor
anything a custom step or the schedule's own state could use.
"""

import dataclasses
import json
import logging
import os

import keras

from tfjpeg.models import nets
from tfjpeg.train import rundir

LATEST = "latest.keras"
STATE = "state.json"


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
      if config.schedule.lr_patience and self.epochs_since_lr_change >= config.schedule.lr_patience:
        self.learning_rate *= config.schedule.lr_factor
        self.epochs_since_lr_change = 0
    if (
      config.schedule.stop_patience and self.epochs_since_best >= config.schedule.stop_patience
    ) or self.epoch >= config.schedule.epochs:
      self.stopped = True
    return improved


def start_over(workdir):
  return f"move {os.path.join(workdir, 'checkpoints')} away to train this run from its first epoch"


def load_state(workdir, config):
  path = os.path.join(workdir, "checkpoints", STATE)
  if not os.path.exists(path):
    return ScheduleState(learning_rate=config.schedule.learning_rate)
  try:
    with open(path) as f:
      state = ScheduleState(**json.load(f))
  except (ValueError, TypeError) as e:
    raise rundir.UnusableError(f"{path} is unusable ({e}); {start_over(workdir)}") from e
  if state.epoch > config.schedule.epochs or len(state.history) != state.epoch:
    raise rundir.UnusableError(
      f"{path} does not fit this run ({state.epoch} epochs done of {config.schedule.epochs}, "
      f"{len(state.history)} in its history); {start_over(workdir)}"
    )
  return state


def resume_model(config, task, state, workdir):
  latest = os.path.join(workdir, "checkpoints", LATEST)
  if state.epoch > 0:
    if not os.path.exists(latest):
      raise rundir.UnusableError(
        f"{latest} is missing although {state.epoch} epoch(s) are recorded; {start_over(workdir)}"
      )
    logging.info("resuming %s after epoch %d", workdir, state.epoch)
    try:
      model = keras.models.load_model(latest)
    except Exception as e:  # Keras and h5py raise many types for a damaged file
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise rundir.UnusableError(f"{latest} is unusable ({reason}); {start_over(workdir)}") from e
    expected = (task.patch_size, task.patch_size, 3), task.num_classes
    if (tuple(model.input_shape[1:]), model.output_shape[-1]) != expected:
      raise rundir.UnusableError(
        f"{latest} takes {model.input_shape[1:]} and gives {model.output_shape[-1]} classes, "
        f"but this run's task needs {expected[0]} and {expected[1]}; {start_over(workdir)}"
      )
    return model
  return build_model(config, task)


def build_model(config, task):
  """A new model of `config.net` for `task`, compiled with Adam at the
  recipe's starting rate (the paper's cross-entropy and accuracy)."""
  model = nets.build(
    config.net,
    task.patch_size,
    task.num_classes,
    config.weights,
    config.antialias,
    config.antialias_filter,
  )
  model.compile(
    optimizer=keras.optimizers.Adam(config.schedule.learning_rate),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
  )
  return model


def save_epoch(model, state, workdir):
  """Writes a finished epoch: the checkpoint first, then the state that points
  at it, each whole or not at all; a kill in between only repeats the epoch."""
  checkpoints = os.path.join(workdir, "checkpoints")
  rundir.save_atomically(model, os.path.join(checkpoints, LATEST))
  rundir.write_atomically(
    os.path.join(checkpoints, STATE), json.dumps(dataclasses.asdict(state), indent=1)
  )


def load_selected(model, workdir):
  """Loads the weights the run selected (best.weights.h5) into `model`."""
  best = os.path.join(workdir, rundir.SELECTED_WEIGHTS)
  try:
    model.load_weights(best)
  except (OSError, ValueError) as e:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise rundir.UnusableError(f"{best} is unusable ({reason}); {start_over(workdir)}") from e
  return model
