"""Preemption: schedulers send SIGTERM shortly before they kill a job (30 s on
Slurm by default). Inside `stop_on_sigterm()` the signal only sets a flag: the
file being written is finished, training stops after its current batch, and
`stop_if_asked` raises `Preempted` at the next safe point, before anything of
the unfinished epoch is written. The run's last complete epoch stays on disk,
and the same command resumes from it; bin/train exits with EXIT_PREEMPTED.
"""

import contextlib
import signal
import threading

import keras

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: try again later (what a requeue wants)
_STOP = threading.Event()


class Preempted(RuntimeError):
  """The run stopped on SIGTERM; its last complete epoch is saved."""


@contextlib.contextmanager
def stop_on_sigterm():
  """SIGTERM asks the run to stop at its next safe point (main thread only)."""
  _STOP.clear()
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = signal.signal(signal.SIGTERM, lambda signum, frame: _STOP.set())
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)
    _STOP.clear()


def stop_if_asked(workdir, epochs_done):
  """Raises `Preempted` once SIGTERM has come."""
  if _STOP.is_set():
    raise Preempted(
      f"{workdir}: stopped by SIGTERM with {epochs_done} epoch(s) saved; the "
      "same command resumes from there"
    )


class StopOnSignal(keras.callbacks.Callback):
  """Ends `fit` after the batch during which SIGTERM came."""

  def on_train_batch_end(self, batch, logs=None):
    if _STOP.is_set():
      self.model.stop_training = True
