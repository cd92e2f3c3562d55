"""The binaries and the shape of the package: entry points, quiet start-up,
flags named after config fields, an import graph without circles, progress."""

import ast
import configparser
import io
import os
import pathlib
import subprocess
import sys

import pytest

from tfjpeg import config as config_lib
from tfjpeg.core import progress

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = REPO / "tfjpeg"
COMMANDS = sorted(p.stem for p in (PACKAGE / "cli").glob("*.py") if p.stem != "__init__")


def _project_imports(path):
  """Modules of tfjpeg that `path` imports, anywhere in the file."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfjpeg"):
      # `from tfjpeg.bench import chains` imports the module tfjpeg.bench.chains.
      for alias in node.names:
        named = f"{node.module}.{alias.name}"
        is_module = (REPO / named.replace(".", "/")).with_suffix(".py").exists() or (
          REPO / named.replace(".", "/") / "__init__.py"
        ).exists()
        found.add(named if is_module else node.module)
    elif isinstance(node, ast.Import):
      found |= {a.name for a in node.names if a.name.startswith("tfjpeg")}
  return found


def _graph():
  modules = {}
  for path in PACKAGE.rglob("*.py"):
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    modules[name.removesuffix(".__init__")] = _project_imports(path) - {"tfjpeg"}
  return modules


def _reachable(graph, start):
  seen, stack = set(), [start]
  while stack:
    for other in graph.get(stack.pop(), ()):
      if other not in seen:
        seen.add(other)
        stack.append(other)
  return seen


# The layers, bottom first: a module may import its own layer's modules and
# those of layers before it, never one after it (tfjpeg/<layer>/__init__.py
# says what each holds). `config` is a module of its own layer.
LAYERS = (
  "core",
  "codec",
  "layers",
  "config",
  "data",
  "pipeline",
  "models",
  "train",
  "serving",
  "analysis",
  "experiments",
  "bench",
  "cli",
)


def _layer(module):
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else None


def test_every_module_is_in_a_layer_and_imports_only_layers_below():
  graph = _graph()
  package = {m for m in graph if m != "tfjpeg"}
  assert all(_layer(m) in LAYERS for m in package), sorted(
    m for m in package if _layer(m) not in LAYERS
  )
  upward = sorted(
    (m, other)
    for m in package
    for other in graph[m]
    if LAYERS.index(_layer(other)) > LAYERS.index(_layer(m))
  )
  assert not upward, f"modules importing a layer above their own: {upward}"
  for layer in LAYERS:
    init = PACKAGE / layer / "__init__.py"
    if init.exists():
      doc = ast.get_docstring(ast.parse(init.read_text()))
      assert doc and "May import" in doc, f"{init} does not say what it holds and may import"


def test_import_graph_has_no_circles_and_plotting_is_a_leaf():
  graph = _graph()
  circles = sorted(m for m in graph if m in _reachable(graph, m))
  assert not circles, f"modules importing themselves through others: {circles}"
  assert graph["tfjpeg.analysis.plotting"] == set() and graph["tfjpeg.core.metrics"] == set()
  assert "tfjpeg.pipeline.input_pipeline" not in _reachable(graph, "tfjpeg.serving.predict")
  assert "tfjpeg.pipeline.input_pipeline" not in _reachable(graph, "tfjpeg.serving.classifier")


def test_packages_listed_for_installation_are_the_ones_on_disk():
  parser = configparser.ConfigParser()
  parser.read(REPO / "setup.cfg")
  listed = set(parser["options"]["packages"].split())
  on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in PACKAGE.rglob("__init__.py")}
  assert listed == on_disk | {"tfjpeg.presets"}
  assert "tfjpeg.presets = configs" in parser["options"]["package_dir"]


def test_flags_live_in_the_binaries_only():
  for path in PACKAGE.rglob("*.py"):
    if "cli" in path.relative_to(PACKAGE).parts:
      continue
    text = path.read_text()
    assert "absl import flags" not in text and "FLAGS" not in text, path


def test_every_binary_is_an_entry_point_and_a_thin_file_of_bin():
  parser = configparser.ConfigParser()
  parser.read(REPO / "setup.cfg")
  scripts = dict(
    line.split(" = ")
    for line in parser["options.entry_points"]["console_scripts"].strip().splitlines()
  )
  assert scripts == {f"tfjpeg-{c}": f"tfjpeg.cli.{c}:run" for c in COMMANDS}
  assert sorted(p.name for p in (REPO / "bin").iterdir()) == COMMANDS
  for command in COMMANDS:
    text = (REPO / "bin" / command).read_text()
    assert "sys.path" not in text and f"from tfjpeg.cli import {command}" in text
    assert os.access(REPO / "bin" / command, os.X_OK)


def _quiet_env():
  return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def test_binaries_start_without_tensorflow_noise_unless_asked(tmp_path):
  # A mistake found after TensorFlow has started: its one line, and no noise.
  command = [sys.executable, str(REPO / "bin" / "show_task"), "--task=nope", "--out=x.png"]
  quiet = subprocess.run(command, env=_quiet_env(), capture_output=True, text=True, cwd=tmp_path)
  lines = quiet.stderr.strip().splitlines()
  assert quiet.returncode == 1 and len(lines) == 1, quiet.stderr  # the error itself, alone
  assert lines[0].startswith("show_task: --task: 'nope' is no registered task")
  for noise in ("InitializeLog", "oneDNN", "cuda", "I0000", "E0000"):
    assert noise not in quiet.stderr, quiet.stderr
  loud = subprocess.run(
    command + ["--verbosity=1"], env=_quiet_env(), capture_output=True, text=True
  )
  assert "InitializeLog" in loud.stderr  # detail comes back when asked for


def test_train_help_shows_the_preset_values():
  shown = subprocess.run(
    [sys.executable, str(REPO / "bin" / "train"), "--help"], capture_output=True, text=True
  ).stdout  # absl exits 1 on --help
  preset = config_lib.load_preset("default")
  blocks = {block.split(":")[0].strip(): block for block in shown.split("\n  --")[1:]}
  assert f"(default: '{preset.schedule.epochs}')" in blocks["epochs"]
  assert "(default: 'aligned,random')" in blocks["test_crops"]
  assert "(default: 'none,50')" in blocks["test_qfs"]
  assert "(default: 'none')" in blocks["lr_patience"]
  assert "tfjpeg-train" in shown.split("flags:")[0]  # the usage is the command's docstring


def _train_flags():
  from absl import flags  # pylint: disable=g-import-not-at-top

  from tfjpeg.cli import train  # pylint: disable=g-import-not-at-top

  values = flags.FlagValues()
  for name in flags.FLAGS:  # the train command's flags only, on a fresh holder
    if flags.FLAGS.find_module_defining_flag(name) == train.__name__:
      values[name] = flags.FLAGS[name]
  return values


def test_every_setting_is_a_flag_and_the_old_spellings_are_kept():
  from tfjpeg import cli  # pylint: disable=g-import-not-at-top

  values = _train_flags()
  assert {f.flag for f in config_lib.FIELDS} <= set(values)
  try:
    for spelling in ("--train_qfs", "--train_qf"):
      values(
        [
          "train",
          f"{spelling}=50,90",
          "--double_qf=30",
          "--test_crops=random",
          "--lattice_qf=none",
          "--epochs=2",
          "--nolattice_cache",
        ]
      )
      config = cli.config_from_flags(values)
      assert (config.jpeg.train_qfs, config.jpeg.double_qfs, config.test.crops) == (
        (50, 90),
        (30,),
        ("random",),
      )
      assert config.jpeg.lattice_qf is None and config.schedule.epochs == 2
      assert config.jpeg.lattice_cache is False
      assert config.test.qfs == config_lib.load_preset("default").test.qfs  # not given: kept
      values.unparse_flags()
  finally:
    values.unparse_flags()


@pytest.mark.parametrize(
  "argument,message",
  [
    ("--train_qfs=abc", "'abc' is not a JPEG quality in 1..100"),
    ("--train_qfs=101", "'101' is not a JPEG quality in 1..100"),
    ("--train_crop=centre", "'centre' is none of aligned, random, misaligned"),
    ("--epochs=many", "'many' is not a whole number"),
  ],
)
def test_a_wrong_flag_value_is_refused_while_parsing(argument, message):
  from absl import flags  # pylint: disable=g-import-not-at-top

  values = _train_flags()
  with pytest.raises(flags.IllegalFlagValueError) as error:
    values(["train", argument])
  assert message in str(error.value)


def test_the_chosen_preset_is_what_help_shows():
  from tfjpeg import cli  # pylint: disable=g-import-not-at-top

  values = _train_flags()
  paper = config_lib.load_preset("paper")
  cli.show_preset_defaults(["train", "--config=paper"], values)
  try:
    assert values["epochs"].default == paper.schedule.epochs == 100
    assert values["select"].default == "val_loss"
  finally:
    cli.show_preset_defaults(["train", "--config=default"], values)
  assert values["task"].default == config_lib.load_preset("default").task.name


# One subprocess per binary: a user's mistake is one line on stderr and status 1.
ONE_LINE_MISTAKES = {
  "train": (["--train_qfs=abc"], "--train_qfs=abc: 'abc' is not a JPEG quality in 1..100"),
  "audit": (["--images=/nonexistent", "--out=/tmp/x"], "--images=/nonexistent: no such file"),
  "evaluate": (["--workdir=/nonexistent"], "--workdir=/nonexistent: no such file or folder"),
  "export": (["--workdir=/nonexistent"], "--workdir=/nonexistent: no such file or folder"),
  "predict": (["--model=/nonexistent", "a.jpg"], "--model=/nonexistent: no such file"),
  "report": (["--model=/nonexistent", "--out=/tmp/x"], "--model=/nonexistent: no such file"),
  "study": (
    ["--config=nope"],
    "--config=nope: neither a file nor a preset of configs/ (alignment,",
  ),
  "show_task": (["--task=nope", "--out=/tmp/x.png"], "'nope' is no registered task"),
  "plot": (["--table=/nonexistent.csv"], "--table=/nonexistent.csv: no such file or folder"),
  "grid_accuracy": (["--photos=/nonexistent"], "--photos=/nonexistent: no such file or folder"),
  "grid": (["/nonexistent", "--out=/tmp/x"], "no file or folder at /nonexistent"),
  "benchmark": (["--sections=nope"], "unknown benchmark sections ['nope']"),
  "degrade": (["--images=/nonexistent", "--out=/tmp/x"], "--images=/nonexistent: no such file"),
  "data_service": (["--role=worker"], "--dispatcher"),
}


def test_every_binary_has_a_one_line_mistake_case():
  assert sorted(ONE_LINE_MISTAKES) == COMMANDS


@pytest.mark.parametrize("command", sorted(ONE_LINE_MISTAKES))
def test_a_users_mistake_is_one_line_not_a_traceback(command, tmp_path):
  arguments, message = ONE_LINE_MISTAKES[command]
  done = subprocess.run(
    [sys.executable, str(REPO / "bin" / command)] + arguments,
    env=_quiet_env(),
    capture_output=True,
    text=True,
    cwd=tmp_path,
    timeout=120,
  )
  assert done.returncode == 1, (done.returncode, done.stderr)
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and message in lines[0], done.stderr
  assert lines[0].startswith(f"{command}: ") and "Traceback" not in done.stderr


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_progress_on_a_terminal_and_in_a_log():
  clock = iter(range(0, 1000, 10)).__next__  # 10 s per call
  log = io.StringIO()
  with progress.Progress(6, "sweeps", "conditions", log, every=25, clock=clock) as bar:
    for _ in range(6):
      bar.update()
  lines = log.getvalue().splitlines()
  assert 1 < len(lines) < 6  # a line every 25 s, and the last
  assert "left)" in lines[0] and lines[-1].startswith("sweeps: 6/6 conditions")
  assert "took" in lines[-1]
  terminal = _Terminal()
  with progress.Progress(
    4, "epoch 1/6", "batches", terminal, clock=iter(range(100)).__next__
  ) as bar:
    bar.update(2)
    assert "[############............] 2/4 batches" in terminal.getvalue()
    assert "2s left" in terminal.getvalue().split("\r")[-1]
    bar.update(2)
  assert terminal.getvalue().endswith("\n") and terminal.getvalue().count("\n") == 1


def test_mistakes_a_user_can_fix_are_user_errors(tmp_path):
  """What the binaries end in one line: the library raises `UserError` for
  them (bugs raise anything else, and keep their traceback)."""
  from tfjpeg.core import errors  # pylint: disable=g-import-not-at-top
  from tfjpeg.core import runlock  # pylint: disable=g-import-not-at-top
  from tfjpeg.data import tasks  # pylint: disable=g-import-not-at-top
  from tfjpeg.models import nets  # pylint: disable=g-import-not-at-top
  from tfjpeg.serving import classifier  # pylint: disable=g-import-not-at-top
  from tfjpeg.train import rundir  # pylint: disable=g-import-not-at-top

  absent = str(tmp_path / "absent")
  cases = [
    (lambda: tasks.get("nope"), errors.ConfigError, "'nope' is no registered task"),
    (lambda: nets.build("resnet51", 64, 2), errors.ConfigError, "'resnet51' is no registered"),
    (
      lambda: tasks.get(config_lib.TaskConfig(name="folder", data_dir=absent)),
      errors.MissingError,
      "does not exist",
    ),
    (lambda: classifier.load(absent), errors.MissingError, "no model at"),
    (lambda: config_lib.saved(absent), errors.MissingError, "not a run directory"),
    (lambda: config_lib.make(epochs=0), errors.ConfigError, "epochs"),
  ]
  for call, kind, message in cases:
    with pytest.raises(kind, match=message) as caught:
      call()
    assert isinstance(caught.value, errors.UserError) and "\n" not in str(caught.value)
  assert issubclass(runlock.RunLockedError, errors.UserError)
  assert issubclass(rundir.UnusableError, errors.UserError)


# Page faults while 10 tensors of 72 MB are made and dropped: TensorFlow's
# default CPU allocator hands each back to the system, so every one is faulted
# in afresh (17,578 pages of 4 KB each); the pooling one, which importing
# tfjpeg.cli (every binary's first step) selects, faults in the first.
_FAULTS = """
import resource
import tfjpeg.cli, tensorflow as tf
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
  tf.reduce_sum(tf.fill([2000, 3000, 3], 1.0)).numpy()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_the_binaries_pool_tensorflow_cpu_memory_unless_told_otherwise():
  env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
  out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, env=env)
  assert out.returncode == 0, out.stderr
  pages = 2000 * 3000 * 3 * 4 // 4096
  assert int(out.stdout) < 10 * pages / 5, out.stdout
  told = "import os, tfjpeg.cli; print(os.environ['TF_CPU_ALLOCATOR_USE_BFC'])"
  env["TF_CPU_ALLOCATOR_USE_BFC"] = "false"
  out = subprocess.run([sys.executable, "-c", told], capture_output=True, text=True, env=env)
  assert out.stdout.strip() == "false"


