"""Metrics over test conditions: one row of results.csv per condition.

`balanced_accuracy` is the paper's metric, the average per-class accuracy over
patches. `image_balanced_accuracy` first averages the log-probabilities of an
image's patches, then scores images.
"""

import numpy as np
import pandas as pd

from tfjpeg import input_pipeline

RESULT_COLUMNS = ("task", "net", "train_crop", "train_qf", "test_crop", "test_qf",
                  "balanced_accuracy", "accuracy", "n_images", "n_patches",
                  "image_balanced_accuracy")


def balanced_accuracy(labels, predictions, num_classes):
  """Mean over the classes present in `labels` of the fraction predicted right."""
  labels, predictions = np.asarray(labels), np.asarray(predictions)
  recalls = [np.mean(predictions[labels == c] == c)
             for c in range(num_classes) if np.any(labels == c)]
  return float(np.mean(recalls)) if recalls else float("nan")


def confusion_matrix(labels, predictions, num_classes):
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
  return matrix


def predict(model, dataset):
  """Runs `model` over an eval dataset; returns per-patch arrays."""
  keys = ("label", "image_id", "condition", "offset")
  collected = {k: [] for k in keys + ("probabilities",)}
  for batch in dataset:
    collected["probabilities"].append(np.asarray(model(batch["image"], training=False)))
    for k in keys:
      collected[k].append(batch[k].numpy())
  return {k: np.concatenate(v) if v else np.array([]) for k, v in collected.items()}


def condition_metrics(probabilities, labels, image_ids, num_classes):
  predictions = probabilities.argmax(-1)
  frame = pd.DataFrame(np.log(np.clip(probabilities, 1e-12, 1.0)))
  frame["image_id"], frame["label"] = image_ids, labels
  per_image = frame.groupby("image_id").mean()
  image_predictions = per_image.drop(columns="label").to_numpy().argmax(-1)
  return dict(
      balanced_accuracy=balanced_accuracy(labels, predictions, num_classes),
      accuracy=float(np.mean(predictions == labels)),
      n_images=int(len(per_image)), n_patches=int(len(labels)),
      image_balanced_accuracy=balanced_accuracy(per_image["label"].astype(int),
                                                image_predictions, num_classes))


def evaluate(model, task, config, split="test", conditions=None):
  """Scores `model` on every test condition of `config`.

  Returns:
    (results, confusions): a DataFrame with `RESULT_COLUMNS`, and a dict
    condition name -> confusion matrix.
  """
  conditions = list(conditions or config.conditions())
  dataset = input_pipeline.eval_dataset(task, split, conditions, config.pipeline(task))
  out = predict(model, dataset)
  rows, confusions = [], {}
  for number, condition in enumerate(conditions):
    mask = out["condition"] == number
    probabilities, labels = out["probabilities"][mask], out["label"][mask]
    rows.append(dict(task=config.task, net=config.net, train_crop=config.train_crop,
                     train_qf=config.train_qf_label, test_crop=condition.crop,
                     test_qf=condition.qf or "none",
                     **condition_metrics(probabilities, labels, out["image_id"][mask],
                                         task.num_classes)))
    confusions[condition.name] = confusion_matrix(labels, probabilities.argmax(-1),
                                                  task.num_classes)
  return pd.DataFrame(rows, columns=RESULT_COLUMNS), confusions
