"""Figures (matplotlib is imported here only)."""

import numpy as np

from tfjpeg import images


def task_examples(task, path, per_class=3, split="train"):
  """A grid of each class's first images, with their high-pass residual beneath.

  The residual (a 3x3 Laplacian of luma, as the `hpf` net's fixed front end)
  shows the fine detail where forensic classes differ.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import cv2  # pylint: disable=g-import-not-at-top
  found = {c: [] for c in range(task.num_classes)}
  for element in task.images(split):
    label = int(element["label"])
    if len(found[label]) < per_class:
      found[label].append(images.decode(element["encoded"]).numpy())
    if all(len(v) == per_class for v in found.values()):
      break
  fig, axes = plt.subplots(2 * task.num_classes, per_class,
                           figsize=(1.6 * per_class, 3.2 * task.num_classes), squeeze=False)
  for label, pictures in found.items():
    for column, picture in enumerate(pictures):
      luma = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY).astype(np.float32)
      residual = cv2.Laplacian(luma, cv2.CV_32F)
      axes[2 * label, column].imshow(picture)
      axes[2 * label + 1, column].imshow(np.clip(residual, -20, 20), cmap="gray")
      axes[2 * label, column].set_title(task.class_names[label], fontsize=8)
  for axis in axes.ravel():
    axis.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return path
