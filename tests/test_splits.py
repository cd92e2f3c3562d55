"""tfjpeg.data.splits: by source, stratified, deterministic, order-independent."""

import collections
import random

import pytest

from tfjpeg.data import splits


def _examples():
  # 3 classes x 50 sources, and 40 sources seen by every class (shared scenes).
  ids, labels = [], []
  for c in range(3):
    for s in range(50):
      for _ in range(3):  # several patches/versions of one source
        ids.append(f"own-{c}-{s}")
        labels.append(c)
  for s in range(40):
    for c in range(3):
      ids.append(f"shared-{s}")
      labels.append(c)
  return ids, labels


def test_sources_never_straddle_splits():
  ids, labels = _examples()
  assigned = splits.assign(ids, labels, seed=3)
  split_of = collections.defaultdict(set)
  for source, split in zip(ids, assigned):
    split_of[source].add(split)
  assert all(len(s) == 1 for s in split_of.values())


def test_fractions_hold_per_class():
  ids, labels = _examples()
  assigned = splits.assign(ids, labels, seed=3)
  for c in range(3):
    sources = {(i, s) for i, s, label in zip(ids, assigned, labels) if label == c}
    count = collections.Counter(s for _, s in sources)
    total = sum(count.values())
    assert count["test"] / total == pytest.approx(0.2, abs=0.02)
    assert count["validation"] / (total - count["test"]) == pytest.approx(0.15, abs=0.03)


def test_deterministic_and_order_independent():
  ids, labels = _examples()
  first = dict(zip(ids, splits.assign(ids, labels, seed=1)))
  order = list(range(len(ids)))
  random.Random(0).shuffle(order)
  shuffled = splits.assign([ids[i] for i in order], [labels[i] for i in order], seed=1)
  assert dict(zip([ids[i] for i in order], shuffled)) == first
  other_seed = dict(zip(ids, splits.assign(ids, labels, seed=2)))
  assert other_seed != first


def test_configurable_fractions():
  ids, labels = _examples()
  assigned = splits.assign(ids, labels, splits.SplitFractions(test=0.5, validation=0.0))
  counts = collections.Counter(assigned)
  assert counts["validation"] == 0 and abs(counts["test"] - counts["train"]) < 15
  with pytest.raises(ValueError, match="fraction"):
    splits.SplitFractions(test=1.0)
