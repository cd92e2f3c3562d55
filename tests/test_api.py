"""The public API: `import tfjpeg` names the stable entry points, each with
type hints, a docstring and (for the ops) an example that runs."""

import doctest
import inspect
import os
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


# Page faults while 10 tensors of 72 MB are made and dropped: TensorFlow's
# default CPU allocator hands each back to the system, so every one is faulted
# in afresh (17,578 pages of 4 KB each); the pooling one faults in the first.
_FAULTS = """
import resource
import tfjpeg, tensorflow as tf
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
  tf.reduce_sum(tf.fill([2000, 3000, 3], 1.0)).numpy()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_import_tfjpeg_pools_tensorflow_cpu_memory_unless_told_otherwise():
  env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
  out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, env=env)
  assert out.returncode == 0, out.stderr
  pages = 2000 * 3000 * 3 * 4 // 4096
  assert int(out.stdout) < 10 * pages / 5, out.stdout
  told = "import os, tfjpeg; print(os.environ['TF_CPU_ALLOCATOR_USE_BFC'])"
  env["TF_CPU_ALLOCATOR_USE_BFC"] = "false"
  out = subprocess.run([sys.executable, "-c", told], capture_output=True, text=True, env=env)
  assert out.stdout.strip() == "false"


def test_import_tfjpeg_alone_starts_no_tensorflow():
  code = "import sys, tfjpeg; print('tensorflow' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(n for n in tfjpeg.__all__ if n != "__version__"))
def test_docstring_examples_run(name):
  value = getattr(tfjpeg, name)
  finder = doctest.DocTestFinder(recurse=False)
  runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
  for test in finder.find(value, name, globs=dict(tfjpeg=tfjpeg, np=np, tf=tf)):
    runner.run(test)
  assert runner.summarize(verbose=False).failed == 0
