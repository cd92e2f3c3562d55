"""tfjpeg.core.metrics: the paper's metric and the two-class scores, on hand-checked cases
(scikit-learn computes them; these keep it equal to the project's own cases)."""

import numpy as np
import pytest

from tfjpeg.analysis import evaluation
from tfjpeg.core import metrics


def test_balanced_accuracy_weighs_classes_equally():
  labels = [0] * 8 + [1] * 2
  predictions = [0] * 8 + [0, 1]
  assert metrics.balanced_accuracy(labels, predictions) == pytest.approx((1 + 0.5) / 2)
  assert metrics.balanced_accuracy(labels, [0] * 10) == pytest.approx(0.5)


def test_roc_auc_by_hand():
  assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
  assert metrics.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
  assert metrics.roc_auc([0, 0, 1], [0.1, 0.2, 0.9]) == pytest.approx(1.0)
  assert np.isnan(metrics.roc_auc([1, 1], [0.1, 0.2]))


def test_average_precision_by_hand():
  # Ranked: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg): (1/2)*1 + (1/2)*(2/3).
  ap = metrics.average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
  assert ap == pytest.approx(0.5 + 1 / 3)
  # A tie between a positive and a negative at the top: one threshold, precision 1/2.
  assert metrics.average_precision([1, 0], [0.7, 0.7]) == pytest.approx(0.5)
  assert metrics.average_precision([1, 1, 0], [0.9, 0.8, 0.1]) == pytest.approx(1.0)


def test_condition_metrics_image_level_and_two_class():
  probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
  labels = np.array([0, 0, 1, 1])
  image_ids = np.array(["a", "a", "b", "b"])
  scores = metrics.condition_metrics(probabilities, labels, image_ids)
  assert scores["balanced_accuracy"] == pytest.approx(0.75)
  assert scores["image_balanced_accuracy"] == pytest.approx(1.0)  # log-prob average
  assert scores["n_images"] == 2 and scores["n_patches"] == 4
  assert scores["roc_auc"] == pytest.approx(1.0)
  three = metrics.condition_metrics(np.full((2, 3), 1 / 3), np.array([0, 1]), np.array(["a", "b"]))
  assert np.isnan(three["roc_auc"]) and np.isnan(three["average_precision"])


def test_confusion_matrix():
  matrix = metrics.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3)
  assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_bootstrap_interval_resamples_images_not_patches():
  # 2 classes x 20 images x 100 patches; half the images entirely right.
  images = np.repeat(np.arange(40), 100)
  labels = images % 2
  right = (images // 2) % 2 == 0
  predictions = np.where(right, labels, 1 - labels)
  low, high = metrics.bootstrap_interval(labels, predictions, images.astype(str))
  assert low < metrics.balanced_accuracy(labels, predictions) == 0.5 < high
  # Images are the unit: about 0.5 +- 1.96 * sqrt(0.25 / 20 / 2), not +- 0.01 (patches).
  assert 0.2 < high - low < 0.45
  assert (low, high) == metrics.bootstrap_interval(labels, predictions, images.astype(str))
  assert metrics.bootstrap_interval(labels, labels, images.astype(str)) == (1.0, 1.0)


def test_results_carry_the_interval():
  probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
  scores = metrics.condition_metrics(
    probabilities, np.array([0, 0, 1, 1]), np.array(["a", "b", "c", "d"])
  )
  assert (
    scores["balanced_accuracy_low"]
    <= scores["balanced_accuracy"]
    <= scores["balanced_accuracy_high"]
  )
  assert {"balanced_accuracy_low", "balanced_accuracy_high"} <= set(evaluation.RESULT_COLUMNS)


def test_auc_interval_is_the_bootstrap_of_weighted_aucs_by_scikit_learn():
  """Each resample's AUC (images drawn within their class, patches weighted
  by their image's count) equals scikit-learn's ROC AUC with those weights,
  ties included."""
  from sklearn import metrics as sk_metrics  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(3)
  images = np.repeat(np.arange(30), 2)  # two patches an image
  labels = (images >= 12).astype(int)
  scores = np.round(rng.random(60) * 0.6 + 0.3 * labels, 1)  # rounded: many ties
  low, high = metrics.auc_interval(labels, scores, images, resamples=200, seed=7)
  draws = np.random.default_rng(7)
  weights = np.zeros((200, 60))
  for k in (0, 1):
    own = np.unique(images[labels == k])
    picks = draws.integers(0, len(own), size=(200, len(own)))
    counts = np.stack([np.bincount(p, minlength=len(own)) for p in picks])
    weights[:, labels == k] = counts[:, np.searchsorted(own, images[labels == k])]
  aucs = [sk_metrics.roc_auc_score(labels, scores, sample_weight=w) for w in weights]
  assert (low, high) == pytest.approx(
    (np.percentile(aucs, 2.5), np.percentile(aucs, 97.5)), abs=1e-12
  )
  assert low < metrics.roc_auc(labels == 1, scores) < high
  assert metrics.auc_interval(labels, scores + 2 * labels, images) == (1.0, 1.0)
  assert np.isnan(metrics.auc_interval(np.zeros(4, int), scores[:4], images[:4])[0])
