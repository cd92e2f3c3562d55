"""Per-pixel JPEG-grid votes, by the definitions of ZERO.

ZERO (Nikoukhah, Anger, Ehret, Colom, Morel, Grompone von Gioi, CVPRW 2019;
IPOL 2021) lets every pixel vote for the JPEG grid origin it lies on. Its
definitions, which `votes` follows:

- The luminance is `round(0.299 R + 0.587 G + 0.114 B)`, computed in double
  precision in that order and rounded half away from zero (C's `round`).
- Every 8x8 window whose top-left pixel is (y, x) has a phase
  (y mod 8, x mod 8), one of 64 candidate grid origins (dy, dx). Its score is
  the number of its 63 AC DCT coefficients below 0.5 in magnitude: JPEG
  quantises to integers at the finest, so 0.5 is the midpoint between a zero
  and the smallest non-zero value.
- A pixel lies in 64 windows, one of each phase. It votes for the phase of the
  window with the highest score; it does not vote when two windows tie for the
  highest score, when that score is 0, when the best window is constant along
  each of its rows or along each of its columns (such windows have many zeros
  whatever the grid), or when not all 64 windows fit in the image (the
  7-pixel border).

Votes are coded as `dy * 8 + dx`, and -1 for no vote. ZERO's C numbers the
same grid `dx + 8 dy` and prints it as (dx, dy).

Exactness. Integer luminance makes several frequencies rational (those of
index 0 and 4 combined, and others), so coefficients of exactly +-0.5 are
common: from one window in 40 to one in 7 of a photo holds one (Kodak photos
at QF 70 to 95). ZERO's C computes the sums in double in one order and counts
some of these as below 0.5 by rounding error. tfjpeg decides them exactly:
the sums are computed in float64 (error below 1e-12) and a coefficient
within `TIE` of +-0.5 is exactly +-0.5, which is not below 0.5. On those
photos this changes 0.2% to 1.5% of ZERO's C votes.

`window_scores` also counts wider zeros (|c| below 2, say): the evidence for
a splice saved again as a JPEG, where the second compression adds noise of
about 1 to the first compression's zeros on the spliced block's own grid.
"""

from typing import Any

import numpy as np
import tensorflow as tf

TensorLike = Any

# Below this distance from +-0.5, a float64 coefficient is exactly +-0.5.
TIE = 1e-9
NO_VOTE = -1
BORDER = 7  # pixels at the edges that lie in fewer than 64 windows


def _dct_basis() -> np.ndarray:
  """The 64 orthonormal 8x8 DCT-II basis images [y, x, 1, u * 8 + v], float64."""
  k = np.arange(8)
  scale = np.asarray(np.where(k == 0, np.sqrt(1 / 8), np.sqrt(2 / 8)))
  cosines = scale[:, None] * np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16)
  return np.einsum("uy,vx->yxuv", cosines, cosines).reshape(8, 8, 1, 64)


BASIS = _dct_basis()


def luminance(image: TensorLike, rounded: bool = True) -> tf.Tensor:
  """ZERO's luminance of HxWx3 RGB (or HxWx1 grey) pixels, float64 [H, W].

  `rounded=False` keeps the fraction: the lattice evidence reads the decoder's
  luma with less noise that way.
  """
  image = tf.cast(tf.convert_to_tensor(image), tf.float64)
  if image.shape[-1] == 1:
    return image[..., 0]
  # The products and sums in ZERO's order, so that every IEEE rounding is its.
  value = (0.299 * image[..., 0] + 0.587 * image[..., 1]) + 0.114 * image[..., 2]
  if not rounded:
    return value
  whole = tf.floor(value)
  return whole + tf.cast(value - whole >= 0.5, tf.float64)  # half away from zero


def window_dct(luma: TensorLike) -> tf.Tensor:
  """The DCT of every 8x8 window, [H - 7, W - 7, 64] float64 (index u * 8 + v).

  Entry [y, x] is the window whose top-left pixel is (y, x). The level shift
  by 128 changes only the DC term and keeps the sums small, hence accurate.
  """
  luma = tf.convert_to_tensor(luma, tf.float64)
  return tf.nn.conv2d(luma[None, :, :, None] - 128.0, BASIS, 1, "VALID")[0]


def zero_counts(coefficients: TensorLike, threshold: float = 0.5) -> tf.Tensor:
  """Per window, how many AC coefficients lie below `threshold` in magnitude."""
  # Counted over all 64 in int8, the DC's own count taken back: no copy of the
  # 63 AC planes, a quarter of the memory traffic.
  below = tf.cast(tf.abs(coefficients) < threshold - TIE, tf.int8)
  return tf.cast(tf.reduce_sum(below, axis=-1) - below[..., 0], tf.int32)


def _run(values, axis, reduce=tf.maximum):
  """Max (or `reduce`) over runs of 8 along `axis` (0 rows, 1 columns), VALID.

  Seven elementwise maxima of shifted slices: a pooling op with a window of
  8x1 on one channel costs ten times as much in oneDNN."""
  length = tf.shape(values)[axis] - 7
  result = None
  for shift in range(8):
    part = values[shift : shift + length] if axis == 0 else values[:, shift : shift + length]
    result = part if result is None else reduce(result, part)
  return result


