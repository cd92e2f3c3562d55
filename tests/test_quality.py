"""The checks that keep the code and the docs as they are: ruff (lint and
format), the type checker on the public modules, and a strict docs build."""

import pathlib
import subprocess
import sys

import pytest

import helpers as testing

REPO = pathlib.Path(__file__).resolve().parent.parent


def _run(*command):
  done = subprocess.run(
    [sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=300
  )
  assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
  return done


def test_ruff_lint_and_format():
  _run("ruff", "check", "tfjpeg", "tests", "configs")
  _run("ruff", "format", "--check", "tfjpeg", "tests", "configs")


def test_type_checker_on_the_public_modules():
  _run("mypy")  # the files and settings are in pyproject.toml


@pytest.fixture(scope="module")
def site(tmp_path_factory):
  """The documentation site, built strictly: a broken link, a missing page or
  an API reference that does not resolve fails the build."""
  site = tmp_path_factory.mktemp("docs") / "site"
  done = _run("mkdocs", "build", "--strict", "--site-dir", str(site))
  assert (site / "api" / "index.html").exists(), done.stderr
  return site


def test_docs_build_strictly(site):
  api = (site / "api" / "index.html").read_text()
  for name in (
    "tfjpeg.codec.jpeg.compress",
    "tfjpeg.codec.grid.estimate",
    "tfjpeg.experiments.run.train_and_evaluate",
  ):
    assert name in api


def test_docs_pages_open_in_a_browser(site, tmp_path):
  for page in ("index.html", "api/index.html", "architecture/index.html", "chains/index.html"):
    messages = testing.open_in_chromium(site / page, tmp_path / (page.replace("/", "_") + ".png"))
    assert not [m for m in messages if "Uncaught" in m or "ERROR" in m.upper()], messages
