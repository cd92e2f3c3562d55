"""The binaries: absl flags, a config, one library call each.

May import: every layer (the top one). Flags live here only.

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

from tfjpeg import config as config_lib
from tfjpeg.core.errors import UserError


def pool_cpu_memory():
  """Selects TensorFlow's pooling (BFC) CPU allocator, unless the environment
  already chose (TF_CPU_ALLOCATOR_USE_BFC), and lifts its 64 GB default cap to
  the machine's memory. The default allocator hands every large tensor (a
  decoded photo, a patch of 512) back to the system, which faults it in
  afresh: a fifth of the input pipeline's time on camera originals. The pool
  keeps what it took at its peak. TensorFlow reads both when it first
  allocates, so this acts only before then; every binary calls it first."""
  os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
  total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  os.environ.setdefault("TF_CPU_BFC_MEM_LIMIT_IN_MB", str(total // 2**20))


pool_cpu_memory()  # on import, before any binary imports TensorFlow


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
  if _STARTED:
    return False
  _STARTED.append(True)
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
_STARTED = []  # whether TensorFlow was started (once a process)


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


class _SettingParser(flags.ArgumentParser):
  """Reads a config setting's flag text with tfjpeg.config.parse: a wrong value
  is refused while flags are parsed, before TensorFlow starts."""

  def __init__(self, field):
    self.field = field

  def parse(self, argument):
    if not isinstance(argument, str):  # a preset's value, typed already
      return argument
    try:
      return config_lib.parse(self.field.flag, argument)
    except config_lib.ConfigError as e:
      raise ValueError(str(e).removeprefix(f"--{self.field.flag}: ")) from None

  def flag_type(self):
    return self.field.kind


class _SettingSerializer(flags.ArgumentSerializer):
  def serialize(self, value):
    return config_lib.as_text(value)


class _SettingFlag(flags.Flag):
  """A setting's flag; --help shows its default as the flag writes it ("none"
  included, which absl leaves out for a parsed None)."""

  def _get_parsed_value_as_string(self, value):
    return repr(config_lib.as_text(value))


def define_config_flags(preset, module_name, flag_values=flags.FLAGS):
  """One flag per setting of tfjpeg.config (its flag name, help and allowed
  values), defaulting to `preset`'s values, listed by --help as flags of the
  command `module_name`; `config_from_flags` reads them back."""
  values = preset.flat()
  for field in config_lib.FIELDS:
    if field.kind == "bool":
      flags.DEFINE_bool(
        field.flag, values[field.flag], field.help, flag_values=flag_values, module_name=module_name
      )
      continue
    choices = f" One of: {', '.join(map(str, field.choices))}." if field.choices else ""
    flags.DEFINE_flag(
      _SettingFlag(
        _SettingParser(field),
        _SettingSerializer(),
        field.flag,
        config_lib.as_text(values[field.flag]),
        field.help + choices,
      ),
      flag_values=flag_values,
      module_name=module_name,
    )


def config_from_flags(flag_values=flags.FLAGS, preset=None):
  """The --config preset (or `preset`) with the settings given on the command
  line applied; settings not given keep the preset's values."""
  preset = preset or config_lib.load_preset(flag_values.config)
  return config_lib.replace(
    preset,
    **{
      field.flag: flag_values[field.flag].value
      for field in config_lib.FIELDS
      if flag_values[field.flag].present
    },
  )


def _preset_in(argv):
  """The --config an argument list names, if any (read before absl parses)."""
  for number, arg in enumerate(argv[1:], 1):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and number + 1 < len(argv):
      return argv[number + 1]
  return None


def show_preset_defaults(argv, flag_values=flags.FLAGS):
  """Makes the setting flags default to the preset `argv` names with --config,
  so that `--config=X --help` lists X's values (without --config: the
  default preset's, set when the flags were defined)."""
  name = _preset_in(argv)
  if name:
    try:
      values = config_lib.load_preset(name).flat()
    except UserError as e:
      refuse(str(e))
    for field in config_lib.FIELDS:
      value = values[field.flag]
      flag_values.set_default(
        field.flag, value if field.kind == "bool" else config_lib.as_text(value)
      )


def must_exist(*names, flag_values=flags.FLAGS):
  """Flags naming a file or folder that must be there: a missing one is
  refused while flags are parsed, before TensorFlow starts."""

  def exists(value):
    values = value if isinstance(value, list) else [value]
    return all(v is None or os.path.exists(v) for v in values)

  for name in names:
    flags.register_validator(name, exists, "no such file or folder", flag_values=flag_values)


