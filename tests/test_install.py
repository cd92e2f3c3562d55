"""A non-editable install: the package alone, far from the checkout, as a user gets it."""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """The package built and installed (not linked) into a folder of its own."""
  target = tmp_path_factory.mktemp("site")
  subprocess.run(
    [
      sys.executable,
      "-m",
      "pip",
      "install",
      "-q",
      "--no-deps",
      "--no-build-isolation",
      "--target",
      str(target),
      str(REPO),
    ],
    check=True,
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=300,
  )
  return target


def _run(installed, cwd, *arguments):
  # The installed copy first on the path: ahead of the checkout's editable link.
  env = dict(os.environ, PYTHONPATH=str(installed))
  env.pop("TFJPEG_SHARED_DATA", None)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user runs it: the binaries keep quiet themselves
  return subprocess.run(
    [sys.executable, *arguments], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
  )


def test_presets_install_inside_the_package_not_as_configs(installed, tmp_path):
  assert (installed / "tfjpeg" / "presets" / "default.py").exists()
  assert not (installed / "configs").exists()
  assert not (installed / "tests").exists()
  done = _run(
    installed,
    tmp_path,
    "-c",
    (
      "import tfjpeg, tfjpeg.config as c; print(tfjpeg.__file__); "
      "print(c.load_preset('default').task.name, c.load_preset('paper').schedule.epochs)"
    ),
  )
  assert done.returncode == 0, done.stderr
  where, names = done.stdout.strip().splitlines()
  assert where.startswith(str(installed)) and names == "cameras 100"


def test_real_photos_are_looked_for_beside_the_working_directory(installed, tmp_path):
  """Installed, the real-photo tasks look in ../shared/data from where the
  command runs (not inside the virtual environment), and say so in one line."""
  work = tmp_path / "project"
  work.mkdir()
  done = _run(
    installed,
    work,
    "-m",
    "tfjpeg.cli.train",
    "--task=real_history",
    f"--workdir={tmp_path / 'run'}",
  )
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 1 and len(lines) == 1, done.stderr
  assert lines[0].startswith("train: the real-photo tasks need the shared photo folder")
  assert str(tmp_path / "shared" / "data") in lines[0]
