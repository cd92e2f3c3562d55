"""configs/invariance.py and tfjpeg.analysis.invariance: the study's runs,
and the table (mean, sd, interval over seeds, paired drop, per-offset
spread) and figure bin/plot makes of them."""

import os

import numpy as np
import pandas as pd
import pytest

from tfjpeg import config as config_lib
from tfjpeg.analysis import invariance
from tfjpeg.experiments import study

import helpers as testing

PRESET = os.path.join(testing.REPO, "configs", "invariance.py")


def test_the_preset_starts_with_its_command_and_crosses_three_nets_with_two_crops():
  docstring = open(PRESET).read().split('"""')[1]
  assert "bin/study --config=configs/invariance.py --seeds=0,1,2" in docstring
  assert "bin/plot --table=studies/invariance/table.csv" in docstring
  runs = dict(config_lib.load_preset(PRESET, "get_study").runs)
  assert len(runs) == 6
  assert {(c.antialias, c.jpeg.train_crop) for c in runs.values()} == {
    (mode, crop) for mode in ("none", "blur", "aps") for crop in ("aligned", "random")
  }
  for config in runs.values():
    assert config.experiment == "invariance" and config.jpeg.lattice_qf == 100
    assert config.test.crops == ("aligned", "misaligned", "realigned")
    assert config.test.chains == ("jpeg:75",) and config.test.offset_periods == (8,)
    config_lib.check_runnable(config)


def _phase_table(grid):
  """A sweep's phase table (offsets_qfnone.csv) of an 8x8 map; shift 8 is
  the grid again."""
  rows = [
    dict(dy=dy, dx=dx, balanced_accuracy=grid[dy % 8, dx % 8], score=0.5, n_patches=4)
    for dy in range(9)
    for dx in range(9)
  ]
  return pd.DataFrame(rows)


def test_table_and_figure_of_a_study(tmp_path):
  """Two seeds of a plain and an APS net trained aligned: accuracies by
  condition with their spread, the paired drop, and each map's spread."""
  rows = []
  flat = np.full((8, 8), 0.9)
  peaked = np.full((8, 8), 0.5)
  peaked[0, 0] = 1.0
  accuracy = {  # (antialias, seed) -> aligned, misaligned
    ("none", 0): (1.0, 0.6),
    ("none", 1): (0.9, 0.6),
    ("aps", 0): (0.9, 0.9),
    ("aps", 1): (0.8, 0.7),
  }
  for (mode, seed), (aligned, misaligned) in accuracy.items():
    run = f"invariance_{mode}_train-aligned_seed{seed}"
    os.makedirs(tmp_path / "runs" / run)
    _phase_table(peaked if mode == "none" else flat).to_csv(
      tmp_path / "runs" / run / "offsets_qfnone.csv", index=False
    )
    for crop, chain, value in (
      ("aligned", "none", aligned),
      ("misaligned", "none", misaligned),
      ("aligned", "jpeg:75", aligned - 0.1),
    ):
      rows.append(
        dict(
          experiment="invariance",
          run=run,
          antialias=mode,
          train_crop="aligned",
          seed=seed,
          test_crop=crop,
          test_chain=chain,
          test_qf="none",
          balanced_accuracy=value,
        )
      )
  pd.DataFrame(rows).to_csv(tmp_path / "table.csv", index=False)
  paths = study.figures(str(tmp_path / "table.csv"))
  assert {os.path.basename(p) for p in paths} == {
    "invariance.csv",
    "invariance.png",
    "invariance.pdf",
  }
  table = pd.read_csv(tmp_path / "invariance.csv").set_index("antialias")
  assert list(table.index) == ["none", "aps"]  # none, blur, aps order
  assert table.loc["none", "aligned_mean"] == pytest.approx(0.95)
  assert table.loc["none", "aligned_sd"] == pytest.approx(np.std([1.0, 0.9], ddof=1), abs=1e-4)
  assert table.loc["none", "aligned_ci95"] == pytest.approx(12.706 * 0.0707 / np.sqrt(2), 1e-3)
  assert table.loc["aps", "misaligned_mean"] == pytest.approx(0.8)
  assert table.loc["none", "aligned jpeg:75_mean"] == pytest.approx(0.85)
  assert table.loc["none", "drop_mean"] == pytest.approx(0.35)  # 0.4 and 0.3, paired
  assert table.loc["aps", "drop_mean"] == pytest.approx(0.05)
  assert table.loc["none", "phase_spread_mean"] == pytest.approx(0.5)
  assert table.loc["aps", "phase_spread_mean"] == pytest.approx(0.0)
  assert (table["n_seeds"] == 2).all()


def test_a_table_without_invariance_runs_is_refused():
  with pytest.raises(ValueError, match="no invariance runs"):
    invariance.summarize(pd.DataFrame(dict(experiment=["mini"], test_qf=["none"])), {})
