"""Resizing: a net trained without resizing against the same net trained with a
resize-and-JPEG chain, tested as stored, resized and under Corvi et al.'s
protocol, on a forensic, a real-photo and a vision task.

    bin/study --config=configs/resize.py --seeds=0,1,2

Tasks: the built-in forensic `cameras` (hpf), the real-photo `real_history`
(hpf; compression history of Kodak and McMaster tiles, from ../shared/data)
and the built-in vision `shapes` (plain, drawn at 160 pixels so that a halved
image still holds a 64-pixel patch). Each is trained twice on random
crops: without a chain (`no-chain`), and with every training image first
resized by a factor drawn in 0.5..1.5 (bicubic, half of the images) and
then saved at a QF drawn in 65..100 (half of them): `TRAIN_CHAIN`. Both are
tested on random crops as stored, downscaled by 0.5 and 0.75, upscaled by
1.5, and under `corvi2023` (a random square crop of 160..2048 pixels resized
to 200x200, then JPEG at 65..100). 6 runs a seed, about 20 minutes a seed
on 2 cores; summary.csv gives mean, sd and 95% intervals over seeds.
"""

from tfjpeg import config
from tfjpeg.experiments import study

TRAIN_CHAIN = "resize:0.5..1.5@0.5>jpeg:65..100@0.5"
TEST_CHAINS = ("resize:0.5", "resize:0.75", "resize:1.5", "corvi2023")
NET_FOR = {"cameras": "hpf", "real_history": "hpf", "shapes": "plain"}
# Images large enough for a patch of 64 after halving: the cameras' 128 and
# real_history's 240-pixel tiles are; the shapes are drawn at 160, not 96.
IMAGE_SIZE = {"shapes": 160}
RECIPE_FOR = {
  "cameras": config.PAPER_RULE_ON_CPU,
  "real_history": config.DEFAULT_RECIPE,
  "shapes": dict(config.PAPER_RULE_ON_CPU, epochs=12),
}


def get_study(tasks=tuple(NET_FOR), nets=None):
  runs = []
  for task in tasks:
    base = config.make(
      task=task,
      net=(nets or (NET_FOR[task],))[0],
      experiment="resize",
      train_crop="random",
      test_crops=("random",),
      test_qfs=(None,),
      test_chains=TEST_CHAINS,
      image_size=IMAGE_SIZE.get(task),
      **RECIPE_FOR[task],
    )
    for variant, chain in (("no-chain", "none"), ("chain", TRAIN_CHAIN)):
      runs.append(
        (f"resize_{task}_{variant}", config.replace(base, variant=variant, train_chain=chain))
      )
  return study.Study("resize", tuple(runs))
