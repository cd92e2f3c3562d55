"""Running a model over an evaluation dataset, batch by batch, traced once."""

import numpy as np
import tensorflow as tf


def predict(model, dataset):
  """Runs `model` over an eval dataset; returns per-patch arrays: `probabilities`
  and every other key of the batches but the images."""
  collected = {}
  # One traced forward pass: calling a Keras model eagerly costs a few
  # milliseconds per batch, which dominates small-patch evaluation.
  forward = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
  for batch in dataset:
    collected.setdefault("probabilities", []).append(np.asarray(forward(batch["image"])))
    for k, v in batch.items():
      if k != "image":
        collected.setdefault(k, []).append(v.numpy())
  return {k: np.concatenate(v) for k, v in collected.items()}
