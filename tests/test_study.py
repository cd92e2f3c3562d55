"""Studies: grids of runs, shards, skip and merge; bin/evaluate; the paper's figures."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import plugin_data_pb2

from tfjpeg import config as config_lib
from tfjpeg.analysis import evaluation
from tfjpeg.analysis import plotting
from tfjpeg.analysis import tables
from tfjpeg.experiments import study
from tfjpeg.train import rundir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET = """
from tfjpeg import config
from tfjpeg.experiments import study

def get_study(tasks=("cameras",), nets=("hpf",)):
  base = config.make(epochs=1, steps_per_epoch=3, batch_size=16, builtin_scenes=16)
  return study.Study("tiny", study.alignment_runs(tasks, nets, base, ("aligned", "random")))
"""


def test_paper_grids():
  alignment = dict(study.alignment_runs(study.PAPER_TASKS, study.PAPER_NETS))
  quality = dict(study.quality_runs(study.PAPER_TASKS, study.PAPER_NETS))
  assert len(alignment) == 4 * 4 * 2 and len(quality) == 4 * 4 * 7
  run = alignment["alignment_vision_xception_train-aligned"]
  assert (run.jpeg.lattice_qf, run.jpeg.train_crop) == (100, "aligned")
  assert run.test.crops == ("aligned", "random", "realigned")
  run = quality["quality_gan_resnet50_aug-50"]
  assert run.jpeg.train_qfs == (50,) and run.jpeg.aug_fraction == 0.5
  assert run.jpeg.train_crop == "random"
  assert run.test.qfs == (None, 50, 60, 70, 80, 90, 99) and run.jpeg.lattice_qf is None
  assert quality["quality_gan_resnet50_aug-none"].jpeg.train_qfs == ()


@pytest.mark.parametrize("name", ["alignment", "quality", "mini", "real", "nets"])
def test_presets_load_and_start_with_their_command(name):
  path = os.path.join(REPO, "configs", f"{name}.py")
  assert f"bin/study --config=configs/{name}.py" in open(path).read().split('"""')[1]
  preset = config_lib.load_preset(path, "get_study")
  assert preset.runs
  small = config_lib.load_preset(path, "get_study", tasks=("cameras",), nets=("bondi",))
  assert {c.task.name for _, c in small.runs} == {"cameras"}


def test_shards_cover_the_grid_once():
  runs = tuple(range(11))
  parts = [study.shard(runs, *study.parse_shard(f"{i}/3")) for i in (1, 2, 3)]
  assert sorted(sum(parts, ())) == list(runs)
  with pytest.raises(ValueError, match="i/n"):
    study.parse_shard("2")
  with pytest.raises(ValueError, match="1..n"):
    study.parse_shard("4/3")


def _hparams_plugin_data(logdir, field):
  """The first HParams plugin message with `field` in logdir's event files."""
  for path in sorted(logdir.glob("events.out.tfevents*")):
    for record in tf.data.TFRecordDataset(str(path)):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == "hparams":
          data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
          if data.HasField(field):
            return getattr(data, field)
  raise AssertionError(f"no HParams {field} in {logdir}")


