"""What the benchmark sections read: generated camera-like JPEG sources, and
folder tasks over them (every image in training). Shared by the sections'
modules (tfjpeg.bench.benchmark, tfjpeg.bench.chains, tfjpeg.bench.layers),
so that none of them imports another."""

import os

import numpy as np

from tfjpeg import config as config_lib


def make_sources(directory, num_images=48, size=(768, 1024), seed=0, photos=None):
  """Camera-like JPEG files (QF 95, 4:2:0) in two class folders; returns their
  paths. The content is procedural scenes of `size`, or, given `photos`
  (never-compressed files, e.g. `real_photos.list_sources()`), those photos at
  their own size, in turn."""
  import cv2  # pylint: disable=g-import-not-at-top

  from tfjpeg.data import builtin  # pylint: disable=g-import-not-at-top
  from tfjpeg.data import real_photos  # pylint: disable=g-import-not-at-top

  paths = []
  for index in range(num_images):
    path = os.path.join(directory, f"class{index % 2}", f"image{index:04d}.jpg")
    if not os.path.exists(path):
      os.makedirs(os.path.dirname(path), exist_ok=True)
      if photos:
        rgb = real_photos.read_rgb(photos[index % len(photos)])
      else:
        rng = np.random.default_rng([seed, index])
        rgb = np.clip(np.round(255 * builtin.scene(*size, rng)), 0, 255).astype(np.uint8)
      cv2.imwrite(path, rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    paths.append(path)
  return paths


def source_dir(directory):
  """The folder task (b) reads: only the sources' class folders."""
  return os.path.join(directory, "sources")


def folder_task(directory, patch):
  """A folder task of every image of `directory`, all in training."""
  from tfjpeg.data import tasks  # pylint: disable=g-import-not-at-top

  # Every image in training: the benchmark reads the whole folder.
  return tasks.get(
    config_lib.TaskConfig(
      name="folder",
      data_dir=directory,
      patch_size=patch,
      test_fraction=0.0,
      validation_fraction=0.0,
    )
  )
