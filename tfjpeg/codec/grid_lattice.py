"""The quantisation lattice: is a block on the main grid's JPEG lattice or not?

A JPEG stores each DCT coefficient of each 8x8 block as a multiple of its
quantisation step. Decoded and read back on the same grid, the coefficients
lie within about 0.35 of those multiples (the decoder's and the colour
conversion's rounding), whatever their size: not only near zero, as ZERO's
count sees, but everywhere, in textured blocks and at high qualities. Content
that was never compressed on that grid (a region pasted from a PNG, or filled
by a generator, inside a JPEG photo) lies anywhere: within `TOLERANCE` of a
multiple of a step q only about 2 * TOLERANCE / q of the time.

Farid's JPEG ghosts (IEEE TIFS 2009) re-save an image at each quality and
look for regions whose difference dips; on the grid and at the step, that
difference is the lattice residual computed here, without re-encoding (the
DCT is orthonormal, so the pixel difference and the coefficient residual
have the same energy).

`estimate_steps` finds the step of each coefficient from the image itself
(the largest step whose lattice holds most non-zero coefficients), so camera
tables, which match no IJG quality, work too. `block_evidence` then weighs,
per block, the coefficients on and off that lattice: a log-likelihood ratio
of "never compressed here" against "compressed on the main grid".
"""

from typing import Any

import numpy as np
import tensorflow as tf

from tfjpeg.codec import grid_votes

TensorLike = Any

TOLERANCE = 0.8  # a coefficient within this of a multiple of its step is on the lattice
ON_IF_COMPRESSED = 0.97  # P(on the lattice | compressed on this grid), clipped blocks aside
MIN_STEP = 3  # steps of 1 and 2 hold any value within 0.8 too often to tell
MAX_STEP = 64  # a larger step is found as its half, a lattice holding the true one
FIT = 0.7  # a step is the coefficient's when this share of its values fit
MIN_SUPPORT = 24  # non-zero values needed to estimate a step
SAMPLE_BLOCKS = 2048  # the estimate reads at most this many blocks, evenly spread


def block_coefficients(luma: TensorLike, origin: TensorLike) -> tf.Tensor:
  """The DCT of the 8x8 blocks of the grid at `origin` (dy, dx), [rows, columns, 64].

  Blocks run from (dy, dx) in steps of 8 and stop where a whole block no longer
  fits; block [i, j] covers pixels (dy + 8 i ..., dx + 8 j ...).
  """
  luma = tf.convert_to_tensor(luma, tf.float64)
  origin = tf.cast(origin, tf.int32)
  part = luma[origin[0] :, origin[1] :]
  rows, columns = tf.shape(part)[0] // 8, tf.shape(part)[1] // 8
  blocks = tf.reshape(part[: rows * 8, : columns * 8], [rows, 8, columns, 8])
  blocks = tf.reshape(tf.transpose(blocks, [0, 2, 1, 3]), [rows, columns, 64]) - 128.0
  return tf.matmul(blocks, tf.reshape(grid_votes.BASIS, [64, 64]))


def clipped_blocks(image: TensorLike, origin: TensorLike) -> tf.Tensor:
  """Blocks of the grid at `origin` with a channel at 0 or 255, [rows, columns].

  Clipping moves decoded pixels off the lattice, so such blocks do not vote.
  """
  image = tf.convert_to_tensor(image)
  origin = tf.cast(origin, tf.int32)
  extreme = tf.reduce_any((image == 0) | (image == 255), axis=-1)
  part = tf.cast(extreme[origin[0] :, origin[1] :], tf.float32)
  rows, columns = tf.shape(part)[0] // 8, tf.shape(part)[1] // 8
  part = part[: rows * 8, : columns * 8]
  return tf.nn.max_pool2d(part[None, :, :, None], 8, 8, "VALID")[0, :, :, 0] > 0


def _distance_to_lattice(values, steps):
  return tf.abs(values - steps * tf.round(values / steps))


def estimate_steps(coefficients: TensorLike, usable: TensorLike) -> tf.Tensor:
  """The quantisation step of each of the 64 coefficients, float64 [64]; 0 unknown.

  Among the usable blocks' values of at least MIN_STEP / 2 + TOLERANCE in
  magnitude (non-zero for every candidate step alike: a support that grew
  with the candidate would leave out the values at +-q when testing 2 q), the
  share within TOLERANCE of a multiple of each candidate step q in
  MIN_STEP..MAX_STEP; the step is the largest q holding a FIT share of at
  least MIN_SUPPORT values. Multiples of the true step fit about half the
  values or fewer; never-compressed values fit about 2 * TOLERANCE / q of the
  time.
  """
  values = tf.boolean_mask(tf.reshape(coefficients, [-1, 64]), tf.reshape(usable, [-1]))
  count = tf.shape(values)[0]
  stride = tf.maximum(count // SAMPLE_BLOCKS, 1)
  # float32 is ample here: steps are whole and TOLERANCE is far from a float's error.
  values = tf.cast(values[::stride], tf.float32)  # [blocks, 64]
  nonzero = tf.abs(values) >= MIN_STEP / 2 + TOLERANCE
  support = tf.reduce_sum(tf.cast(nonzero, tf.float32), 0)  # [64]
  candidates = tf.range(MIN_STEP, MAX_STEP + 1, dtype=tf.float32)[None, :, None]
  fits = nonzero[:, None, :] & (_distance_to_lattice(values[:, None, :], candidates) <= TOLERANCE)
  share = tf.reduce_sum(tf.cast(fits, tf.float32), 0) / tf.maximum(support, 1.0)  # [steps, 64]
  holds = (share >= FIT) & (support >= MIN_SUPPORT)
  steps = tf.cast(tf.reduce_max(tf.where(holds, candidates[0], 0.0), axis=0), tf.float64)
  return tf.tensor_scatter_nd_update(steps, [[0]], tf.zeros([1], tf.float64))  # never DC


def block_evidence(coefficients: TensorLike, steps: TensorLike) -> tf.Tensor:
  """Per block, log10 of P(values | never compressed) / P(values | compressed).

  Coefficients with a known step and a value above TOLERANCE count: near
  zero, smooth content fits any lattice, but compressed values never lie
  between TOLERANCE and q - TOLERANCE, where uncompressed ones often do.
  Never compressed, a value lies on the lattice with probability
  min(2 * TOLERANCE / q, 0.9); compressed, with ON_IF_COMPRESSED. Blocks
  without such coefficients score 0.
  """
  steps = tf.cast(steps, tf.float64)
  known = steps > 0
  safe = tf.where(known, steps, 1.0)
  used = known & (tf.abs(coefficients) >= safe / 2)
  on = _distance_to_lattice(coefficients, safe) <= TOLERANCE
  chance = tf.minimum(2.0 * TOLERANCE / safe, 0.9)
  log_on = tf.math.log(chance / ON_IF_COMPRESSED)
  log_off = tf.math.log((1.0 - chance) / (1.0 - ON_IF_COMPRESSED))
  score = tf.where(on, log_on, log_off)
  return tf.reduce_sum(tf.where(used, score, 0.0), axis=-1) / float(np.log(10.0))