def test_study_cli_shards_skips_and_merges(tmp_path):
  preset = tmp_path / "tiny.py"
  preset.write_text(PRESET)
  env = dict(
    os.environ,
    TFJPEG_CACHE=str(tmp_path / "cache"),
    TF_CPP_MIN_LOG_LEVEL="2",
    CUDA_VISIBLE_DEVICES="",
  )
  command = [
    sys.executable,
    os.path.join(REPO, "bin", "study"),
    f"--config={preset}",
    f"--study_dir={tmp_path / 'study'}",
  ]
  first = subprocess.run(
    command + ["--shard=1/2"], env=env, check=True, capture_output=True, text=True
  )
  runs = tmp_path / "study" / "runs"
  assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == [
    "alignment_cameras_hpf_train-aligned"
  ]
  assert "2 rows from 1 runs" in first.stdout
  # The whole study: shard 2's run trained, shard 1's skipped, both merged.
  everything = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
  assert everything.stdout.count("finished, skipped") == 1
  table = pd.read_csv(tmp_path / "study" / "table.csv", keep_default_na=False)
  assert len(table) == 4 and set(table["train_crop"]) == {"aligned", "random"}
  for column in evaluation.RESULT_COLUMNS + ("experiment", "lattice_qf", "seed", "epochs", "run"):
    assert column in table.columns
  assert (table["lattice_qf"] == 100).all()
  # The lattice images were computed once, into the cache the runs name.
  summary = (runs / "alignment_cameras_hpf_train-random" / "data_summary.txt").read_text()
  assert f"lattice images (QF 100) read from {tmp_path / 'cache' / 'lattice'}" in summary
  assert len(list((tmp_path / "cache" / "lattice").rglob("*.jpg"))) > 0
  parquet = pd.read_parquet(tmp_path / "study" / "table.parquet")
  assert len(parquet) == 4 and list(parquet.columns) == list(table.columns)
  # HParams: the study declares the settings that differ between its runs and
  # the test metrics; each trial is named after its run.
  columns = _hparams_plugin_data(runs, "experiment")
  assert [h.name for h in columns.hparam_infos] == ["train_crop"]
  assert [m.name.tag for m in columns.metric_infos] == [
    "test/aligned_qfnone/balanced_accuracy",
    "test/random_qfnone/balanced_accuracy",
  ]
  trial = _hparams_plugin_data(
    runs / "alignment_cameras_hpf_train-random" / "logs" / "hparams", "session_start_info"
  )
  assert trial.group_name == "alignment_cameras_hpf_train-random"
  assert trial.hparams["train_crop"].string_value == "random"

  # bin/evaluate adds conditions to a finished run, with confusion matrices.
  workdir = runs / "alignment_cameras_hpf_train-random"
  subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "bin", "evaluate"),
      f"--workdir={workdir}",
      "--test_crops=misaligned",
      "--test_qfs=none,75",
    ],
    env=env,
    check=True,
    capture_output=True,
  )
  results = pd.read_csv(workdir / "results.csv", keep_default_na=False)
  assert len(results) == 4  # aligned/none, random/none, misaligned/none, misaligned/75
  assert {("misaligned", "none"), ("misaligned", "75"), ("aligned", "none")} <= set(
    zip(results["test_crop"], results["test_qf"].astype(str))
  )
  assert (workdir / "confusion_misaligned_qf75.png").exists()
  assert (workdir / "confusion_misaligned_qf75.csv").exists()

  # Double compression as a test condition, and the per-offset sweep.
  subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "bin", "evaluate"),
      f"--workdir={workdir}",
      "--test_crops=random",
      "--test_qfs=90",
      "--test_first_qfs=60",
      "--per_offset",
    ],
    env=env,
    check=True,
    capture_output=True,
  )
  results = pd.read_csv(workdir / "results.csv", keep_default_na=False)
  assert len(results) == 5
  double = results[results["test_first_qf"].astype(str) == "60"]
  assert double[["test_crop", "test_qf"]].astype(str).values.tolist() == [["random", "90"]]
  assert (workdir / "confusion_random_qf90_first60.csv").exists()
  sweep = pd.read_csv(workdir / "offsets_qf90_first60.csv")
  assert len(sweep) == 81 and set(sweep["n_patches"]) == {int(double["n_images"].iloc[0])}
  summary = pd.read_csv(workdir / "offsets_summary.csv")
  assert summary[["period", "test_qf", "test_first_qf"]].astype(str).values.tolist() == [
    ["8", "90", "60"]
  ]
  assert (workdir / "offsets_qf90_first60.png").exists()
  plotted = subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "bin", "plot"),
      f"--offsets={workdir / 'offsets_qf90_first60.csv'}",
      f"--out={tmp_path / 'offsets'}",
    ],
    env=env,
    check=True,
    capture_output=True,
    text=True,
  )
  assert plotted.stdout.split() == [str(tmp_path / "offsets.png"), str(tmp_path / "offsets.pdf")]

  # Scenes generated anew: results go beside the run's own, not into them.
  subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "bin", "evaluate"),
      f"--workdir={workdir}",
      "--test_crops=aligned",
      "--test_qfs=none",
      "--builtin_seed=7",
      "--per_offset",
    ],
    env=env,
    check=True,
    capture_output=True,
  )
  unseen = pd.read_csv(workdir / "builtin_seed7" / "results.csv")
  assert len(unseen) == 1 and unseen["n_images"].iloc[0] > 0
  unseen_sweep = pd.read_csv(workdir / "builtin_seed7" / "offsets_qfnone.csv")
  assert set(unseen_sweep["n_patches"]) == {int(unseen["n_images"].iloc[0])}
  assert len(pd.read_csv(workdir / "results.csv")) == 5
  assert not (workdir / "offsets_qfnone.csv").exists()  # the run's own files untouched


