"""The paper's training rule for one run: bin/train with it, on any task and net.

    bin/train --config=paper --task=imagenet --net=xception --data_dir=/data/ILSVRC2012 \
        --weights=imagenet

Adam at 1e-3, the rate cut by 10 when the validation loss has not improved
for 10 epochs, a stop after 20, at most 100 epochs, the weights of the best
validation loss (Mandelli et al., WIFS 2020); tested on aligned and random
crops, as stored and at QF 50..99. Without flags it runs on the built-in
camera task with the compact `hpf` net, which takes about 30 minutes on 2
cores; the paper's nets and datasets are GPU work.
"""

from tfjpeg import config


def get_config():
  return config.make(
    task="cameras",
    net="hpf",
    test_crops=("aligned", "random"),
    test_qfs=(None, 50, 60, 70, 80, 90, 99),
  )