def test_an_unknown_net_or_a_small_patch_is_refused_before_tensorflow_starts(tmp_path):
  """-X importtime lists every module imported: tensorflow is not among them."""
  for argument in ("--net=resnet51", "--patch_size=16", "--task=nope"):
    done = subprocess.run(
      [
        sys.executable,
        "-X",
        "importtime",
        str(REPO / "bin" / "train"),
        argument,
        f"--workdir={tmp_path / 'W'}",
      ],
      capture_output=True,
      text=True,
      timeout=120,
    )
    lines = done.stderr.splitlines()
    refusal = [line for line in lines if line.startswith("train: ")]
    assert done.returncode == 1 and len(refusal) == 1, (argument, done.stderr[-500:])
    assert not [line for line in lines if line.endswith("| tensorflow")], argument
    assert not (tmp_path / "W").exists()


def test_the_reports_resize_flags_are_refused_in_one_line(tmp_path):
  """--resize_factors and --test_chains of bin/report: a wrong value is one
  line naming the flag (the model is a file that exists: the values fail first)."""
  model = tmp_path / "model.keras"
  model.write_bytes(b"not a model")
  for argument, message in (
    ("--resize_factors=0.5,0", "--resize_factors: '0' is not a factor greater than 0"),
    ("--test_chains=resize:0", "--test_chains: chain 'resize:0', step 'resize:0'"),
  ):
    done = subprocess.run(
      [sys.executable, str(REPO / "bin" / "report"), f"--model={model}", "--out=/tmp/x", argument],
      env=_quiet_env(),
      capture_output=True,
      text=True,
      timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and message in lines[0], done.stderr
