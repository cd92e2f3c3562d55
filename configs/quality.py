"""Experiment 2 of the paper, quality factor, on the paper's grid.

    bin/study --config=configs/quality.py \
        --data_dirs=vision=/data/VISION,gan=/data/cyclegan,imagenet=/data/ILSVRC2012,lsun=/data/lsun

Random crops; training without augmentation or with half of the patches
compressed at one QF of 50, 60, 70, 80, 90, 99; tests uncompressed and at each
of those QFs. Produces studies/quality/table.csv and, with `bin/plot`, the
paper's Figs. 2-5 (accuracy against test QF, and heatmaps). GPU work.
"""

from tfjpeg import config
from tfjpeg.experiments import study


def get_study(tasks=study.PAPER_TASKS, nets=study.PAPER_NETS):
  base = config.make(weights="imagenet", epochs=100, batch_size=32)
  return study.Study("quality", study.quality_runs(tasks, nets, base=base))
