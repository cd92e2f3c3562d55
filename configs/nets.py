"""The compact forensic nets side by side on the built-in camera task, over seeds.

    bin/study --config=configs/nets.py --seeds=0,1,2

`hpf`, `bayar` and `bondi` trained on random crops of `cameras` with the
recipe that was the default before the real-photo tasks (the paper's rule at
CPU scale: best validation loss, rate cut after 2 epochs without a better one,
stop after 4, Keras's moving batch-norm averages, a 1024-patch shuffle buffer),
tested on aligned and random crops, as stored and at QF 50. With --seeds each
run is repeated on a new split per seed, and summary.csv has the mean and
standard deviation over seeds: the README's table of nets. 3 runs a seed,
about 5 minutes a seed on 2 cores.
"""

from tfjpeg import config
from tfjpeg.experiments import study

NETS = ("hpf", "bayar", "bondi")
RECIPE = dict(
  config.PAPER_RULE_ON_CPU, select="val_loss", precise_bn_batches=0, shuffle_buffer=1024
)


def get_study(tasks=("cameras",), nets=NETS):
  return study.Study(
    "nets",
    tuple(
      (
        f"nets_{task}_{net}",
        config.replace(
          config.make(**RECIPE),
          experiment="nets",
          task=task,
          net=net,
          train_crop="random",
          test_crops=("aligned", "random"),
          test_qfs=(None, 50),
        ),
      )
      for task in tasks
      for net in nets
    ),
  )
