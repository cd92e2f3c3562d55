"""tfjpeg.evaluation: the paper's metric and the two-class scores, on hand-checked cases."""

import numpy as np
import pytest

from tfjpeg import evaluation


def test_balanced_accuracy_weighs_classes_equally():
  labels = [0] * 8 + [1] * 2
  predictions = [0] * 8 + [0, 1]
  assert evaluation.balanced_accuracy(labels, predictions, 2) == pytest.approx((1 + 0.5) / 2)
  assert evaluation.balanced_accuracy(labels, [0] * 10, 3) == pytest.approx(0.5)


def test_roc_auc_by_hand():
  assert evaluation.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
  assert evaluation.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
  assert evaluation.roc_auc([0, 0, 1], [0.1, 0.2, 0.9]) == pytest.approx(1.0)
  assert np.isnan(evaluation.roc_auc([1, 1], [0.1, 0.2]))


def test_average_precision_by_hand():
  # Ranked: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg): (1/2)*1 + (1/2)*(2/3).
  ap = evaluation.average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
  assert ap == pytest.approx(0.5 + 1 / 3)
  # A tie between a positive and a negative at the top: one threshold, precision 1/2.
  assert evaluation.average_precision([1, 0], [0.7, 0.7]) == pytest.approx(0.5)
  assert evaluation.average_precision([1, 1, 0], [0.9, 0.8, 0.1]) == pytest.approx(1.0)


def test_condition_metrics_image_level_and_two_class():
  probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
  labels = np.array([0, 0, 1, 1])
  image_ids = np.array(["a", "a", "b", "b"])
  metrics = evaluation.condition_metrics(probabilities, labels, image_ids, 2)
  assert metrics["balanced_accuracy"] == pytest.approx(0.75)
  assert metrics["image_balanced_accuracy"] == pytest.approx(1.0)  # log-prob average
  assert metrics["n_images"] == 2 and metrics["n_patches"] == 4
  assert metrics["roc_auc"] == pytest.approx(1.0)
  three = evaluation.condition_metrics(np.full((2, 3), 1 / 3), np.array([0, 1]),
                                       np.array(["a", "b"]), 3)
  assert np.isnan(three["roc_auc"]) and np.isnan(three["average_precision"])


def test_confusion_matrix():
  matrix = evaluation.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3)
  assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_bootstrap_interval_resamples_images_not_patches():
  # 2 classes x 20 images x 100 patches; half the images entirely right.
  images = np.repeat(np.arange(40), 100)
  labels = images % 2
  right = (images // 2) % 2 == 0
  predictions = np.where(right, labels, 1 - labels)
  low, high = evaluation.bootstrap_interval(labels, predictions, images.astype(str))
  assert low < evaluation.balanced_accuracy(labels, predictions, 2) == 0.5 < high
  # Images are the unit: about 0.5 +- 1.96 * sqrt(0.25 / 20 / 2), not +- 0.01 (patches).
  assert 0.2 < high - low < 0.45
  assert (low, high) == evaluation.bootstrap_interval(labels, predictions, images.astype(str))
  assert evaluation.bootstrap_interval(labels, labels, images.astype(str)) == (1.0, 1.0)


def test_results_carry_the_interval():
  probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
  metrics = evaluation.condition_metrics(probabilities, np.array([0, 0, 1, 1]),
                                         np.array(["a", "b", "c", "d"]), 2)
  assert metrics["balanced_accuracy_low"] <= metrics["balanced_accuracy"] <= metrics[
      "balanced_accuracy_high"]
  assert {"balanced_accuracy_low", "balanced_accuracy_high"} <= set(evaluation.RESULT_COLUMNS)
