"""Runs on real disks: a full disk or a read-only run directory is said in one
line (exit 74), never a traceback or a segmentation fault, and the next run
after space is freed finishes; a failure injected at every kind of file a run
writes leaves a run that resumes to the same results, and a checkpoint that
is damaged or does not fit is refused in one line."""

import json
import os
import pathlib
import subprocess
import sys

import pandas as pd
import pytest

from tfjpeg import config as config_lib
from tfjpeg.experiments import run as run_lib
from tfjpeg.train import resume
from tfjpeg.train import rundir

REPO = pathlib.Path(__file__).resolve().parent.parent
TINY = [
  "--epochs=1",
  "--steps_per_epoch=3",
  "--test_qfs=none",
  "--builtin_scenes=16",
  "--precise_bn_batches=1",
]


@pytest.fixture
def small_disk(tmp_path):
  """A 1.5 MB file system of its own (tmpfs; root only), unmounted after."""
  mount = tmp_path / "disk"
  mount.mkdir()
  made = subprocess.run(
    ["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mount)],
    capture_output=True,
    text=True,
  )
  if made.returncode != 0:
    pytest.skip(f"cannot mount a small file system here ({made.stderr.strip()})")
  yield mount
  subprocess.run(["umount", "-l", str(mount)], check=False)


def _train(args, cache):
  env = dict(os.environ, TFJPEG_CACHE=str(cache), CUDA_VISIBLE_DEVICES="")
  return subprocess.run(
    [sys.executable, str(REPO / "bin" / "train")] + args,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )


def test_a_full_disk_is_one_line_and_the_run_resumes_once_space_is_freed(small_disk, tmp_path):
  workdir = small_disk / "run"
  full = _train(TINY + [f"--workdir={workdir}"], tmp_path / "cache")
  assert full.returncode == 74, full.stderr[-2000:]
  last = full.stderr.strip().splitlines()[-1]
  assert last.startswith(f"train: cannot write {workdir}") and "no space left" in last, last
  assert "Traceback" not in full.stderr and "Segmentation" not in full.stderr
  assert not list((workdir / "checkpoints").glob("*partial*"))  # nothing half-written
  subprocess.run(["mount", "-o", "remount,size=30m", str(small_disk)], check=True)
  again = _train(TINY + [f"--workdir={workdir}"], tmp_path / "cache")
  assert again.returncode == 0, again.stderr[-2000:]
  assert rundir.is_finished(str(workdir))
  subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
  other = _train(TINY + [f"--workdir={small_disk / 'other'}"], tmp_path / "cache")
  assert other.returncode == 74 and "Traceback" not in other.stderr
  assert "read-only" in other.stderr.strip().splitlines()[-1]


_SAVE_ON_A_FULL_DISK = """
import os, sys
from tfjpeg.models import nets
from tfjpeg.train import rundir
from tfjpeg.experiments import run as run_lib
model = nets.build("hpf", 64, 4)
folder = sys.argv[1]
with open(os.path.join(folder, "filler"), "wb") as f:  # leave 300 kB
  f.write(b"\\0" * (os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize - 300_000))
rundir.check_space = lambda path, needed: None  # let h5py meet the full disk itself
try:
  rundir.save_atomically(model, os.path.join(folder, "best.weights.h5"), weights_only=True)
except rundir.WriteError as e:
  print(e, flush=True)
print(sorted(os.listdir(folder)), flush=True)
os._exit(0)
"""


def test_h5py_meeting_a_full_disk_leaves_no_half_written_file(small_disk):
  done = subprocess.run(
    [sys.executable, "-c", _SAVE_ON_A_FULL_DISK, str(small_disk)],
    capture_output=True,
    text=True,
    timeout=300,
    env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
  )
  assert done.returncode == 0, done.stderr[-2000:]
  message, listing = done.stdout.strip().splitlines()[-2:]
  assert message.startswith(f"cannot write {small_disk}/best.weights.h5: no space left")
  assert listing == "['filler']"


FILES_A_RUN_WRITES = (
  "config.json",
  "data_summary.txt",
  "run.json",
  "best.weights.h5",
  "latest.keras",
  "state.json",
  "results.csv",
  "finished.json",
)


def test_a_failure_at_every_kind_of_file_leaves_a_run_that_resumes_to_the_same_results(
  tmp_path, monkeypatch
):
  monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path / "cache"))
  config = config_lib.make(
    epochs=1,
    steps_per_epoch=2,
    test_qfs=(None,),
    test_crops=("random",),
    builtin_scenes=16,
    precise_bn_batches=1,
  )
  reference = run_lib.train_and_evaluate(config, str(tmp_path / "reference"), log=lambda m: 0)
  failing = set(FILES_A_RUN_WRITES)
  real_text, real_save, real_upsert = (
    rundir.write_atomically,
    rundir.save_atomically,
    rundir.upsert_rows,
  )

  def fail_once(path):
    name = os.path.basename(path)
    if name in failing:
      failing.discard(name)
      raise rundir.write_error(path, OSError(28, "No space left on device"))

  monkeypatch.setattr(
    rundir, "write_atomically", lambda path, text: (fail_once(path), real_text(path, text))
  )
  monkeypatch.setattr(
    rundir,
    "save_atomically",
    lambda model, path, weights_only=False: (fail_once(path), real_save(model, path, weights_only)),
  )
  monkeypatch.setattr(
    rundir,
    "upsert_rows",
    lambda path, rows, keys: (fail_once(path), real_upsert(path, rows, keys))[1],
  )
  workdir = str(tmp_path / "run")
  failures = []
  for _ in range(len(FILES_A_RUN_WRITES) + 1):
    try:
      results = run_lib.train_and_evaluate(config, workdir, log=lambda m: 0)
      break
    except rundir.WriteError as e:
      failures.append(str(e).split(": ")[0].split("/")[-1])
  assert sorted(failures) == sorted(FILES_A_RUN_WRITES)
  assert rundir.is_finished(workdir)
  pd.testing.assert_frame_equal(results, reference)
  # What a resumed run reads is checked: refused in one line when unusable.
  monkeypatch.undo()
  monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path / "cache"))
  state = tmp_path / "run" / "checkpoints" / "state.json"
  state.write_text(state.read_text()[:40])  # cut short
  (tmp_path / "run" / rundir.FINISHED).unlink()
  with pytest.raises(rundir.UnusableError, match="state.json is unusable .* move .* away"):
    run_lib.train_and_evaluate(config, workdir, log=lambda m: 0)
  # The other refusals, where the run above met the first: its resume step.
  state.write_text(json.dumps(dict(epoch=3, history=[{}] * 3)))
  with pytest.raises(rundir.UnusableError, match="does not fit this run"):
    resume.load_state(workdir, config)
  (tmp_path / "run" / "checkpoints" / "latest.keras").write_bytes(b"not a model")
  state.write_text(json.dumps(dict(epoch=1, history=[{}])))
  with pytest.raises(rundir.UnusableError, match="latest.keras is unusable"):
    resume.resume_model(config, None, resume.load_state(workdir, config), workdir)
