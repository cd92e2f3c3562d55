"""Did the net learn the task, or the file format? The shortcut study on the built-in tasks.

    bin/study --config=configs/shortcut.py --seeds=0,1,2

`generated_confounded` stores its real photos as JPEG (QF 96, as GenImage's
mostly are) and its generated images as PNG, as public real-against-generated
datasets do; `generated` holds the same kind of scenes with both classes stored
as JPEG at QF 96. The true signal is a faint up-sampling trace in the generated
images (tfjpeg.data.builtin). Three runs a seed, `hpf` with the default recipe on
random crops, each tested as stored, under the compression swap (the generated
test images saved as JPEG at the real ones' QF) and with every test image saved
at one common QF:
  unconfounded   trained on `generated`: is the true signal learnable?
  confounded     trained plainly on `generated_confounded`: does it learn the format?
  matched        the same with --match_compression: does the recipe remove the shortcut?
`bin/audit --task=generated_confounded` flags the task before any training.
With --seeds each run is repeated on a new split per seed; summary.csv has the
mean and standard deviation over seeds (the README's table, docs/shortcut/).
About 20 minutes a seed on 2 cores.
"""

from tfjpeg import config
from tfjpeg.experiments import study

SCENES = 640  # 128 test scenes a seed: 256 test images, 1,024 test patches
BASE = config.make(
  net="hpf",
  train_crop="random",
  test_crops=("random",),
  test_qfs=(None,),
  test_resaves=("swap", "common"),
  builtin_scenes=SCENES,
  experiment="shortcut",
  **config.DEFAULT_RECIPE,
)
VARIANTS = {
  "unconfounded": dict(task="generated"),
  "confounded": dict(task="generated_confounded"),
  "matched": dict(task="generated_confounded", match_compression=True),
}


def get_study(tasks=None, nets=None):
  del tasks  # the study is about these two tasks
  base = config.replace(BASE, net=nets[0]) if nets else BASE
  return study.Study(
    "shortcut",
    tuple(
      (f"shortcut_{name}", config.replace(base, variant=name, **settings))
      for name, settings in VARIANTS.items()
    ),
  )
