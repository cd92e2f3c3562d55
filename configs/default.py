"""The default run: the built-in forensic task, the default compact net, on a CPU.

    bin/train --workdir=runs/default

Trains `hpf` on `cameras` (four simulated cameras, 64x64 patches) with the
paper's schedule shortened to fit a 2-core CPU in a few minutes, then prints
balanced accuracy on aligned and random test crops, uncompressed and at QF 50.
"""

from tfjpeg import config


def get_config():
  return config.Config(task="cameras", net="hpf", epochs=6, batch_size=32,
                       lr_patience=2, stop_patience=4,
                       test_crops=("aligned", "random"), test_qfs=(None, 50))
