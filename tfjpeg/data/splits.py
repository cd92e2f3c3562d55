"""The split: by source image, stratified by class, deterministic.

The paper splits by image: 80% train (then 85/15 train/validation) and 20%
test. All patches of a source image, and every version of it (a scene shot by
several simulated cameras, a real photo and the fake made from it), fall in
the same split. Sources are stratified by the set of classes they appear in,
so each class keeps the split's proportions.
"""

import collections
import dataclasses

import numpy as np

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class SplitFractions:
  test: float = 0.2  # of all sources
  validation: float = 0.15  # of the sources left after the test split

  def __post_init__(self):
    for name in ("test", "validation"):
      value = getattr(self, name)
      if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} fraction must be in [0, 1), got {value}")


def assign(source_ids, labels, fractions=SplitFractions(), seed=0):
  """Returns the split name ("train", "validation", "test") of each example.

  Args:
    source_ids: one per example; examples sharing a source share a split.
    labels: one class label per example.
    fractions: `SplitFractions`.
    seed: the same seed and inputs give the same split, in any input order.
  """
  source_ids = [str(s) for s in source_ids]
  if len(source_ids) != len(labels):
    raise ValueError("source_ids and labels differ in length")
  classes_of = collections.defaultdict(set)
  for source, label in zip(source_ids, labels):
    classes_of[source].add(label)
  strata = collections.defaultdict(list)
  for source, classes in classes_of.items():
    strata[tuple(sorted(classes))].append(source)
  split_of = {}
  for stratum, sources in sorted(strata.items()):
    # Sorting first makes the result independent of input order.
    sources = sorted(sources)
    rng = np.random.default_rng([seed, _stable_hash(stratum)])
    order = [sources[i] for i in rng.permutation(len(sources))]
    n_test = int(round(len(order) * fractions.test))
    n_val = int(round((len(order) - n_test) * fractions.validation))
    for i, source in enumerate(order):
      split_of[source] = "test" if i < n_test else "validation" if i < n_test + n_val else "train"
  return [split_of[s] for s in source_ids]


def _stable_hash(values):
  """A hash of a tuple that, unlike `hash`, is the same in every process."""
  total = 0
  for char in repr(values):
    total = (total * 131 + ord(char)) % (2**31 - 1)
  return total