def _fake_table():
  rows = []
  for task in ("cameras", "shapes"):
    for crop in ("aligned", "random"):
      for test in ("aligned", "random"):
        rows.append(
          dict(
            experiment="alignment",
            task=task,
            net="hpf",
            train_crop=crop,
            test_crop=test,
            train_qf="none",
            test_qf="none",
            balanced_accuracy=0.5 if (crop, test) == ("aligned", "random") else 0.9,
          )
        )
    for train_qf in ("none", "50"):
      for test_qf in ("none", "50", "90"):
        rows.append(
          dict(
            experiment="quality",
            task=task,
            net="hpf",
            train_crop="random",
            test_crop="random",
            train_qf=train_qf,
            test_qf=test_qf,
            balanced_accuracy=np.random.default_rng(0).uniform(),
          )
        )
  return pd.DataFrame(rows)


def test_figures_from_the_table_alone(tmp_path):
  path = tmp_path / "table.csv"
  _fake_table().to_csv(path, index=False)
  made = study.figures(str(path))
  names = sorted(os.path.basename(p) for p in made)
  assert names == [
    "fig1_alignment.pdf",
    "fig1_alignment.png",
    "quality_cameras_hpf.pdf",
    "quality_cameras_hpf.png",
    "quality_shapes_hpf.pdf",
    "quality_shapes_hpf.png",
  ]
  assert all(os.path.getsize(p) > 1000 for p in made)
  with pytest.raises(ValueError, match="not a study table"):
    pd.DataFrame(dict(a=[1])).to_csv(tmp_path / "bad.csv", index=False)
    study.figures(str(tmp_path / "bad.csv"))


def test_seeds_repeat_every_run_with_a_new_split():
  base = study.Study("s", (("a", config_lib.make(net="hpf")), ("b", config_lib.make(net="bayar"))))
  seeded = study.with_seeds(base, ["0", "2"])
  assert [n for n, _ in seeded.runs] == ["a_seed0", "a_seed2", "b_seed0", "b_seed2"]
  assert [(c.schedule.seed, c.task.split_seed) for _, c in seeded.runs][:2] == [(0, 0), (2, 2)]
  same = study.with_seeds(base, [1, 2], new_split=False)
  assert {c.task.split_seed for _, c in same.runs} == {0}
  with pytest.raises(ValueError, match="repeat"):
    study.with_seeds(base, [1, 1])


def test_summary_gives_mean_and_spread_over_seeds():
  rows = []
  for net, values in (("hpf", (0.6, 0.8, 0.7)), ("minimal", (0.5, 0.5, 0.5))):
    for seed, value in enumerate(values):
      for crop in ("aligned", "random"):
        rows.append(
          dict(
            task="t",
            net=net,
            train_crop="random",
            train_qf="none",
            test_crop=crop,
            test_qf="none",
            test_first_qf="none",
            balanced_accuracy=value if crop == "aligned" else value / 2,
            n_images=10,
            run=f"{net}_seed{seed}",
            seed=seed,
            split_seed=seed,
            data_dir=None,
          )
        )
  summary = tables.summarize(pd.DataFrame(rows))
  assert len(summary) == 4 and set(summary["n_seeds"]) == {3}
  hpf = summary[(summary["net"] == "hpf") & (summary["test_crop"] == "aligned")].iloc[0]
  assert hpf["balanced_accuracy_mean"] == pytest.approx(0.7)
  assert hpf["balanced_accuracy_sd"] == pytest.approx(0.1)  # sample sd, ddof 1
  assert "seed" not in summary.columns and "run" not in summary.columns


