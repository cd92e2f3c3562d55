"""One writer per run directory: a lock a run holds for as long as it writes.

`hold(directory)` creates `directory/.lock` with O_CREAT | O_EXCL (atomic on
local disks and on NFS 3 and later, where `flock` is not dependable) and
writes the holder into it: host, process id and start time. A second process
that finds the file stops at once with `RunLockedError`, whose one-line
message names the holder and what to do. A lock left behind by a process that
is gone is no obstacle: on the same host the holder's process id is checked
and a dead holder's lock is taken over; a holder on another host cannot be
checked from here, so it is named with the lock's age, and `break_lock`
(bin/train --break_lock) removes it. The lock is removed when the holder
leaves the `with` block, whatever ends it.
"""

import contextlib
import dataclasses
import json
import os
import socket
import time
from collections.abc import Iterator

from tfjpeg.core.errors import MissingError
from tfjpeg.core.errors import UserError

LOCK_NAME = ".lock"


class RunLockedError(UserError, RuntimeError):
  """Another process holds the run directory; the message says who and what to do."""


@dataclasses.dataclass(frozen=True)
class Holder:
  host: str
  pid: int
  started: float  # seconds since the epoch

  def describe(self) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
    return f"process {self.pid} on {self.host}, since {since}"

  @property
  def age(self) -> float:
    return time.time() - self.started


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # alive, another user's
    return True
  return True


def holder(directory) -> Holder | None:
  """Who holds `directory` now, or None (no lock, or one left by a dead
  process on this host)."""
  path = os.path.join(directory, LOCK_NAME)
  for _ in range(20):  # a lock being written this instant: its text comes shortly
    try:
      with open(path) as f:
        found = Holder(**json.load(f))
      break
    except FileNotFoundError:
      return None
    except (ValueError, TypeError):
      time.sleep(0.05)
  else:
    # Unreadable for a second: not ours to judge; its age is the file's.
    found = Holder("an unknown host", -1, os.path.getmtime(path))
  if found.host == socket.gethostname() and not _alive(found.pid):
    return None
  return found


def _duration(seconds: float) -> str:
  seconds = int(seconds)
  if seconds >= 3600:
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
  return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def refusal(directory, found: Holder) -> str:
  """The one line a second writer gets."""
  if found.host == socket.gethostname():
    return (
      f"{directory} is being written by {found.describe()}: wait for it to end "
      "(or stop it), then run the same command again to resume"
    )
  return (
    f"{directory} is held by {found.describe()} ({_duration(found.age)} ago), which "
    "cannot be checked from here: if that process is gone, run again with --break_lock"
  )


@contextlib.contextmanager
def hold(directory, break_lock: bool = False, create: bool = True) -> Iterator[Holder]:
  """Holds `directory` (created if missing, with `create`) for the `with` block.

  Raises:
    RunLockedError: another live process holds it (see the module docstring).
    MissingError: `directory` does not exist and `create` is off.
  """
  if not create and not os.path.isdir(directory):
    raise MissingError(f"{directory} is not a run directory (no such folder)")
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, LOCK_NAME)
  me = Holder(socket.gethostname(), os.getpid(), time.time())
  for _ in range(3):
    try:
      descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      found = holder(directory)
      if found is not None and found.pid == me.pid and found.host == me.host:
        raise RunLockedError(f"{directory} is already held by this process") from None
      if found is not None and not break_lock:
        raise RunLockedError(refusal(directory, found)) from None
      # A dead holder's lock, or one the user breaks: move it aside atomically,
      # so that of two processes taking it over, one wins the O_EXCL above.
      with contextlib.suppress(FileNotFoundError):
        os.replace(path, f"{path}.stale.{me.pid}")
        os.remove(f"{path}.stale.{me.pid}")
      continue
    with os.fdopen(descriptor, "w") as f:
      json.dump(dataclasses.asdict(me), f)
    break
  else:
    raise RunLockedError(
      f"{directory}: could not take its lock (other processes keep taking it); try again"
    )
  try:
    yield me
  finally:
    with contextlib.suppress(FileNotFoundError):
      if holder(directory) == me:
        os.remove(path)
