"""Stateless seeds: the one convention every random op in tfjpeg follows.

A seed is a shape-[2] int64 tensor, as `tf.random.stateless_*` expects. Ops
never touch global RNG state, so the same seed gives the same draw whatever
the order of execution (parallel `Dataset.map`, resumed runs, sharded jobs).
"""

import tensorflow as tf


def as_seed(seed):
  """Returns `seed` (a Python int, a pair, or a tensor) as a [2] int64 tensor."""
  if isinstance(seed, int):
    return tf.constant([seed, 0], tf.int64)
  seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
  if seed.shape.rank == 0:
    return tf.stack([seed, tf.zeros_like(seed)])
  seed.shape.assert_is_compatible_with([2])
  return seed


def split(seed, num):
  """Returns `num` independent [2] seeds derived from `seed`."""
  return tf.unstack(tf.random.experimental.stateless_split(as_seed(seed), num))


def to_int(seed):
  """A non-negative Python int from a seed, for APIs such as `Dataset.shuffle`."""
  return int(as_seed(seed).numpy()[0] % (2**31 - 1))


def for_example(seed, index):
  """Seed for example `index` of a dataset seeded with `seed` (pure function)."""
  return tf.random.experimental.stateless_fold_in(as_seed(seed), tf.cast(index, tf.int64))
