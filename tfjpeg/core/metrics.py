"""Metrics: arrays and DataFrames in, numbers out (no TensorFlow, no files).

Per test condition (one row of results.csv): `balanced_accuracy` is the
paper's metric, the average per-class accuracy over patches.
`balanced_accuracy_low` and `_high` bound its 95% interval, by bootstrap over
test images: patches of one image are not independent, so whole images are
resampled (within each class, so every class stays present).
`image_balanced_accuracy` first averages the log-probabilities of an image's
patches, then scores images. Two-class tasks (real vs generated) also get
`roc_auc` and `average_precision` of the second class's probability, since a
fixed 0.5 threshold hides how separable the classes are, and `roc_auc_low` and
`_high`, the AUC's 95% interval by the same bootstrap over images; all are NaN
for more classes.

Per grid phase (the per-offset sweep of `tfjpeg.analysis.offsets`): the phase table,
the offset map, the displacement curve and ASD%. The score of a patch is the
probability the net gives its true class. ASD%, the average score drop
(Cannas et al., 2024, as we read it: their formula was not available here), is
the mean relative drop of that score over the misaligned diagonal shifts, in
percent: 100 * mean_{s=1..period-1} (S(0) - S(s)) / S(0), with S(s) the mean
score at shift (s, s). 0 means the net ignores the grid; 100 means
misalignment removes all its confidence.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn import metrics as sk_metrics

DIRECTIONS = {"diagonal": (1, 1), "vertical": (1, 0), "horizontal": (0, 1)}


def balanced_accuracy(labels, predictions):
  """Mean over the classes present in `labels` of the fraction predicted right
  (scikit-learn's balanced accuracy); NaN without labels."""
  if len(labels) == 0:
    return float("nan")
  with warnings.catch_warnings():  # predictions of classes absent from `labels`
    warnings.simplefilter("ignore", UserWarning)
    return float(sk_metrics.balanced_accuracy_score(labels, predictions))


def _draw_counts(rng, resamples, size):
  """(resamples, size): how often each of `size` items is drawn in each of
  `resamples` draws of `size` with replacement (one bincount for all)."""
  picks = rng.integers(0, size, size=(resamples, size))
  flat = (picks + size * np.arange(resamples)[:, None]).ravel()
  return np.bincount(flat, minlength=resamples * size).reshape(resamples, size)


def bootstrap_interval(labels, predictions, image_ids, level=0.95, resamples=1000, seed=0):
  """The `level` percentile interval of patch-level balanced accuracy when
  test images (all patches of each) are resampled with replacement within
  their class. Returns (low, high); NaN without test images."""
  frame = pd.DataFrame(
    dict(
      image=np.asarray(image_ids),
      label=np.asarray(labels),
      correct=np.asarray(predictions) == np.asarray(labels),
    )
  )
  if frame.empty:
    return float("nan"), float("nan")
  per_image = frame.groupby("image").agg(
    label=("label", "first"), correct=("correct", "sum"), patches=("correct", "size")
  )
  rng = np.random.default_rng(seed)
  recalls = []
  for _, rows in per_image.groupby("label"):
    # Each resample's count of every image of this class: (resamples, images).
    counts = _draw_counts(rng, resamples, len(rows))
    recalls.append(counts @ rows["correct"].to_numpy() / (counts @ rows["patches"].to_numpy()))
  scores = np.mean(recalls, axis=0)
  tail = 100 * (1 - level) / 2
  return float(np.percentile(scores, tail)), float(np.percentile(scores, 100 - tail))


def roc_auc(positive, scores):
  """Area under the ROC curve (scikit-learn); NaN unless both classes occur."""
  positive = np.asarray(positive, bool)
  if positive.all() or not positive.any():
    return float("nan")
  return float(sk_metrics.roc_auc_score(positive, scores))


def average_precision(positive, scores):
  """Average precision (scikit-learn); NaN without a positive."""
  positive = np.asarray(positive, bool)
  if not positive.any():
    return float("nan")
  return float(sk_metrics.average_precision_score(positive, scores))


def auc_interval(labels, scores, image_ids, level=0.95, resamples=1000, seed=0):
  """The `level` percentile interval of ROC AUC (class 1 against class 0,
  by `scores`) when test images (all patches of each) are resampled with
  replacement within their class, as `bootstrap_interval`. The AUC of a
  resample is its Mann-Whitney statistic with each patch weighted by how
  often its image was drawn (ties count half). NaN unless both classes occur."""
  labels, scores = np.asarray(labels), np.asarray(scores, float)
  ids = pd.factorize(pd.Series(np.asarray(image_ids)))[0]
  if not ((labels == 1).any() and (labels == 0).any()):
    return float("nan"), float("nan")
  rng = np.random.default_rng(seed)
  counts = {}
  for k in (0, 1):
    images = np.unique(ids[labels == k])
    counts[k] = (
      _draw_counts(rng, resamples, len(images)),
      np.searchsorted(images, ids[labels == k]),
    )
  order = np.argsort(scores, kind="stable")
  starts = np.flatnonzero(np.r_[True, np.diff(scores[order]) != 0])  # groups of equal scores
  aucs = []
  for block in range(0, resamples, 100):  # a hundred resamples at a time: bounded memory
    rows = slice(block, min(block + 100, resamples))
    weights = np.zeros((rows.stop - rows.start, len(labels)))
    for k, (drawn, where) in counts.items():
      weights[:, labels == k] = drawn[rows][:, where]
    positive = np.where(labels[order] == 1, weights[:, order], 0.0)
    negative = np.where(labels[order] == 0, weights[:, order], 0.0)
    pos_groups = np.add.reduceat(positive, starts, axis=1)
    neg_groups = np.add.reduceat(negative, starts, axis=1)
    below = np.cumsum(neg_groups, axis=1) - neg_groups  # negatives with lower scores
    wins = (pos_groups * (below + 0.5 * neg_groups)).sum(1)
    aucs.append(wins / (positive.sum(1) * negative.sum(1)))
  aucs = np.concatenate(aucs)
  tail = 100 * (1 - level) / 2
  return float(np.percentile(aucs, tail)), float(np.percentile(aucs, 100 - tail))


def two_class_scores(labels, probabilities):
  """ROC AUC and AP of class 1 against class 0; NaN for other class counts."""
  probabilities = np.asarray(probabilities)
  if probabilities.ndim != 2 or probabilities.shape[1] != 2:
    return dict(roc_auc=float("nan"), average_precision=float("nan"))
  positive, scores = np.asarray(labels) == 1, probabilities[:, 1]
  return dict(
    roc_auc=roc_auc(positive, scores), average_precision=average_precision(positive, scores)
  )


def confusion_matrix(labels, predictions, num_classes):
  return sk_metrics.confusion_matrix(labels, predictions, labels=np.arange(num_classes))


def per_image(probabilities, labels, image_ids, conditions=None) -> pd.DataFrame:
  """One row per image (per condition and image, given `conditions`), in
  the order they first come: the mean log-probability of its patches, a
  column per class, and its `label`. The argmax of a row is the image's
  verdict."""
  frame = pd.DataFrame(np.log(np.clip(np.asarray(probabilities), 1e-12, 1.0)))
  frame["image_id"], frame["label"] = image_ids, labels
  keys = ["image_id"]
  if conditions is not None:
    frame["condition"], keys = conditions, ["condition", "image_id"]
  return frame.groupby(keys, sort=False).mean()


def condition_metrics(probabilities, labels, image_ids):
  """The metric columns of one test condition (see the module docstring)."""
  probabilities, labels = np.asarray(probabilities), np.asarray(labels)
  predictions = probabilities.argmax(-1)
  images = per_image(probabilities, labels, image_ids)
  image_predictions = images.drop(columns="label").to_numpy().argmax(-1)
  low, high = bootstrap_interval(labels, predictions, image_ids)
  return dict(
    balanced_accuracy=balanced_accuracy(labels, predictions),
    balanced_accuracy_low=low,
    balanced_accuracy_high=high,
    accuracy=float(np.mean(predictions == labels)) if len(labels) else float("nan"),
    n_images=int(len(images)),
    n_patches=int(len(labels)),
    image_balanced_accuracy=balanced_accuracy(images["label"].astype(int), image_predictions),
    **two_class_scores(labels, probabilities),
    **dict(
      zip(
        ("roc_auc_low", "roc_auc_high"),
        auc_interval(labels, probabilities[:, 1], image_ids)
        if probabilities.ndim == 2 and probabilities.shape[1] == 2
        else (float("nan"), float("nan")),
      )
    ),
  )


def phase_table(probabilities, labels, phases, offsets=None, mcus=None):
  """One row per crop shift (dy, dx) of a per-offset sweep: balanced_accuracy,
  accuracy, score (mean true-class probability) and n_patches; with each
  patch's `offsets` and its image's chroma `mcus` ((height, width)), on_mcu:
  the share of the patches at that shift that sit on their own image's MCU
  grid (a shift of (8, 0) from a base on it does at 4:2:2, whose MCU is 8
  high, and does not at 4:2:0)."""
  probabilities, labels, phases = (np.asarray(a) for a in (probabilities, labels, phases))
  predictions = probabilities.argmax(-1)
  scores = probabilities[np.arange(len(labels)), labels]
  on_mcu = None
  if mcus is not None:
    on_mcu = np.all(np.asarray(offsets) % np.maximum(np.asarray(mcus), 1) == 0, axis=1)
  rows = []
  for dy, dx in sorted({tuple(p) for p in phases.tolist()}):
    mask = (phases[:, 0] == dy) & (phases[:, 1] == dx)
    row = dict(
      dy=dy,
      dx=dx,
      balanced_accuracy=balanced_accuracy(labels[mask], predictions[mask]),
      accuracy=float(np.mean(predictions[mask] == labels[mask])),
      score=float(np.mean(scores[mask])),
      n_patches=int(mask.sum()),
    )
    if on_mcu is not None:
      row["on_mcu"] = float(np.mean(on_mcu[mask]))
    rows.append(row)
  return pd.DataFrame(rows)


def period_of(table):
  return int(table["dy"].max())


def offset_map(table, metric="balanced_accuracy"):
  """[period, period] array of `metric` by grid phase (dy, dx) of the crop."""
  period = period_of(table)
  inside = table[(table["dy"] < period) & (table["dx"] < period)]
  grid = np.full((period, period), np.nan)
  grid[inside["dy"].to_numpy(), inside["dx"].to_numpy()] = inside[metric].to_numpy()
  return grid


def displacement_curve(table):
  """Rows (direction, shift, balanced_accuracy, score, score_change,
  accuracy_change) for shifts 0..period along each direction; changes are
  against the unshifted crop. At shift = period the crop is on the grid again."""
  period = period_of(table)
  indexed = table.set_index(["dy", "dx"])
  origin = indexed.loc[(0, 0)]
  rows = []
  for direction, (ky, kx) in DIRECTIONS.items():
    for shift in range(period + 1):
      row = indexed.loc[(ky * shift, kx * shift)]
      rows.append(
        dict(
          direction=direction,
          shift=shift,
          balanced_accuracy=row["balanced_accuracy"],
          score=row["score"],
          score_change=row["score"] - origin["score"],
          accuracy_change=row["balanced_accuracy"] - origin["balanced_accuracy"],
        )
      )
  return pd.DataFrame(rows)


def average_score_drop(curve):
  """ASD% along the diagonal (see the module docstring)."""
  diagonal = curve[curve["direction"] == "diagonal"].set_index("shift")
  period = int(diagonal.index.max())
  start = diagonal.loc[0, "score"]
  drops = [(start - diagonal.loc[s, "score"]) / start for s in range(1, period)]
  return float(100.0 * np.mean(drops))


def offset_summary(table):
  """Headline numbers of one sweep's phase table.

  aligned: the phase (0, 0), on the 8x8 blocks and every chroma MCU alike;
  block_aligned_only: phases on the 8x8 luma blocks but across the images'
  chroma MCUs; mcu_aligned_only: phases other than (0, 0) on the images' own
  MCU grid (at 4:2:2, whose MCU is 8 high and 16 wide: (8, 0)); without the
  table's on_mcu column (older sweeps), every MCU is taken as 4:2:0's 16x16.
  A phase on some images' MCUs and not others' (a mix of layouts) counts in
  neither. misaligned_*: every phase off the 8x8 blocks.
  """
  grid = offset_map(table)
  period = grid.shape[0]
  dy, dx = np.meshgrid(np.arange(period), np.arange(period), indexing="ij")
  on_blocks = (dy % 8 == 0) & (dx % 8 == 0)
  shifted = (dy > 0) | (dx > 0)
  if "on_mcu" in table:
    on_mcu = offset_map(table, "on_mcu")
    block_only, mcu_only = on_blocks & shifted & (on_mcu == 0), shifted & (on_mcu == 1)
  else:
    block_only = on_blocks & shifted & ((dy % 16 != 0) | (dx % 16 != 0))
    mcu_only = shifted & (dy % 16 == 0) & (dx % 16 == 0)
  mean_of = lambda where: float(np.mean(grid[where])) if where.any() else float("nan")
  return dict(
    period=period,
    aligned=float(grid[0, 0]),
    block_aligned_only=mean_of(block_only),
    mcu_aligned_only=mean_of(mcu_only),
    misaligned_mean=float(np.nanmean(grid[~on_blocks])),
    misaligned_min=float(np.nanmin(grid[~on_blocks])),
    all_phases_mean=float(np.nanmean(grid)),
    asd_percent=average_score_drop(displacement_curve(table)),
  )
