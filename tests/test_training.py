"""End to end: bin/train runs, resumes after a kill with equal results, exports, distributes."""

import glob
import io
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.analysis import evaluation
from tfjpeg.codec import images
from tfjpeg.data import tasks
from tfjpeg.experiments import run as run_lib
from tfjpeg.models import nets
from tfjpeg.pipeline import input_pipeline
from tfjpeg.serving import classifier
from tfjpeg.serving import export
from tfjpeg.train import baseline
from tfjpeg.train import distribute
from tfjpeg.train import preemption
from tfjpeg.train import resume
from tfjpeg.train import rundir
from tfjpeg.train import schedule

import helpers as testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small but real: the built-in camera task, few steps.
FAST = [
  "--epochs=3",
  "--steps_per_epoch=6",
  "--batch_size=16",
  "--test_qfs=none,50",
  "--train_qf=90",
  "--double_qf=60",
  "--builtin_scenes=24",
]


def _env(cache):
  env = dict(
    os.environ,
    TFJPEG_CACHE=str(cache),
    TF_CPP_MIN_LOG_LEVEL="2",
    PYTHONUNBUFFERED="1",
    CUDA_VISIBLE_DEVICES="",
  )
  return env


def _train(args, cache, **kw):
  try:
    return subprocess.run(
      [sys.executable, os.path.join(REPO, "bin", "train")] + args,
      env=_env(cache),
      capture_output=True,
      text=True,
      check=True,
      **kw,
    )
  except subprocess.CalledProcessError as e:
    print(e.stderr[-3000:], file=sys.stderr)  # shown with the failure
    raise


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
  return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, cache):
  workdir = tmp_path_factory.mktemp("run") / "a"
  out = _train(FAST + [f"--workdir={workdir}", "--offset_periods=8"], cache)
  return workdir, out.stdout


def test_run_directory_holds_everything(finished_run):
  workdir, stdout = finished_run
  results = pd.read_csv(workdir / "results.csv")
  assert tuple(results.columns) == evaluation.RESULT_COLUMNS
  assert len(results) == 4  # aligned/random x none/50
  assert set(results["test_qf"].astype(str)) == {"none", "50"}
  assert (results["n_images"] > 0).all() and results["balanced_accuracy"].between(0, 1).all()
  assert "balanced_accuracy" in stdout and "epoch 3/3" in stdout
  config = config_lib.Config.from_json((workdir / "config.json").read_text())
  assert config.task.name == "cameras" and config.net == nets.DEFAULT_NET
  assert (config.jpeg.train_qfs, config.jpeg.double_qfs, config.test.offset_periods) == (
    (90,),
    (60,),
    (8,),
  )
  sweep = pd.read_csv(workdir / "offsets_qfnone.csv")  # after testing, one per test QF
  assert len(sweep) == 81 and (workdir / "offsets_qf50.csv").exists()
  assert len(pd.read_csv(workdir / "offsets_summary.csv")) == 2
  assert "bad files" in (workdir / "data_summary.txt").read_text()
  assert rundir.is_finished(str(workdir))  # written last, after the sweeps
  for name in ("latest.keras", "best.weights.h5", "state.json"):
    assert (workdir / "checkpoints" / name).exists()
  assert len(glob.glob(str(workdir / "confusion_*.csv"))) == 4
  tags = set()
  for path in glob.glob(str(workdir / "logs" / "**" / "events.out.tfevents*"), recursive=True):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  for tag in (
    "learning_rate",
    "augmented_training_patches",
    "epoch_loss",
    "epoch_accuracy",
    "_hparams_/session_start_info",
  ):
    assert tag in tags, (tag, sorted(tags))


