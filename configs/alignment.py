"""Experiment 1 of the paper, JPEG-grid alignment, on the paper's grid.

    bin/study --config=configs/alignment.py \
        --data_dirs=vision=/data/VISION,gan=/data/cyclegan,imagenet=/data/ILSVRC2012,lsun=/data/lsun

Every image is compressed at QF 100 first; nets train on grid-aligned or
random crops and are tested on both. Produces studies/alignment/table.csv and,
with `bin/plot --table=studies/alignment/table.csv`, the paper's Fig. 1.
The paper's grid is 4 tasks x 4 ImageNet-initialised nets (GPU work);
`--tasks` and `--nets` choose others.
"""

from tfjpeg import config
from tfjpeg.experiments import study


def get_study(tasks=study.PAPER_TASKS, nets=study.PAPER_NETS):
  base = config.make(weights="imagenet", epochs=100, batch_size=32)
  return study.Study("alignment", study.alignment_runs(tasks, nets, base))
