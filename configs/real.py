"""Real photos: the default recipe beside the reference baseline, over seeds.

    bin/study --config=configs/real.py --seeds=0,1,2

For each real-photo task (generated once from ../shared/data: compression
history, and the simulated cameras shooting real scenes), the paper's
experiment 1: every image compressed whole at QF 100 first, training crops
aligned to the JPEG grid or random, tested on aligned, random and realigned
crops. Each setting is trained three ways: the default net with the default
recipe (`config.DEFAULT_RECIPE`); the reference baseline (`tfjpeg.train.baseline`:
the minimal CNN in a plain Keras loop on fixed patches,
`config.BASELINE_RECIPE`); the default net with the paper's rule at CPU
scale (best validation loss, rate cut after 2 epochs without a better one,
Keras's moving batch-norm averages, a 1024-patch shuffle buffer: the default
recipe before the real-photo tasks); and the default recipe with Keras's
moving batch-norm averages instead of precise BN (what that one change buys).
With --seeds every run is repeated on a new split per seed; summary.csv has
the mean and standard deviation over seeds, and `bin/plot
--table=studies/real/table.csv` draws them. 16 runs a seed, about 28 minutes
a seed on 2 cores.
"""

from tfjpeg import config
from tfjpeg.experiments import study

RECIPES = {
  "default": dict(net="hpf", **config.DEFAULT_RECIPE),
  "baseline": config.BASELINE_RECIPE,
  "paper-rule": dict(net="hpf", **config.PAPER_RULE_ON_CPU),
  "moving-bn": dict(net="hpf", **dict(config.DEFAULT_RECIPE, precise_bn_batches=0)),
}


def get_study(tasks=("real_history", "real_cameras"), nets=None):
  runs = ()
  for recipe, settings in RECIPES.items():
    if nets:  # the same recipe with other nets
      settings = dict(settings, net=nets[0])
    base = config.make(**settings)
    runs += tuple(
      (f"{name}_{recipe}", config.replace(c, experiment="real", variant=recipe))
      for name, c in study.alignment_runs(tasks, (base.net,), base)
    )
  return study.Study("real", runs)
