"""Both experiments on the two built-in tasks with compact nets, on a CPU.

    bin/study --config=configs/mini.py --seeds=0,1,2 && bin/plot --table=studies/mini/table.csv

Each built-in task gets the compact net made for its kind: `hpf` (fixed
high-pass front end) for the forensic `cameras`, `plain` (a plain small CNN)
for the vision `shapes`; no compact net does both well (`hpf` discards content,
`plain` forensic detail). `--nets=...` puts the same nets on both.
Alignment (aligned or random training crops, whole images at QF 100 first) and
quality (no augmentation, or QF 50 on half the patches, the paper's low-QF
augmentation; tested uncompressed and at QF 50..99): 8 runs, about 17
minutes a seed on 2 cores. With --seeds=0,1,2 (the README's tables),
summary.csv holds mean, sd and 95% intervals over seeds.
Produces studies/mini/table.csv and .parquet; bin/plot makes the README figures.
"""

from tfjpeg import config
from tfjpeg.experiments import study

TASKS = ("cameras", "shapes")
NET_FOR = {"cameras": "hpf", "shapes": "plain"}
# The paper's rule at CPU scale, as when the README's tables were made; the small
# vision task needs more epochs.
BASE = {
  "cameras": config.make(**config.PAPER_RULE_ON_CPU),
  "shapes": config.make(**dict(config.PAPER_RULE_ON_CPU, epochs=12)),
}


def get_study(tasks=TASKS, nets=None):
  runs = ()
  for task in tasks:
    task_nets = nets or (NET_FOR[task],)
    base = BASE.get(task, BASE["cameras"])
    runs += study.alignment_runs((task,), task_nets, base)
    runs += study.quality_runs((task,), task_nets, train_qfs=(50,), base=base)
  return study.Study("mini", runs)
