"""The binaries: absl flags, a config, one library call each.

Each module here is a command, installed as `tfjpeg-<name>` and present in a
checkout as `bin/<name>`. Flags live here only; the library below takes
arguments.

Importing this package starts TensorFlow quietly. Its C++ lines (oneDNN,
CUDA probing, "All log messages before absl::InitializeLog", and later
runtime notes such as "NodeDef mentions attribute ...") reach stderr through
absl without reading TF_CPP_MIN_LOG_LEVEL. So stderr points at /dev/null while
TensorFlow loads and finds its devices, and afterwards C-level writes to
stderr pass through a filter that drops those lines (they start "I0000
00:00:", "W0000 00:00:" or "E0000 00:00:", which nothing else prints); every
other line, Python's tracebacks and logs included, goes through unchanged.
Nothing is held back when the user set TF_CPP_MIN_LOG_LEVEL, or asked for
detail with absl's --verbosity (-v) of 1 or more.
"""

import atexit
import importlib
import os
import re
import sys
import threading

from absl import app
from absl import flags


def _asked_for_detail(argv):
  for number, arg in enumerate(argv):
    match = re.fullmatch(r"--?(?:verbosity|v)(?:=(-?\d+))?", arg)
    if match:
      value = match.group(1) or (argv[number + 1] if number + 1 < len(argv) else "0")
      try:
        return int(value) >= 1
      except ValueError:
        return False
  return False


# TensorFlow's C++ log lines before absl is initialised: severity I, W or E,
# a zero date and time.
_TF_NOTE = re.compile(rb"^(?:[IWE]0000 00:00:|WARNING: All log messages before absl::)")


def _filter_stderr():
  """Routes file descriptor 2 through a thread that drops `_TF_NOTE` lines;
  restored at exit, once everything written has gone through."""
  original = os.dup(2)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)

  def pump():
    with os.fdopen(read_end, "rb") as lines:
      for line in lines:
        if not _TF_NOTE.match(line):
          os.write(original, line)

  thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
  thread.start()

  def restore():
    sys.stderr.flush()
    os.dup2(original, 2)  # closes the pipe's last write end: the pump ends
    thread.join(timeout=5)

  atexit.register(restore)
  _RESTORE.append(restore)


def start_tensorflow_quietly(argv=None):
  """Imports TensorFlow and Keras and probes the devices with stderr silenced,
  unless TF_CPP_MIN_LOG_LEVEL is set or `argv` asks for --verbosity >= 1.
  Returns whether it silenced anything."""
  argv = sys.argv if argv is None else argv
  if "TF_CPP_MIN_LOG_LEVEL" in os.environ or _asked_for_detail(argv):
    return False
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # what TensorFlow does read later: warnings up
  sys.stderr.flush()
  saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(null, 2)
  try:
    importlib.import_module("keras")
    try:
      importlib.import_module("tensorflow").config.list_physical_devices()  # CUDA probing
    except ImportError:
      pass  # Keras on another backend (bin/benchmark --sections=accelerator)
  finally:  # an import error still reaches the user, as a Python exception
    os.dup2(saved, 2)
    os.close(saved)
    os.close(null)
  _filter_stderr()
  return True


_RESTORE = []  # the stderr filter's undoing, once installed


def exit_now(message, status):
  """Prints `message` on stderr and ends the process at once with `status`,
  skipping the interpreter's teardown (h5py objects of a half-written file can
  crash it); what the stderr filter holds is let through first."""
  sys.stdout.flush()
  for restore in _RESTORE:
    restore()
  sys.stderr.write(message + "\n")
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access


def run(main, module_name):
  """absl's app.run for the command defined in module `module_name`: its
  docstring is the usage, its flags the ones --help lists, whether it runs as
  an installed entry point or as a file of bin/."""
  sys.modules["__main__"].__doc__ = sys.modules[module_name].__doc__
  for flag in flags.FLAGS.get_key_flags_for_module(module_name):
    # absl's --help lists the flags of the module named by sys.argv[0].
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(main)


start_tensorflow_quietly()
