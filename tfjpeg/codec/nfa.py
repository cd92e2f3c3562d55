"""A-contrario tests: the number of false alarms (NFA) of a count of votes.

A detection is kept when its NFA, the number of tests times the probability
that chance alone gives as many votes, is below 1 (log10 NFA < 0): on images
with nothing to find, fewer than one false detection is then expected per
image (Desolneux, Moisan, Morel, "From Gestalt Theory to Image Analysis",
2008). ZERO tests a count k of votes among n with the binomial tail at
p = 1/64 (one grid of 64 by chance), and divides pixel counts by 64 because
votes of one 8x8 window are not independent.
"""

from typing import Any

import numpy as np
import tensorflow as tf

TensorLike = Any
_LN10 = float(np.log(10.0))


def log10_binomial_tail(n: TensorLike, k: TensorLike, p: TensorLike) -> tf.Tensor:
  """log10 P(X >= k) for X ~ Binomial(n, p), elementwise, float64.

  0 where k <= 0 and -inf where k > n. The regularized incomplete beta function
  gives the tail; where it underflows (tails below 1e-280) the first term of the
  tail times the geometric bound on the rest stands in, within a factor of 2.

  Examples:
    >>> round(float(log10_binomial_tail(10, 10, 0.5)), 4)  # 2^-10
    -3.0103
  """
  n, k, p = (tf.cast(v, tf.float64) for v in (n, k, p))
  shape = tf.broadcast_dynamic_shape(
    tf.broadcast_dynamic_shape(tf.shape(n), tf.shape(k)), tf.shape(p)
  )
  n, k, p = (tf.broadcast_to(v, shape) for v in (n, k, p))
  safe_k = tf.clip_by_value(k, 1.0, tf.maximum(n, 1.0))
  tail = tf.math.betainc(safe_k, n - safe_k + 1.0, p)
  log_first = (
    tf.math.lgamma(n + 1.0)
    - tf.math.lgamma(safe_k + 1.0)
    - tf.math.lgamma(n - safe_k + 1.0)
    + safe_k * tf.math.log(p)
    + (n - safe_k) * tf.math.log1p(-p)
  )
  # The ratio of consecutive terms falls as the index grows: the rest of the
  # tail is at most first * r / (1 - r); tails that underflow have r far below 1/2.
  ratio = (n - safe_k) / (safe_k + 1.0) * p / (1.0 - p)
  bound = log_first - tf.math.log1p(-tf.minimum(ratio, 0.5))
  log_tail = tf.where(tail > 1e-280, tf.math.log(tf.maximum(tail, 1e-300)), bound) / _LN10
  log_tail = tf.where(k <= 0, tf.zeros_like(log_tail), log_tail)
  return tf.where(k > n, tf.constant(-np.inf, tf.float64) * tf.ones_like(log_tail), log_tail)


def log10_tests(height: TensorLike, width: TensorLike) -> tf.Tensor:
  """ZERO's log10 number of tests: 64 grids times the rectangles of an image,
  log10(64^2 W^2 H^2)."""
  height = tf.cast(height, tf.float64)
  width = tf.cast(width, tf.float64)
  return (2.0 * np.log10(64.0)) + 2.0 * (tf.math.log(width) + tf.math.log(height)) / _LN10


def log10_nfa(
  n: TensorLike, k: TensorLike, log_tests: TensorLike, p: TensorLike = 1.0 / 64.0
) -> tf.Tensor:
  """log10 NFA of k votes among n at probability p: log_tests + log10 tail."""
  return tf.cast(log_tests, tf.float64) + log10_binomial_tail(n, k, p)