def define_model_flags():
  """The flags that say how a model takes images and what it outputs
  (`tfjpeg.serving.classifier.Preprocessing`), for commands that load one;
  `preprocessing()` reads them."""
  flags.DEFINE_enum(
    "input",
    None,
    ["patches", "resize", "centre_crop"],
    "How the model takes an image: patches cut by tfjpeg (default), or the whole "
    "image resized or centre-cropped to its input size, as its authors test it.",
  )
  flags.DEFINE_enum(
    "layout", None, ["nhwc", "nchw"], "Input layout (default: the model's; ONNX: read from it)."
  )
  flags.DEFINE_enum(
    "scale", None, ["0..255", "0..1"], "Input pixel scale (default: 0..255; ONNX: 0..1)."
  )
  flags.DEFINE_list("mean", None, "Per-channel mean subtracted, in the scale's units, or imagenet.")
  flags.DEFINE_list("std", None, "Per-channel std divided by, in the scale's units, or imagenet.")
  flags.DEFINE_enum(
    "resize_kernel",
    "bilinear",
    ["bilinear", "bicubic", "lanczos", "box", "hamming"],
    "Kernel of --input=resize (Pillow's, as torchvision's Resize on PIL images).",
  )
  flags.DEFINE_enum(
    "outputs",
    None,
    ["probabilities", "logits"],
    "What the model outputs: softmaxed below; one output is the second class's "
    "score (a logit's sigmoid). Default: probabilities; ONNX: logits.",
  )


def preprocessing(flag_values=flags.FLAGS):
  """The Preprocessing `define_model_flags`' flags ask for."""
  from tfjpeg.serving import classifier  # pylint: disable=g-import-not-at-top

  f = flag_values
  return classifier.Preprocessing(
    input=f.input,
    layout=f.layout,
    scale=f.scale,
    mean=tuple(f.mean or ()) if f.mean != ["imagenet"] else "imagenet",
    std=tuple(f.std or ()) if f.std != ["imagenet"] else "imagenet",
    kernel=f.resize_kernel,
    outputs=f.outputs,
  )


def define_runner_flags(what):
  """--runner (this machine's cores, or Apache Beam) and --beam_options, for
  commands that process many files (`tfjpeg.core.beam`); `--runner=beam`
  without Beam installed is refused while flags are parsed."""
  from tfjpeg.core import beam  # pylint: disable=g-import-not-at-top

  flags.DEFINE_enum(
    "runner",
    "local",
    list(beam.RUNNERS),
    f"Where {what} runs: local (this machine's cores) or beam (Apache Beam: "
    f"{beam.INSTALL}); the same files either way.",
  )
  flags.DEFINE_string(
    "beam_options",
    None,
    "Beam's own flags, as one string (default: its local runner, one process per core): "
    "'--runner=FlinkRunner --flink_master=HOST:8081', '--runner=DataflowRunner --project=P "
    "--region=R --temp_location=gs://B/tmp', ...",
  )
  flags.register_validator(
    "runner",
    lambda runner: runner != "beam" or beam.available(),
    f"needs Apache Beam, which is not installed: {beam.INSTALL}",
  )


def condition_grids(test_qfs, resize_factors, resize_qfs, chains):
  """The report's grids of conditions from their flags' values (None: the
  report's defaults): qualities, resize_factors, resize_qualities, test_chains."""
  from tfjpeg.analysis import report  # pylint: disable=g-import-not-at-top

  return dict(
    qualities=config_lib.parse("test_qfs", test_qfs) if test_qfs else report.QUALITIES,
    resize_factors=(
      tuple(config_lib.parse_factor("resize_factors", v) for v in resize_factors)
      if resize_factors
      else report.RESIZE_FACTORS
    ),
    resize_qualities=(
      config_lib.parse("test_qfs", resize_qfs) if resize_qfs else report.RESIZE_QUALITIES
    ),
    test_chains=config_lib.parse("test_chains", chains) if chains else report.PROTOCOLS,
  )


def _command_name():
  return os.path.basename(sys.argv[0]).removeprefix("tfjpeg-").removesuffix(".py")


def refuse(message, status=1):
  """Ends the command with `message` on one line, prefixed by its name."""
  exit_now(f"{_command_name()}: {message}", status)


def _parse_flags(argv):
  """absl's flag parsing, with a wrong flag refused in one line (absl adds a
  second line pointing at --helpfull)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    refuse(str(e))
  return None


def run(main, module_name, user_errors=()):
  """absl's app.run for the command defined in module `module_name`: its
  docstring is the usage, its flags the ones --help lists, whether it runs as
  an installed entry point or as a file of bin/.

  Flags are parsed before TensorFlow starts (quietly; see the module
  docstring), so a wrong value costs no start-up. A `UserError` (a wrong
  setting, a missing file or folder, a busy run), or one of `user_errors`, ends
  the command in one line with status 1; with --verbosity=1 or more it keeps
  its traceback. Anything else is a bug and keeps its traceback."""
  sys.modules["__main__"].__doc__ = sys.modules[module_name].__doc__
  for flag in flags.FLAGS.get_key_flags_for_module(module_name):
    # absl's --help lists the flags of the module named by sys.argv[0].
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

  def started(argv):
    start_tensorflow_quietly()
    try:
      return main(argv)
    except (UserError,) + tuple(user_errors) as e:
      if _asked_for_detail(sys.argv):
        raise
      refuse(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    return None

  try:
    app.run(started, flags_parser=_parse_flags)
  except UserError as e:  # raised while flags were being set up (a preset that is missing)
    refuse(str(e))
