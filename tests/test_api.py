"""The public API: `import tfjpeg` names the stable entry points, each with
type hints, a docstring and (for the ops) an example that runs."""

import doctest
import inspect
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfjpeg


def test_every_public_name_loads_and_is_documented_and_typed():
  assert tfjpeg.__all__ == sorted(tfjpeg._EXPORTS) + ["__version__"]  # pylint: disable=protected-access
  for name in tfjpeg.__all__:
    if name == "__version__":
      continue
    value = getattr(tfjpeg, name)
    doc = inspect.getdoc(value)
    assert doc and len(doc.split()) >= 5, f"tfjpeg.{name} needs a docstring"
    target = value.__init__ if inspect.isclass(value) else value
    hints = getattr(target, "__annotations__", {})
    if not inspect.isclass(value):
      assert "return" in hints, f"tfjpeg.{name} has no return type"
      params = [p for p in inspect.signature(value).parameters if p not in ("self",)]
      untyped = [p for p in params if p not in hints]
      assert not untyped, f"tfjpeg.{name}: parameters without a type: {untyped}"
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    tfjpeg.nope  # noqa: B018  # the point of the test


def test_import_tfjpeg_alone_starts_no_tensorflow():
  code = "import sys, tfjpeg; print('tensorflow' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def test_the_keras_layers_are_a_subpackage_named_on_first_use():
  code = "import tfjpeg; print(tfjpeg.layers.GridCrop.__module__, 'layers' in dir(tfjpeg))"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "tfjpeg.layers.crop True"


@pytest.mark.parametrize("name", sorted(n for n in tfjpeg.__all__ if n != "__version__"))
def test_docstring_examples_run(name):
  value = getattr(tfjpeg, name)
  finder = doctest.DocTestFinder(recurse=False)
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  for test in finder.find(value, name, globs=dict(tfjpeg=tfjpeg, np=np, tf=tf)):
    runner.run(test)
  assert runner.summarize(verbose=False).failed == 0
