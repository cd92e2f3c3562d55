"""The default run: the built-in forensic task, the default compact net, on a CPU.

    bin/train --workdir=runs/default

Trains `hpf` on `cameras` (four simulated cameras, 64x64 patches) with the
default recipe (`config.DEFAULT_RECIPE`: 6 epochs at a constant rate, the last
epoch's weights, every patch of an epoch shuffled together), then prints
balanced accuracy on aligned and random test crops, uncompressed and at QF 50.
The paper's rule (best validation loss, rate cut on a plateau) is what the
paper presets use: `--select=val_loss --lr_patience=10 --stop_patience=20`.
"""

from tfjpeg import config


def get_config():
  return config.make(
    task="cameras",
    net="hpf",
    test_crops=("aligned", "random"),
    test_qfs=(None, 50),
    **config.DEFAULT_RECIPE,
  )
