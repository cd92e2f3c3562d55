"""Wang et al., CVPR 2020 (CNNDetection): the Blur+JPEG(0.5) training recipe.

    bin/train --config=wang2020 --task=folder --data_dir=/data/progan_train
    bin/train --config=wang2020 --train_chain=wang2020_blur_jpeg_0.1 ...   # Blur+JPEG(0.1)

Every training image, whole and before the crop, is blurred with probability
0.5 by a Gaussian of sigma drawn uniformly in [0, 3] (scipy's
`gaussian_filter` on each channel, exactly) and saved with probability 0.5
as JPEG at a QF drawn uniformly in 30..100 (their --blur_prob 0.5
--blur_sig 0.0,3.0 --jpg_prob 0.5 --jpg_qual 30,100): the chain
`wang2020_blur_jpeg_0.5` (tfjpeg.codec.chain_syntax). Their net and optimiser:
ResNet-50 from ImageNet weights (`--weights=imagenet` needs the Keras file,
see docs/getting-started.md), Adam at 1e-4, batches of 64, random 224 crops,
the rate cut by 10 when the validation loss stalls for 5 epochs. Tested as
stored; `bin/report --model=RUN` then puts the net through resizing and
Corvi et al.'s protocol (whose 200x200 images need patches of at most 200,
which `--test_chains=corvi2023` checks at the start). Not modelled:
their horizontal flips (a flip moves no JPEG grid and changes no trace this
toolkit measures) and the choice between OpenCV and Pillow for the JPEG
(both write the same file at a QF). Without --task it runs on the built-in
camera task with the compact `hpf` net, a few minutes on 2 cores.
"""

from tfjpeg import config


def get_config():
  return config.make(
    task="cameras",
    net="hpf",
    learning_rate=1e-4,
    batch_size=64,
    lr_patience=5,
    stop_patience=10,
    epochs=30,
    train_crop="random",
    train_chain="wang2020_blur_jpeg_0.5",
    test_crops=("random",),
    test_qfs=(None,),
  )
