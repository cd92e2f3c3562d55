"""Progress of long work with an estimate of the time left.

On a terminal, one line rewritten in place (a bar, done/total, rate, time
left); elsewhere (logs, CI, pipes), a plain line at most every `every`
seconds and one at the end, so logs stay short.
"""

import sys
import time


def _duration(seconds):
  seconds = int(round(seconds))
  if seconds >= 3600:
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
  if seconds >= 60:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds}s"


class Progress:
  """`update()` after each unit of `total`; `close()` (or leaving a `with`) at the end."""

  def __init__(self, total, what, unit="", stream=None, every=30.0, clock=time.monotonic):
    self.total, self.what, self.unit = total, what, unit
    self.stream = stream or sys.stderr
    self.every, self.clock = every, clock
    self.done = 0
    self.started = self.last = clock()
    self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
    self.closed = False

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def line(self):
    """done/total, rate and time left (or taken, once done)."""
    elapsed = max(self.clock() - self.started, 1e-9)
    rate = self.done / elapsed
    unit = f" {self.unit}" if self.unit else ""
    text = f"{self.what}: {self.done}/{self.total}{unit}"
    if self.interactive and self.total:
      filled = int(24 * min(self.done / self.total, 1))
      text = f"{self.what}: [{'#' * filled}{'.' * (24 - filled)}] {self.done}/{self.total}{unit}"
    text += f" ({rate:.1f}/s" if rate >= 1 else f" ({elapsed / max(self.done, 1):.1f}s each"
    if self.done >= self.total:
      return text + f", took {_duration(elapsed)})"
    left = (self.total - self.done) / rate if self.done else float("nan")
    return text + (f", {_duration(left)} left)" if self.done else ", estimating)")

  def update(self, count=1):
    self.done += count
    now = self.clock()
    if self.interactive:
      self.stream.write("\r" + self.line() + "\x1b[K")
      self.stream.flush()
    elif now - self.last >= self.every and self.done < self.total:
      self.stream.write(self.line() + "\n")
      self.stream.flush()
      self.last = now

  def close(self):
    if self.closed:
      return
    self.closed = True
    self.stream.write(("\r" if self.interactive else "") + self.line() + "\n")
    self.stream.flush()
