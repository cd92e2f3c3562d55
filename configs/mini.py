"""Both experiments on the two built-in tasks with the default compact net, on a CPU.

    bin/study --config=configs/mini.py && bin/plot --table=studies/mini/table.csv

Alignment (2 tasks x aligned/random training) and quality (2 tasks x no
augmentation or QF 50/70/90 augmentation, tested uncompressed and at QF
50..99): 12 runs with the CPU schedule of configs/default.py, about 15 minutes
on 2 cores. Produces studies/mini/table.csv, .parquet, and the figures in the
README.
"""

import dataclasses

from tfjpeg import config
from tfjpeg import study

TASKS = ("cameras", "shapes")
NETS = ("hpf",)


def get_study(tasks=TASKS, nets=NETS):
  base = config.Config(epochs=6, batch_size=32, lr_patience=2, stop_patience=4)
  runs = (study.alignment_runs(tasks, nets, base)
          + study.quality_runs(tasks, nets, train_qfs=(50, 70, 90), base=base))
  return study.Study("mini", runs)
