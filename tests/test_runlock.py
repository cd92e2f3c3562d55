"""One writer per run directory: a second process is refused in one line naming
the holder, a dead holder's lock is taken over, another host's is named with its
age and broken on request; a study skips held runs and defers its merge; two
runs filling the lattice cache at once leave it whole."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.codec import images
from tfjpeg.codec import jpeg
from tfjpeg.core import runlock
from tfjpeg.experiments import study

import helpers as testing

REPO = pathlib.Path(__file__).resolve().parent.parent


def _lock_as(directory, host, pid, started=None):
  os.makedirs(directory, exist_ok=True)
  (pathlib.Path(directory) / runlock.LOCK_NAME).write_text(
    json.dumps(dict(host=host, pid=pid, started=time.time() if started is None else started))
  )


@pytest.fixture
def live_process():
  """A process that lives while the test runs: a holder that is not us."""
  process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
  yield process
  process.kill()
  process.wait()


def test_a_live_holder_refuses_a_second_writer_in_one_line(tmp_path, live_process):
  _lock_as(tmp_path, socket.gethostname(), live_process.pid)
  with pytest.raises(runlock.RunLockedError) as refused:
    with runlock.hold(tmp_path):
      pass
  message = str(refused.value)
  assert "\n" not in message and f"process {live_process.pid} on {socket.gethostname()}" in message
  assert "run the same command again to resume" in message
  assert json.loads((tmp_path / runlock.LOCK_NAME).read_text())["pid"] == live_process.pid


def test_a_dead_holders_lock_is_taken_over_and_released(tmp_path):
  gone = subprocess.run(
    [sys.executable, "-c", "import os; print(os.getpid())"],
    capture_output=True,
    text=True,
    check=True,
  )
  _lock_as(tmp_path, socket.gethostname(), int(gone.stdout))
  with runlock.hold(tmp_path) as me:
    assert me.pid == os.getpid() and runlock.holder(tmp_path) == me
    with pytest.raises(runlock.RunLockedError, match="already held by this process"):
      with runlock.hold(tmp_path):
        pass
  assert not (tmp_path / runlock.LOCK_NAME).exists() and runlock.holder(tmp_path) is None


def test_another_hosts_lock_is_named_with_its_age_and_broken_on_request(tmp_path):
  _lock_as(tmp_path, "node17.cluster", 4242, started=time.time() - 1500)
  with pytest.raises(runlock.RunLockedError) as refused:
    with runlock.hold(tmp_path):
      pass
  assert "process 4242 on node17.cluster" in str(refused.value)
  # Its age in minutes and seconds (a slow machine may add a second).
  assert re.search(r"\(25 min [01] s ago\)", str(refused.value)), refused.value
  assert "--break_lock" in str(refused.value)
  with runlock.hold(tmp_path, break_lock=True) as me:
    assert runlock.holder(tmp_path) == me


_HOLDER = """
import sys, time
from tfjpeg.core import runlock
with runlock.hold(sys.argv[1]):
  print("holding", flush=True)
  sys.stdin.readline()  # until the test has tried a second writer
  with open(sys.argv[1] + "/written", "w") as f:
    f.write("the first writer's file")
