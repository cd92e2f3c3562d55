"""Where a run trains: tf.distribute strategies, the cluster's workers and
their folders, and the synchronous step Keras's fit does not run across
processes."""

import os

import keras
import numpy as np
import tensorflow as tf

from tfjpeg.models import inference


def configure_cpu_devices(count):
  """Splits the CPU into `count` logical devices (before TensorFlow starts)."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
  )


def make_strategy(name):
  if name == "mirrored":
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
      d.name for d in tf.config.list_logical_devices("CPU")
    ]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multiworker":  # reads TF_CONFIG; a single local worker without it
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def worker_workdir(workdir, cluster=None):
  """Where this process writes: the run directory for a single process or a
  multi-worker run's chief (TF_CONFIG's "chief", else worker 0); any other
  worker, which takes the same steps, keeps its own files in
  workdir/<type><index>, so no two processes write one file. `cluster`: a
  cluster resolver (default: TF_CONFIG's)."""
  cluster = cluster or tf.distribute.cluster_resolver.TFConfigClusterResolver()
  kind, index = cluster.task_type, cluster.task_id
  if (
    kind is None
    or kind == "chief"
    or (kind == "worker" and index == 0 and "chief" not in cluster.cluster_spec().as_dict())
  ):
    return workdir
  return os.path.join(workdir, f"{kind}{index}")


def cluster_workers(cluster=None):
  """How many processes the cluster holds (1 without TF_CONFIG)."""
  spec = (
    (cluster or tf.distribute.cluster_resolver.TFConfigClusterResolver()).cluster_spec().as_dict()
  )
  return max(1, sum(len(spec.get(kind, [])) for kind in ("chief", "worker")))


def train_epoch_across_workers(model, strategy, dataset, steps):
  """One epoch of `steps` synchronous steps on every worker, with a step of our
  own: Keras 3's fit does not run a MultiWorkerMirroredStrategy across
  processes (keras-team/keras#20585). Each worker reads its share of the
  batches (tf.data's automatic sharding); gradients, loss and accuracy are
  summed over all replicas. Returns {loss, accuracy}."""
  batches = iter(strategy.experimental_distribute_dataset(dataset.repeat()))

  def replica_step(images, labels):
    with tf.GradientTape() as tape:
      probabilities = model(images, training=True)
      loss = tf.nn.compute_average_loss(
        keras.losses.sparse_categorical_crossentropy(labels, probabilities)
      )
    variables = model.trainable_variables
    model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    right = tf.equal(tf.argmax(probabilities, -1, output_type=tf.int32), tf.cast(labels, tf.int32))
    return loss, tf.reduce_sum(tf.cast(right, tf.float32)), tf.cast(tf.size(labels), tf.float32)

  @tf.function
  def step(iterator):
    out = strategy.run(replica_step, args=next(iterator))
    return [strategy.reduce("SUM", value, axis=None) for value in out]

  loss = right = count = 0.0
  for _ in range(steps):
    step_loss, step_right, step_count = (float(v) for v in step(batches))
    loss, right, count = loss + step_loss, right + step_right, count + step_count
  return dict(loss=loss / steps, accuracy=right / count)


def evaluate_locally(model, dataset):
  """{loss, accuracy} of `model` on `dataset`, computed in this process alone
  (every worker of a cluster gets the same numbers)."""
  out = inference.predict(model, dataset)
  probabilities = np.clip(out["probabilities"], 1e-7, 1.0)
  if not len(probabilities):
    return {}
  labels = out["label"]
  return dict(
    loss=float(-np.mean(np.log(probabilities[np.arange(len(labels)), labels]))),
    accuracy=float(np.mean(probabilities.argmax(-1) == labels)),
  )
