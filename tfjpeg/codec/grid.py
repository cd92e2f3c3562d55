"""Blind estimation of the JPEG 8x8 grid from pixels alone.

In the spirit of the ZERO method (Nikoukhah, Anger, Ehret, Colom, Morel,
Grompone von Gioi, "JPEG grid detection based on the number of DCT zeros and
its application to automatic and localized forgery detection", CVPRW 2019):
JPEG quantisation sets many DCT coefficients of each 8x8 block to zero, and
decoding keeps them close to zero, but only for blocks cut on the grid the
encoder used. For each of the 64 candidate origins (dy, dx) we count the AC
coefficients of luma blocks that round to zero; the true origin has the most.

The 8x8 DCT of every window is one convolution with the 64 DCT basis images,
so the estimate runs on the graph (inside tf.data) like every other op here.

`estimate` returns the origin and a confidence in [0, 1]: the share of the
zero count that the best origin holds above the runner-up. Never-compressed
images have no grid: their counts are nearly equal and the confidence low, so
callers should treat estimates below `CONFIDENT` as "no grid found".
"""

import functools
import os
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from tfjpeg.codec import images
from tfjpeg.codec import jpeg
from tfjpeg.core import progress
from tfjpeg.core.errors import MissingError

# What the ops take: a tensor, or anything tf.convert_to_tensor takes.
TensorLike = Any
Size = Any  # (height, width)


CONFIDENT = 0.05  # below this, treat the image as having no detectable grid
MAX_SIDE = 512  # the estimate reads at most this central window


def _dct_basis():
  """The 64 orthonormal 8x8 DCT-II basis images, as JPEG scales them, [8, 8, 1, 64]."""
  k = np.arange(8)
  scale = np.asarray(np.where(k == 0, np.sqrt(1 / 8), np.sqrt(2 / 8)))
  cosines = scale[:, None] * np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16)  # [u, x]
  basis = np.einsum("ux,vy->xyuv", cosines, cosines).reshape(8, 8, 1, 64)
  return basis.astype(np.float32)


_BASIS = _dct_basis()