def test_a_killed_then_preempted_run_resumes_to_the_same_results(tmp_path, cache, finished_run):
  """SIGKILL in the second epoch (nothing of it is kept), then SIGTERM in the
  third (a scheduler's preemption: stops within seconds, exit 75, one line),
  then the same command once more: the results equal an uninterrupted run's."""
  reference, _ = finished_run
  workdir = tmp_path / "b"
  command = [sys.executable, os.path.join(REPO, "bin", "train")] + FAST + [f"--workdir={workdir}"]
  process = subprocess.Popen(
    command, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  for line in process.stdout:  # kill it during its second epoch
    if line.startswith("epoch 1/3"):
      process.send_signal(signal.SIGKILL)
      break
  process.wait()
  assert not (workdir / "results.csv").exists() and not rundir.is_finished(str(workdir))
  process = subprocess.Popen(
    command, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )
  resumed = []
  for line in process.stdout:  # resumed after epoch 1; preempted during the third
    resumed.append(line)
    if line.startswith("epoch 2/3"):
      process.send_signal(signal.SIGTERM)
      signalled = time.time()
      break
  _, err = process.communicate(timeout=60)
  assert not any(line.startswith("epoch 1/3") for line in resumed)
  # Stops at the next batch: well within a minute, even with the other worker training.
  assert process.returncode == preemption.EXIT_PREEMPTED and time.time() - signalled < 60
  assert err.strip().splitlines()[-1] == (
    f"train: {workdir}: stopped by SIGTERM with 2 epoch(s) saved; the same command resumes "
    "from there"
  )
  assert json.loads((workdir / "checkpoints" / "state.json").read_text())["epoch"] == 2
  out = _train(FAST + [f"--workdir={workdir}"], cache)
  assert "epoch 2/3" not in out.stdout and "epoch 3/3" in out.stdout
  pd.testing.assert_frame_equal(
    pd.read_csv(workdir / "results.csv"), pd.read_csv(reference / "results.csv")
  )


def test_a_workdir_refuses_another_config(finished_run, cache):
  workdir, _ = finished_run
  with pytest.raises(subprocess.CalledProcessError) as caught:
    _train(FAST + [f"--workdir={workdir}", "--seed=5"], cache)
  assert "another config" in caught.value.stderr and "seed" in caught.value.stderr


@pytest.mark.parametrize("strategy", ["mirrored"])
def test_distribution_strategies_on_two_cpu_devices(tmp_path, cache, strategy):
  # multiworker runs as a cluster runs it: test_two_worker_processes_train_one_run.
  out = _train(
    [
      "--epochs=1",
      "--steps_per_epoch=3",
      "--batch_size=8",
      "--test_qfs=none",
      f"--strategy={strategy}",
      "--builtin_scenes=16",
      "--cpu_devices=2",
      f"--workdir={tmp_path / 'm'}",
    ],
    cache,
  )
  assert (tmp_path / "m" / "results.csv").exists(), out.stdout


def test_two_worker_processes_train_one_run(tmp_path, cache):
  """--strategy=multiworker as a cluster runs it: two bin/train processes on
  loopback with TF_CONFIG. Their replicas step together (gradients and
  metrics all-reduced), so both end with the same numbers; the chief writes
  the run directory, the other worker its own copy in worker1/. Each worker
  reads half of every epoch's batches, so against one process with the same
  settings the results agree within a tolerance of 0.25 in balanced accuracy
  (the same data, twice the patches per step)."""
  args = [
    "--epochs=1",
    "--steps_per_epoch=4",
    "--batch_size=8",
    "--test_qfs=none",
    "--builtin_scenes=16",
    "--strategy=multiworker",
  ]
  cluster = {"worker": [f"localhost:{input_pipeline.free_port()}" for _ in range(2)]}
  workdir = tmp_path / "cluster"
  processes = [
    subprocess.Popen(
      [sys.executable, os.path.join(REPO, "bin", "train"), *args, f"--workdir={workdir}"],
      env=dict(
        _env(cache),
        TF_CONFIG=json.dumps(dict(cluster=cluster, task=dict(type="worker", index=index))),
      ),
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for index in range(2)
  ]
  outputs = [p.communicate(timeout=500)[0] for p in processes]
  assert [p.returncode for p in processes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
  chief, other = workdir, workdir / "worker1"
  histories = [json.load(open(d / "checkpoints" / "state.json"))["history"] for d in (chief, other)]
  assert [len(h) for h in histories] == [1, 1]
  for a, b in zip(*histories):  # the same steps on both replicas
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
  results = pd.read_csv(chief / "results.csv")
  pd.testing.assert_frame_equal(results, pd.read_csv(other / "results.csv"), rtol=1e-4)
  single = tmp_path / "single"
  _train([a for a in args if "strategy" not in a] + [f"--workdir={single}"], cache)
  alone = pd.read_csv(single / "results.csv")
  np.testing.assert_allclose(results["balanced_accuracy"], alone["balanced_accuracy"], atol=0.25)


def test_empty_split_stops_training_with_a_clear_message(tmp_path, cache):
  for c in ("a", "b"):
    for i in range(2):
      testing.write_image(
        tmp_path / "data" / c / f"{c}{i}.png", testing.synthetic_image(70, 70, seed=i)
      )
  with pytest.raises(subprocess.CalledProcessError) as caught:
    _train(
      [
        "--task=folder",
        f"--data_dir={tmp_path / 'data'}",
        "--patch_size=64",
        f"--workdir={tmp_path / 'run'}",
      ],
      cache,
    )
  assert "no validation" in caught.value.stderr and "too few source images" in caught.value.stderr


def test_export_matches_the_keras_model(finished_run, cache, monkeypatch):
  workdir, _ = finished_run
  monkeypatch.setenv("TFJPEG_CACHE", str(cache))
  path = export.export_run(str(workdir), str(workdir / "saved"))
  loaded = tf.saved_model.load(path)
  config = config_lib.Config.from_json((workdir / "config.json").read_text())
  task = tasks.get(config.task)
  model = nets.build(config.net, task.patch_size, task.num_classes)
  model.load_weights(str(workdir / "checkpoints" / "best.weights.h5"))
  patches = np.stack([testing.synthetic_image(64, 64, seed=s) for s in range(5)])
  np.testing.assert_allclose(
    loaded.serve_patches(tf.constant(patches))["probabilities"].numpy(),
    model(patches.astype("float32")).numpy(),
    rtol=1e-5,
    atol=1e-6,
  )
  image = testing.synthetic_image(150, 200, seed=9)
  out = loaded.serve_bytes(tf.io.encode_png(image))
  tiles = np.stack([image[y : y + 64, x : x + 64] for y in (0, 64) for x in (0, 64, 128)])
  expected = np.log(np.clip(model(tiles.astype("float32")).numpy(), 1e-12, 1)).mean(0)
  np.testing.assert_allclose(out["log_probabilities"].numpy(), expected, rtol=1e-5, atol=1e-5)
  assert int(out["num_patches"]) == 6
  assert [n.decode() for n in out["class_names"].numpy()] == task.class_names
  assert sorted(map(tuple, out["offsets"].numpy().tolist())) == [
    (y, x) for y in (0, 64) for x in (0, 64, 128)
  ]


def test_schedule_state_follows_the_paper():
  config = config_lib.make(epochs=100, lr_patience=10, stop_patience=20)
  state = resume.ScheduleState(learning_rate=1e-3)
  assert state.update(1.0, config)
  for _ in range(10):
    assert not state.update(2.0, config)
  assert state.learning_rate == pytest.approx(1e-4) and not state.stopped
  for _ in range(10):
    state.update(2.0, config)
  assert state.stopped and state.best_epoch == 0 and state.learning_rate == pytest.approx(1e-5)


def test_constant_rate_and_no_early_stop_when_patience_is_none():
  config = config_lib.make(epochs=30, lr_patience=None, stop_patience=None)
  state = resume.ScheduleState(learning_rate=1e-3)
  state.update(1.0, config)
  for _ in range(28):
    state.update(2.0, config)
  assert state.learning_rate == 1e-3 and not state.stopped
  state.update(2.0, config)
  assert state.stopped  # after `epochs`


def test_default_recipe_tests_the_last_epochs_weights(finished_run):
  workdir, _ = finished_run
  config = config_lib.Config.from_json((workdir / "config.json").read_text())
  assert config.schedule.select == "last" and config.schedule.lr_patience is None
  latest = tf.keras.models.load_model(str(workdir / "checkpoints" / "latest.keras"))
  best = nets.build(config.net, 64, 4)
  best.load_weights(str(workdir / "checkpoints" / "best.weights.h5"))
  for a, b in zip(latest.get_weights(), best.get_weights()):
    np.testing.assert_array_equal(a, b)


def test_a_non_finite_loss_stops_the_run_with_a_message():
  schedule.check_finite({"loss": 0.5, "val_loss": 0.7, "accuracy": float("nan")}, 0, "run")
  with pytest.raises(FloatingPointError, match=r"run: non-finite val_loss nan in epoch 3"):
    schedule.check_finite({"loss": 0.5, "val_loss": float("nan")}, 2, "run")
  with pytest.raises(FloatingPointError, match="loss inf"):
    schedule.check_finite({"loss": float("inf"), "val_loss": 1.0}, 0, "run")


def test_files_that_go_bad_after_the_probe_are_named_and_the_run_goes_on(tmp_path, monkeypatch):
  # As if files changed on disk after they were probed: the probe does not decode.
  monkeypatch.setattr(images, "check_decodes", lambda path, data: None)
  monkeypatch.setattr(images, "_check_jpeg_strictly", lambda path, data: None)
  for c in ("a", "b"):
    for i in range(10):
      testing.write_image(tmp_path / "data" / c / f"{c}{i}.png", testing.synthetic_image(80, 96, i))
  testing.write_corrupt_images(tmp_path / "corrupt")
  bad = [tmp_path / "data" / "a" / "a0.png", tmp_path / "data" / "b" / "b7.png"]
  for target, name in zip(bad, ("bad_zlib.png", "bad_crc.png")):
    target.write_bytes((tmp_path / "corrupt" / name).read_bytes())
  config = config_lib.make(
    task="folder",
    data_dir=str(tmp_path / "data"),
    patch_size=64,
    epochs=1,
    batch_size=8,
    test_crops=("aligned",),
    test_fraction=0.25,
    validation_fraction=0.2,
  )
  workdir = tmp_path / "run"
  lines = []
  results = run_lib.train_and_evaluate(config, str(workdir), log=lines.append)
  lost = [
    line
    for line in (workdir / "data_summary.txt").read_text().splitlines()
    if line.startswith("LOST AT RUN TIME")
  ]
  assert sorted(line.split(") ")[1].split(":")[0] for line in lost) == sorted(map(str, bad))
  assert all(line in lines for line in lost) and rundir.is_finished(str(workdir))
  test_lost = sum("(test)" in line for line in lost)
  assert results["n_images"].iloc[0] == int(tasks.get(config.task).num_images["test"]) - test_lost


def test_each_worker_of_a_cluster_writes_its_own_folder():
  def resolver(spec, kind, index):
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
      tf.train.ClusterSpec(spec), task_type=kind, task_id=index
    )

  workers = {"worker": ["a:1", "b:1"]}
  assert distribute.worker_workdir("w", resolver(workers, "worker", 0)) == "w"
  assert distribute.worker_workdir("w", resolver(workers, "worker", 1)) == os.path.join(
    "w", "worker1"
  )
  with_chief = {"chief": ["c:1"], "worker": ["a:1"]}
  assert distribute.worker_workdir("w", resolver(with_chief, "chief", 0)) == "w"
  assert distribute.worker_workdir("w", resolver(with_chief, "worker", 0)) == os.path.join(
    "w", "worker0"
  )
  assert distribute.cluster_workers(resolver(with_chief, "worker", 0)) == 2
  assert distribute.cluster_workers(resolver({}, None, None)) == 1


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_batch_progress_bar_on_a_terminal_only():
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
  model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
  data = (np.zeros((12, 2), np.float32), np.zeros(12, np.int32))
  terminal, log = _Terminal(), io.StringIO()
  for stream in (terminal, log):
    model.fit(
      *data, batch_size=4, epochs=2, verbose=0, callbacks=[schedule.BatchProgress(3, 2, stream)]
    )
  shown = terminal.getvalue()
  assert "epoch 1/2: [" in shown and "epoch 2/2: [" in shown and "3/3 batches" in shown
  assert shown.count("\n") == 2  # one finished line per epoch
  assert log.getvalue() == ""  # a log gets the epoch's own line, printed by the loop


def test_the_baseline_resumes_as_the_schedule_does(tmp_path, cache, monkeypatch):
  """One resume mechanism: a baseline stopped after its first epoch and started
  again continues from state.json and latest.keras, and ends with the weights
  of an uninterrupted run (each epoch's shuffle is drawn from (seed, epoch))."""
  monkeypatch.setenv("TFJPEG_CACHE", str(cache))
  config = config_lib.make(
    recipe="baseline", net="minimal", epochs=2, batch_size=64, builtin_scenes=16, test_qfs=(None,)
  )
  task = tasks.get(config.task)

  def fit(workdir, stop_after=None, lines=None):
    os.makedirs(workdir / "checkpoints", exist_ok=True)

    def log(line):
      if lines is not None:
        lines.append(line)
      if stop_after and line.startswith(f"epoch {stop_after}/"):
        preemption._STOP.set()  # what SIGTERM sets  # pylint: disable=protected-access

    keras.utils.set_random_seed(0)
    with preemption.stop_on_sigterm():
      return baseline.fit(config, task, str(workdir), log)

  # Uninterrupted, through the whole run: the recipe's results and files.
  results = run_lib.train_and_evaluate(config, str(tmp_path / "whole"), log=lambda line: None)
  assert tuple(results.columns) == evaluation.RESULT_COLUMNS and len(results) == 2
  assert (results["balanced_accuracy_low"] <= results["balanced_accuracy"]).all()
  _, whole = classifier.load_model(str(tmp_path / "whole"))  # its last epoch's weights
  # Fixed patches: one epoch of the training and the validation images, drawn once.
  pipeline = input_pipeline.PipelineConfig.for_run(config, task)
  patches, labels = baseline.fixed_patches(task, pipeline)
  count = (task.num_images["train"] + task.num_images["validation"]) * task.patches_per_image
  assert patches.shape == (count, 64, 64, 3) and labels.shape == (count,)
  np.testing.assert_array_equal(patches, baseline.fixed_patches(task, pipeline)[0])
  with pytest.raises(preemption.Preempted, match="1 epoch"):
    fit(tmp_path / "split", stop_after=1)
  assert json.loads((tmp_path / "split" / "checkpoints" / "state.json").read_text())["epoch"] == 1
  lines = []
  resumed = fit(tmp_path / "split", lines=lines)
  epochs = [line.split(":")[0] for line in lines if line.startswith("epoch")]
  assert epochs == ["epoch 2/2"] and "(baseline)" in lines[-1]  # the first is not redone
  for a, b in zip(whole.get_weights(), resumed.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
