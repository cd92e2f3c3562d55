"""The binaries and the shape of the package: entry points, quiet start-up,
flags named after config fields, an import graph without circles, progress."""

import ast
import configparser
import io
import os
import pathlib
import subprocess
import sys

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
      if node.module == "tfjpeg":
        found |= {f"tfjpeg.{a.name}" for a in node.names}
      else:
        found.add(node.module)
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


def test_import_graph_has_no_circles_and_plotting_is_a_leaf():
  graph = _graph()
  circles = sorted(m for m in graph if m in _reachable(graph, m))
  assert not circles, f"modules importing themselves through others: {circles}"
  assert graph["tfjpeg.analysis.plotting"] == set() and graph["tfjpeg.core.metrics"] == set()
  assert "tfjpeg.pipeline.input_pipeline" not in _reachable(graph, "tfjpeg.serving.predict")
  assert "tfjpeg.pipeline.input_pipeline" not in _reachable(graph, "tfjpeg.serving.classifier")


def test_flags_live_in_the_binaries_only():
  for path in PACKAGE.rglob("*.py"):
    if "cli" in path.relative_to(PACKAGE).parts:
      continue
    text = path.read_text()
    assert "absl import flags" not in text and "FLAGS" not in text, path


def test_every_binary_is_an_entry_point_and_a_thin_file_of_bin():
  parser = configparser.ConfigParser()
  parser.read(REPO / "setup.cfg")
  scripts = dict(line.split(" = ") for line in
                 parser["options.entry_points"]["console_scripts"].strip().splitlines())
  assert scripts == {f"tfjpeg-{c}": f"tfjpeg.cli.{c}:run" for c in COMMANDS}
  assert sorted(p.name for p in (REPO / "bin").iterdir()) == COMMANDS
  for command in COMMANDS:
    text = (REPO / "bin" / command).read_text()
    assert "sys.path" not in text and f"from tfjpeg.cli import {command}" in text
    assert os.access(REPO / "bin" / command, os.X_OK)


def _quiet_env():
  return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def test_binaries_start_without_tensorflow_noise_unless_asked(tmp_path):
  command = [sys.executable, str(REPO / "bin" / "export"), f"--workdir={tmp_path / 'none'}"]
  quiet = subprocess.run(command, env=_quiet_env(), capture_output=True, text=True)
  assert quiet.returncode != 0 and "is not a run directory" not in quiet.stdout
  assert "has no run.json" in quiet.stderr  # the error itself is shown
  for noise in ("InitializeLog", "oneDNN", "cuda", "I0000", "E0000"):
    assert noise not in quiet.stderr, quiet.stderr
  loud = subprocess.run(command + ["--verbosity=1"], env=_quiet_env(), capture_output=True,
                        text=True)
  assert "InitializeLog" in loud.stderr  # detail comes back when asked for


def test_train_help_shows_the_preset_values():
  shown = subprocess.run([sys.executable, str(REPO / "bin" / "train"), "--help"],
                         capture_output=True, text=True).stdout  # absl exits 1 on --help
  preset = config_lib.load_preset("default")
  blocks = {block.split(":")[0].strip(): block for block in shown.split("\n  --")[1:]}
  assert f"(default: '{preset.epochs}')" in blocks["epochs"]
  assert "(default: 'aligned,random')" in blocks["test_crops"]
  assert "(default: 'none,50')" in blocks["test_qfs"]
  assert "(default: 'none')" in blocks["lr_patience"]
  assert "tfjpeg-train" in shown.split("flags:")[0]  # the usage is the command's docstring


def test_flags_named_after_config_fields_with_the_old_spellings_kept():
  from absl import flags  # pylint: disable=g-import-not-at-top

  from tfjpeg.cli import train  # pylint: disable=g-import-not-at-top
  values = flags.FlagValues()
  for name in flags.FLAGS:  # the train command's flags only, on a fresh holder
    if flags.FLAGS.find_module_defining_flag(name) == train.__name__:
      values[name] = flags.FLAGS[name]
  try:
    for spelling in ("--train_qfs", "--train_qf"):
      values(["train", f"{spelling}=50,90", "--double_qf=30", "--test_crops=random",
              "--lattice_qf=none", "--epochs=2"])
      config = train.given_config(values)
      assert (config.train_qfs, config.double_qfs, config.test_crops) == ((50, 90), (30,),
                                                                          ("random",))
      assert config.lattice_qf is None and config.epochs == 2
      assert config.test_qfs == config_lib.load_preset("default").test_qfs  # not given: kept
      values.unparse_flags()
  finally:
    values.unparse_flags()


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
  with progress.Progress(4, "epoch 1/6", "batches", terminal, clock=iter(range(100)).__next__) as bar:
    bar.update(2)
    assert "[############............] 2/4 batches" in terminal.getvalue()
    assert "2s left" in terminal.getvalue().split("\r")[-1]
    bar.update(2)
  assert terminal.getvalue().endswith("\n") and terminal.getvalue().count("\n") == 1