"""


def test_a_second_bin_train_on_one_directory_stops_at_once_and_the_first_is_unharmed(tmp_path):
  workdir = tmp_path / "run"
  env = dict(os.environ, TFJPEG_CACHE=str(tmp_path / "cache"), CUDA_VISIBLE_DEVICES="")
  first = subprocess.Popen(
    [sys.executable, "-c", _HOLDER, str(workdir)],
    env=env,
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    text=True,
  )
  assert first.stdout.readline().strip() == "holding"
  second = subprocess.run(
    [sys.executable, str(REPO / "bin" / "train"), "--epochs=1", f"--workdir={workdir}"],
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )
  out, _ = first.communicate("go\n", timeout=60)
  assert first.returncode == 0 and (workdir / "written").read_text() == "the first writer's file"
  assert second.returncode == 1 and "Traceback" not in second.stderr
  last = second.stderr.strip().splitlines()[-1]
  assert last.startswith(
    f"train: {workdir} is being written by process {first.pid} on {socket.gethostname()}, since "
  )
  assert last.endswith("then run the same command again to resume")
  # Refused before it read any data or wrote anything of its own.
  assert sorted(p.name for p in workdir.iterdir()) == ["written"]
  assert not (tmp_path / "cache").exists()


def test_a_study_skips_held_runs_and_defers_its_merge(tmp_path, live_process):
  config = config_lib.make(epochs=1)
  plan = study.Study("held", (("a", config),))
  _lock_as(tmp_path / "runs" / "a", socket.gethostname(), live_process.pid)
  lines = []
  assert study.run(plan, str(tmp_path), log=lines.append) is None
  assert lines[0].startswith("[1/1] a: skipped, ") and f"process {live_process.pid}" in lines[0]
  assert lines[-1].startswith("not merged yet: 1 run(s) of") and "a: process" in lines[-1]
  with pytest.raises(runlock.RunLockedError, match="merge once they end"):
    study.merge(plan, str(tmp_path))


_BUILD = """
import sys
from tfjpeg.data import lattice
print(sorted(lattice.build(sys.argv[2:], 90, root=sys.argv[1]).values()))
"""


def test_two_runs_filling_the_lattice_cache_at_once_leave_it_whole(tmp_path):
  paths = [
    str(
      testing.write_image(tmp_path / "src" / f"{i}.png", testing.synthetic_image(200, 240, seed=i))
    )
    for i in range(12)
  ]
  root = tmp_path / "cache"
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
  builders = [
    subprocess.Popen(
      [sys.executable, "-c", _BUILD, str(root)] + paths,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for _ in range(2)
  ]
  outputs = [b.communicate(timeout=300) for b in builders]
  assert all(b.returncode == 0 for b in builders), outputs
  assert outputs[0][0] == outputs[1][0]
  folder = next(root.iterdir())
  assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == []
  assert len(list(folder.glob("*.jpg"))) == 12
  from tfjpeg.data import lattice  # pylint: disable=g-import-not-at-top

  for path in paths:
    stored = (folder / lattice.entry_name(path)).read_bytes()
    expected = jpeg.encode(images.decode(tf.io.read_file(path)), 90).numpy()
    assert stored == expected


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_evaluate_and_export_take_the_runs_lock(tmp_path, live_process, command):
  """A run being written by another process (training, say) is refused in
  one line by the binaries that write into its directory too."""
  workdir = tmp_path / "run"
  _lock_as(workdir, socket.gethostname(), live_process.pid)
  (workdir / "config.json").write_text(config_lib.make().to_json())
  done = subprocess.run(
    [sys.executable, str(REPO / "bin" / command), f"--workdir={workdir}"],
    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    capture_output=True,
    text=True,
    timeout=120,
  )
  lines = [line for line in done.stderr.splitlines() if line.startswith(f"{command}: ")]
  assert done.returncode == 1 and len(lines) == 1, done.stderr
  assert f"process {live_process.pid}" in lines[0] and "Traceback" not in done.stderr
  assert json.loads((workdir / runlock.LOCK_NAME).read_text())["pid"] == live_process.pid


# As a user types them: each start is refused in one line, before a run
# directory is written, so the corrected command can use the same --workdir.
FAILED_STARTS = [
  (["--net=resnet51"], "'resnet51' is no registered net"),
  (["--task=folder", "--data_dir=/nonexistent"], "/nonexistent"),
  (["--patch_size=16"], "hpf needs patches of at least 64 pixels, but --patch_size is 16"),
  (["--net=xception", "--patch_size=64"], "xception needs patches of at least 71"),
  (["--weights=/nonexistent.h5"], "weights file /nonexistent.h5 does not exist"),
  (["--builtin_scenes=2"], "too few source images for the split"),
  (["--train_chain=resize:0"], "chain 'resize:0', step 'resize:0': 0 must be greater than 0"),
]


@pytest.mark.parametrize("arguments,message", FAILED_STARTS)
def test_a_failed_start_leaves_nothing_behind(tmp_path, arguments, message):
  workdir = tmp_path / "W"
  done = subprocess.run(
    [sys.executable, str(REPO / "bin" / "train"), f"--workdir={workdir}"] + arguments,
    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TFJPEG_CACHE=str(tmp_path / "cache")),
    capture_output=True,
    text=True,
    timeout=300,
  )
  lines = [line for line in done.stderr.strip().splitlines() if line.startswith("train: ")]
  assert done.returncode == 1 and len(lines) == 1 and message in lines[0], done.stderr
  assert "Traceback" not in done.stderr
  assert not workdir.exists()


def test_an_impossible_workdir_is_one_line(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  for workdir, message in (
    (blocker / "run", "cannot be created"),
    ("/proc/x", "cannot be created"),
  ):
    done = subprocess.run(
      [sys.executable, str(REPO / "bin" / "train"), f"--workdir={workdir}", "--epochs=1"],
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TFJPEG_CACHE=str(tmp_path / "cache")),
      capture_output=True,
      text=True,
      timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and message in lines[-1] and "Traceback" not in done.stderr, (
      done.stderr
    )
