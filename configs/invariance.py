"""The three answers to misalignment side by side, on the built-in camera task.

    bin/study --config=configs/invariance.py --seeds=0,1,2
    bin/plot --table=studies/invariance/table.csv

A forensic net trained on crops aligned to the JPEG grid collapses on
misaligned ones (experiment 1). Three answers: train on random crops (the
paper's); find the grid at test time and move the crop onto it
(`realigned`); or a net that cannot see the grid, anti-aliased (`blur`,
BlurPool) or with adaptive polyphase sampling (`aps`, circular padding).
`hpf` on `cameras`, every image saved whole at QF 100 first (experiment 1's
lattice), the paper's rule at CPU scale as in configs/mini.py but on half
the scenes (100) for 4 epochs: the blur and aps nets train 4-6 times slower
(bin/benchmark --sections=antialias). {none, blur, aps} x {aligned, random}
training crops, tested on aligned, misaligned and realigned crops, as stored
and after the whole image is saved again at QF 75, and swept over all 64
grid phases (the per-offset maps). 6 runs a seed; the README's 18 runs
took about 100 minutes on 2 busy cores, three bin/study processes at a time
(a blur or aps run 15-25 minutes, a plain one 5-8). bin/plot writes
invariance.csv (mean ± sd and 95% interval over seeds, and each net's spread
over the 64 phases) and invariance.png beside the table.
"""

from tfjpeg import config
from tfjpeg.experiments import study

ANTIALIAS = ("none", "blur", "aps")
BASE = config.make(**dict(config.PAPER_RULE_ON_CPU, epochs=4, builtin_scenes=100))


def get_study(task="cameras", net="hpf", antialias=ANTIALIAS, filter_size=4):
  runs = tuple(
    (
      f"invariance_{task}_{net}_{mode}_train-{crop}",
      config.replace(
        BASE,
        experiment="invariance",
        variant=mode,
        task=task,
        net=net,
        antialias=mode,
        antialias_filter=filter_size,
        lattice_qf=100,
        train_crop=crop,
        test_crops=("aligned", "misaligned", "realigned"),
        test_qfs=(None,),
        test_chains=("jpeg:75",),
        offset_periods=(8,),
      ),
    )
    for mode in antialias
    for crop in ("aligned", "random")
  )
  return study.Study("invariance", runs)
