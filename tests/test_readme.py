"""The README's two commands stay the ones CI and users run."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _commands():
  text = open(os.path.join(REPO, "README.md")).read()
  return re.findall(r"```sh\n(python3 -m venv .*?)\n```", text)


def test_ci_runs_the_readme_test_command_as_written():
  install_and_run, install_and_test = _commands()[:2]
  ci = open(os.path.join(REPO, ".ci", "run")).read()
  assert install_and_test in ci
  assert install_and_run.endswith("bin/train")
  assert os.access(os.path.join(REPO, "bin", "train"), os.X_OK)
