"""Beyond the paper: the JPEG grid on the built-in forensic tasks, on a CPU.

    bin/study --config=configs/grid.py
    bin/evaluate --workdir=studies/grid/runs/grid_cameras_random_cfa_hpf_train-aligned8 \
        --builtin_seed=2026 --test_crops=aligned,random,realigned

Alignment and chroma (whole images at QF 100 first, 4:2:0, as in the paper's
experiment 1): training crops aligned to the 8-pixel luma grid, to the
16-pixel 4:2:0 MCU, or random; tested on aligned, random and realigned crops,
and swept over all 16x16 grid phases (`offset_periods`), which holds the
8x8 map, the displacement curve and the 8-against-16 comparison.
Double compression (no lattice QF, random crops): no augmentation, single
augmentation at QF 70 or 90, or double (QF1 60/70/80, crop, QF2 90); tested
single and double (whole image at QF 70, crop aligned or random, QF 90).
The second command tests a trained net on scenes generated anew.
`cameras_random_cfa` locks only the JPEG grid to the image origin; `cameras`
also locks the 2x2 colour-filter phase, as real camera originals do, which the
per-offset maps tell apart. Each task and net gets 6 runs; then the vision
task `shapes` with its compact net `plain` gets the two alignment runs with an
8x8 sweep, to see whether a vision net cares where the grid falls. 26 runs,
about 50 minutes on 2 cores.
"""

from tfjpeg import config
from tfjpeg.experiments import study

BASE = config.make(**config.PAPER_RULE_ON_CPU)
VISION_BASE = config.make(**dict(config.PAPER_RULE_ON_CPU, epochs=12))


def get_study(
  tasks=("cameras_random_cfa", "cameras"), nets=("hpf", "bayar"), vision=(("shapes", "plain"),)
):
  runs = ()
  for task in tasks:
    for net in nets:
      common = config.replace(BASE, experiment="grid", task=task, net=net)
      for name, crop, grid in (
        ("aligned8", "aligned", 8),
        ("aligned16", "aligned", 16),
        ("random", "random", 8),
      ):
        runs += (
          (
            f"grid_{task}_{net}_train-{name}",
            config.replace(
              common,
              lattice_qf=100,
              train_crop=crop,
              crop_grid=grid,
              test_crops=("aligned", "aligned16", "random", "realigned"),
              offset_periods=(16,),
            ),
          ),
        )
      for name, train_qfs, double_qfs in (
        ("none", (), ()),
        ("single", (70, 90), ()),
        ("double", (90,), (60, 70, 80)),
      ):
        runs += (
          (
            f"grid_{task}_{net}_double-{name}",
            config.replace(
              common,
              train_crop="random",
              train_qfs=train_qfs,
              double_qfs=double_qfs,
              test_crops=("aligned", "random"),
              test_qfs=(None, 90),
              test_first_qfs=(None, 70),
            ),
          ),
        )
  for task, net in vision:
    for crop in ("aligned", "random"):
      runs += (
        (
          f"grid_{task}_{net}_train-{crop}",
          config.replace(
            VISION_BASE,
            experiment="grid",
            task=task,
            net=net,
            lattice_qf=100,
            train_crop=crop,
            test_crops=("aligned", "random", "realigned"),
            offset_periods=(8,),
          ),
        ),
      )
  return study.Study("grid", runs)