def test_figures_show_spread_over_seeds(tmp_path, monkeypatch):
  # Two seeds of the same table with different values: error bars are drawn.
  table = pd.concat(
    [
      _fake_table().assign(
        seed=s, balanced_accuracy=lambda t, s=s: t["balanced_accuracy"] * (1 - 0.2 * s)
      )
      for s in (0, 1)
    ],
    ignore_index=True,
  )
  bars = []
  real_bar = plotting._pyplot().Axes.bar
  monkeypatch.setattr(
    plotting._pyplot().Axes,
    "bar",
    lambda self, *a, **k: bars.append(k.get("yerr")) or real_bar(self, *a, **k),
  )
  plotting.alignment_figure(table, str(tmp_path))
  assert bars and all(e is not None and max(e) > 0 for e in bars)


def test_real_photo_study_compares_recipes_in_one_figure(tmp_path):
  preset = config_lib.load_preset(os.path.join(REPO, "configs", "real.py"), "get_study")
  variants = {(c.variant, c.net, c.schedule.recipe) for _, c in preset.runs}
  assert variants == {
    ("default", "hpf", "schedule"),
    ("baseline", "minimal", "baseline"),
    ("paper-rule", "hpf", "schedule"),
    ("moving-bn", "hpf", "schedule"),
  }
  default = [c for _, c in preset.runs if c.variant == "default"][0]
  assert (
    default.schedule.precise_bn_batches
    and default.schedule.select == "last"
    and default.jpeg.lattice_qf == 100
  )
  table = _fake_table().query("experiment == 'alignment'")
  table = pd.concat([table.assign(experiment="real", variant=v) for v in ("default", "baseline")])
  made = study.figures(str(_write(table, tmp_path / "real.csv")))
  assert sorted(os.path.basename(p) for p in made) == ["real_photos.pdf", "real_photos.png"]


def _write(table, path):
  table.to_csv(path, index=False)
  return path


def _fake_run(workdir, config, marker=True):
  workdir.mkdir(parents=True)
  (workdir / "config.json").write_text(config.to_json())
  pd.DataFrame(
    [
      dict(
        task=config.task.name,
        net=config.net,
        train_crop=config.jpeg.train_crop,
        train_qf="none",
        test_crop="aligned",
        test_qf="none",
        test_first_qf="none",
        balanced_accuracy=0.9,
      )
    ]
  ).to_csv(workdir / "results.csv", index=False)
  if marker:
    rundir.mark_finished(str(workdir))


def test_only_marked_runs_count_and_skips_check_the_preset(tmp_path):
  saved = config_lib.make(epochs=3, lr_patience=2)
  preset = study.Study("s", (("done", saved), ("killed", saved)))
  _fake_run(tmp_path / "runs" / "done", saved)
  _fake_run(tmp_path / "runs" / "killed", saved, marker=False)  # killed during a sweep
  table = study.merge(preset, str(tmp_path))
  assert list(table["run"]) == ["done"]
  # A preset edited since: the finished run is not merged under the new settings...
  edited = study.Study("s", (("done", config_lib.replace(saved, epochs=9, lr_patience=None)),))
  assert study.merge(edited, str(tmp_path))["epochs"].tolist() == [3]
  # ...and running it stops with the fields named.
  with pytest.raises(ValueError, match=r"differs in \['epochs', 'lr_patience'\]"):
    study.run(edited, str(tmp_path), log=lambda _: None)
  lines = []
  study.run(study.Study("s", (("done", saved),)), str(tmp_path), log=lines.append)
  assert lines == ["[1/1] done: finished, skipped"]