def _max8x8(values):
  """Max over 8x8 windows, VALID: runs of 8 down, then across."""
  return _run(_run(values, 0), 1)


def constant_windows(luma: TensorLike) -> tf.Tensor:
  """Per window [H - 7, W - 7]: constant along each row, or along each column."""
  luma = tf.convert_to_tensor(luma)
  # A run of 8 is constant when its maximum equals its minimum.
  row_runs = tf.equal(_run(luma, 1), _run(luma, 1, tf.minimum))  # [H, W - 7]
  column_runs = tf.equal(_run(luma, 0), _run(luma, 0, tf.minimum))  # [H - 7, W]
  along_rows = _run(row_runs, 0, tf.logical_and)  # all 8 rows of a window constant
  along_columns = _run(column_runs, 1, tf.logical_and)
  return tf.logical_or(along_rows, along_columns)


def votes_from_scores(
  scores: TensorLike, constant: TensorLike, exclude: TensorLike = NO_VOTE
) -> tf.Tensor:
  """Each pixel's vote [H, W] from its windows' scores and constancy.

  `exclude` (a grid, dy * 8 + dx) takes no part: each pixel then votes among
  the other 63 windows, which shows a second grid under a dominant one.

  Two max-pools find, for each pixel, its best window twice: once preferring
  constant windows and higher phases among equal scores, once preferring
  non-constant windows and lower phases. They agree exactly when one window
  has the highest score alone; the key then also says if it is constant.
  """
  scores = tf.cast(scores, tf.int32)
  constant = tf.cast(constant, tf.int32)
  rows, columns = tf.shape(scores)[0], tf.shape(scores)[1]
  phase = (tf.range(rows)[:, None] % 8) * 8 + tf.range(columns)[None, :] % 8
  scores = tf.where(tf.equal(phase, exclude), -1, scores)
  first = scores * 128 + constant * 64 + phase
  second = scores * 128 + (1 - constant) * 64 + (63 - phase)
  best = _max8x8(first)
  other = _max8x8(second)
  best_phase = best % 64
  alone = tf.equal(best_phase, 63 - other % 64)
  votes = tf.where(alone & tf.equal((best // 64) % 2, 0) & (best // 128 > 0), best_phase, NO_VOTE)
  # votes[i, j] is pixel (i + 7, j + 7): the border does not vote.
  return tf.pad(votes, [[BORDER, BORDER], [BORDER, BORDER]], constant_values=NO_VOTE)


TILE = 512  # window positions per side of a tile, when an image is tiled
SINGLE_PASS = 1 << 20  # window positions below which an image is one tile


def window_scores(luma: TensorLike, thresholds: tuple[float, ...] = (0.5,)) -> tf.Tensor:
  """Per window, the zero count at each threshold, int8 [H - 7, W - 7, thresholds].

  The float64 DCT of every window takes 512 bytes a window, so photos above a
  megapixel run in tiles of TILE x TILE windows (each reading 7 more pixels on
  two sides), one at a time: memory stays near 150 MB whatever the photo.
  """
  luma = tf.ensure_shape(tf.convert_to_tensor(luma, tf.float64), [None, None])
  rows, columns = tf.shape(luma)[0] - 7, tf.shape(luma)[1] - 7

  def counts(part):
    coefficients = window_dct(part)
    return tf.stack([tf.cast(zero_counts(coefficients, t), tf.int8) for t in thresholds], -1)

  def tiled():
    down, across = (rows + TILE - 1) // TILE, (columns + TILE - 1) // TILE
    padded = tf.pad(luma, [[0, down * TILE - rows], [0, across * TILE - columns]])
    origins = tf.stack(
      tf.meshgrid(tf.range(down) * TILE, tf.range(across) * TILE, indexing="ij"), -1
    )
    tiles = tf.map_fn(
      lambda origin: counts(
        padded[origin[0] : origin[0] + TILE + 7, origin[1] : origin[1] + TILE + 7]
      ),
      tf.reshape(origins, [-1, 2]),
      fn_output_signature=tf.TensorSpec([TILE, TILE, len(thresholds)], tf.int8),
      parallel_iterations=1,
    )
    tiles = tf.reshape(tiles, [down, across, TILE, TILE, len(thresholds)])
    whole = tf.reshape(
      tf.transpose(tiles, [0, 2, 1, 3, 4]), [down * TILE, across * TILE, len(thresholds)]
    )
    return whole[:rows, :columns]

  return tf.cond(rows * columns <= SINGLE_PASS, lambda: counts(luma), tiled)


def votes(image: TensorLike) -> tf.Tensor:
  """ZERO's per-pixel grid votes of an HxWxC image (C 3 or 1), int32 [H, W].

  Examples:
    >>> image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    >>> saved = tfjpeg.compress(image, 75)[3:, 5:]  # the grid now at (5, 3)
    >>> v = votes(saved).numpy()
    >>> int(np.bincount(v[v >= 0]).argmax()) == 5 * 8 + 3
    True
  """
  luma = luminance(image)
  return votes_from_scores(window_scores(luma)[..., 0], constant_windows(luma))