def zero_counts(image):
  """[8, 8] counts of zero-rounding AC coefficients, per candidate origin (dy, dx)."""
  image = tf.cast(tf.convert_to_tensor(image), tf.float32)
  # JPEG's luma, from the decoded RGB (the encoder's Y, up to rounding).
  luma = (0.299 * image[..., 0] + 0.587 * image[..., 1] + 0.114 * image[..., 2]) - 128.0
  coefficients = tf.nn.conv2d(luma[None, :, :, None], _BASIS, strides=1, padding="VALID")[0]
  # coefficients[y, x] is the DCT of the block whose top-left pixel is (y, x).
  zeros = tf.cast(tf.abs(coefficients[..., 1:]) < 0.5, tf.float32)  # AC only
  zeros = tf.reduce_sum(zeros, -1)
  height, width = tf.shape(zeros)[0], tf.shape(zeros)[1]
  # Fold the positions onto their phase mod 8: blocks of one origin share a phase.
  rows, cols = (height // 8) * 8, (width // 8) * 8
  folded = tf.reshape(zeros[:rows, :cols], [rows // 8, 8, cols // 8, 8])
  return tf.reduce_sum(folded, axis=[0, 2])


def estimate(image: TensorLike) -> tuple[tf.Tensor, tf.Tensor]:
  """Estimates the grid origin of a decoded image.

  Args:
    image: uint8 (or float) HxWx3 RGB, at least 16x16 pixels.

  Returns:
    (origin, confidence): origin an int32 [dy, dx] in 0..7 (the top-left pixel
    of some 8x8 block of the grid is at (dy + 8i, dx + 8j)), confidence a
    float32 in [0, 1].

  Examples:
    >>> image = np.random.default_rng(0).integers(0, 256, (96, 96, 3), np.uint8)
    >>> saved = tfjpeg.compress(image, 75)[3:, 5:]  # a crop 3 rows down, 5 columns in
    >>> origin, confidence = tfjpeg.estimate_grid(saved)
    >>> [int(v) for v in origin], bool(confidence > 0.5)
    ([5, 3], True)
  """
  image = tf.convert_to_tensor(image)
  shape = tf.shape(image)
  # A central window keeps large photos cheap; its offset is added back, so
  # keep it a multiple of 8 away from the top-left.
  top = ((tf.maximum(shape[0] - MAX_SIDE, 0) // 2) // 8) * 8
  left = ((tf.maximum(shape[1] - MAX_SIDE, 0) // 2) // 8) * 8
  window = image[top : top + MAX_SIDE, left : left + MAX_SIDE]
  counts = tf.reshape(zero_counts(window), [64])
  ranked = tf.sort(counts, direction="DESCENDING")
  best = tf.cast(tf.argmax(counts), tf.int32)
  confidence = (ranked[0] - ranked[1]) / tf.maximum(ranked[0], 1.0)
  return tf.stack([best // 8, best % 8]), confidence


@functools.cache
def traced() -> Any:
  """`estimate` as one `tf.function` for a uint8 RGB image of any size, traced
  once per process. A trace per image shape, or one relaxed from the shapes
  seen first, computes the DCTs with other rounding in the last bits, which
  moves zero counts near 0.5: the confidence of an image would then depend on
  the images estimated before it (bin/predict's Beam workers see another order
  than the local path)."""
  return tf.function(estimate, input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])


def realign(
  offset: TensorLike, origin: TensorLike, image_size: TensorLike, size: Size
) -> tf.Tensor:
  """Moves a crop `offset` by less than 8 pixels onto the grid at `origin`.

  Each axis goes to the nearest position p with p = origin (mod 8) that keeps
  the `size` patch inside an image of `image_size`; if none exists on an axis,
  that axis keeps its offset.

  Examples:
    >>> [int(v) for v in tfjpeg.realign((10, 21), (0, 0), (100, 100), (32, 32))]
    [8, 24]
  """
  offset, origin = tf.cast(offset, tf.int32), tf.cast(origin, tf.int32)
  limit = tf.cast(image_size, tf.int32)[:2] - tf.constant(size, tf.int32)
  shift = (origin - offset) % 8  # 0..7 forward to the next grid position
  forward, backward = offset + shift, offset + shift - 8
  nearer = tf.where(shift <= 4, forward, backward)
  other = tf.where(shift <= 4, backward, forward)
  inside = lambda p: tf.logical_and(p >= 0, p <= limit)
  return tf.where(inside(nearer), nearer, tf.where(inside(other), other, offset))


def accuracy_on_folder(
  folder, qualities=(50, 60, 70, 80, 90, 95, 98, 100), crop=256, chroma="4:2:0", stream=None
):
  """`accuracy_table` of every image below `folder` (refused, never resized,
  when smaller than crop + 7), with progress; returns (photo count, table)."""
  if not os.path.isdir(folder):
    raise MissingError(f"no photo folder at {folder}")
  photos = {}
  for path in images.list_images(folder):
    images.probe(path, min_size=(crop + 7, crop + 7))
    with open(path, "rb") as handle:
      photos[path] = images.decode(handle.read()).numpy()
  if not photos:
    raise MissingError(f"{folder} holds no photo")
  with progress.Progress(
    len(photos) * (len(qualities) + 1), "grid estimates", "photo-QFs", stream
  ) as done:
    return len(photos), accuracy_table(photos, qualities, crop, chroma, done.update)


def accuracy_table(
  photos, qualities=(50, 60, 70, 80, 90, 95, 98, 100), crop=256, chroma="4:2:0", step=None
):
  """How often `estimate` finds the grid of real photos, by QF, over all 64 offsets.

  Each photo is compressed at each QF, then cropped to `crop` x `crop` at every
  offset (dy, dx) in 0..7, which moves the grid origin to (-dy % 8, -dx % 8).
  Never-compressed crops (QF "none") have no grid: for them the table reports
  how often the estimate is (wrongly) confident.

  Args:
    photos: {name: uint8 HxWx3} with sides of at least crop + 7.
    step: called after each photo at each QF (progress).

  Returns:
    A pandas DataFrame: qf, crops, correct (share), confident (share), and the
    median confidence.
  """
  rows = []
  for quality in tuple(qualities) + (None,):
    correct = confident = 0
    confidences = []
    for photo in photos.values():
      compressed = jpeg.compress(photo, quality, chroma) if quality else tf.constant(photo)
      for dy in range(8):
        for dx in range(8):
          origin, confidence = traced()(compressed[dy : dy + crop, dx : dx + crop])
          correct += tuple(origin.numpy()) == ((-dy) % 8, (-dx) % 8)
          confident += float(confidence) >= CONFIDENT
          confidences.append(float(confidence))
      if step:
        step()
    n = len(confidences)
    rows.append(
      dict(
        qf=quality or "none",
        crops=n,
        correct=correct / n,
        confident=confident / n,
        median_confidence=float(np.median(confidences)),
      )
    )
  return pd.DataFrame(rows)
