"""A trained classifier in any of its forms, as one object: class names, patch
size, and the probabilities of uint8 RGB patches.

`load(path)` takes
  - a run directory of this project (its run.json and selected weights);
  - a SavedModel exported by `tfjpeg.serving.export` (its `metadata` and
    `serve_patches` signatures);
  - any other SavedModel whose serving signature maps [N, H, W, 3] patches to
    class probabilities, or any `.keras` file that does;
with the class names and patch size from the model's own metadata when it has
them, else from the arguments (flags).
"""

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import MissingError
from tfjpeg.data import tasks
from tfjpeg.models import nets
from tfjpeg.train import rundir


@dataclasses.dataclass
class Classifier:
  class_names: list
  patch_size: int
  source: str  # the path loaded
  form: str  # "run", "tfjpeg-savedmodel", "savedmodel" or "keras"
  forward: Callable  # uint8 [N, P, P, 3] tensor -> [N, C] probabilities
  keras_model: keras.Model | None = None  # run and .keras forms

  @property
  def num_classes(self):
    return len(self.class_names)

  def probabilities(self, patches, batch_size=64):
    """[N, C] float probabilities of uint8 patches [N, P, P, 3]."""
    patches = np.asarray(patches)
    if len(patches) == 0:
      return np.zeros((0, self.num_classes), np.float32)
    return np.concatenate(
      [
        np.asarray(self.forward(tf.constant(patches[i : i + batch_size])))
        for i in range(0, len(patches), batch_size)
      ]
    )

  def fingerprint(self):
    """What a report names, so a reader can check the model is the one
    measured (`file_fingerprint`)."""
    return file_fingerprint(self.source)


def file_fingerprint(path):
  """SHA-256 of a model file, or of a folder's model files with their names:
  a run directory's description and selected weights (not its results or
  logs), every file of a SavedModel."""
  if os.path.isfile(path):
    files = [path]
  elif _is_run_directory(path):
    files = [os.path.join(path, rundir.DESCRIPTION), os.path.join(path, rundir.SELECTED_WEIGHTS)]
  else:
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
  digest = hashlib.sha256()
  for name in files:
    digest.update(os.path.relpath(name, path).encode())
    with open(name, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
  return digest.hexdigest()


def _is_run_directory(path):
  return os.path.isdir(path) and os.path.exists(os.path.join(path, rundir.DESCRIPTION))


def _names(class_names, count, source):
  if class_names:
    if len(class_names) != count:
      raise ConfigError(
        f"{source} gives {count} class probabilities but {len(class_names)} "
        f"class names were given ({', '.join(class_names)})"
      )
    return list(class_names)
  return [f"class{k}" for k in range(count)]


def _patch_size(shape, patch_size, source):
  height, width = shape[1], shape[2]
  if height is not None and width is not None:
    if height != width:
      raise ConfigError(f"{source} takes {height}x{width} inputs; only square patches are cut")
    if patch_size and patch_size != height:
      raise ConfigError(f"{source} takes {height}-pixel patches, not {patch_size}")
    return int(height)
  if not patch_size:
    raise ConfigError(f"{source} takes inputs of any size: give the patch size (--patch_size)")
  return int(patch_size)


def _from_keras(model, source, form, class_names, patch_size):
  forward = tf.function(
    lambda x: model(tf.cast(x, tf.float32), training=False), reduce_retracing=True
  )
  count = int(model.output_shape[-1])
  return Classifier(
    _names(class_names, count, source),
    _patch_size(model.input_shape, patch_size, source),
    source,
    form,
    forward,
    model,
  )


def _from_saved_model(path, class_names, patch_size):
  module = tf.saved_model.load(path)
  if hasattr(module, "metadata") and hasattr(module, "serve_patches"):  # tfjpeg.serving.export's
    metadata = module.metadata()
    names = [n.decode() for n in metadata["class_names"].numpy()]
    return Classifier(
      names,
      int(metadata["patch_size"]),
      path,
      "tfjpeg-savedmodel",
      lambda x: module.serve_patches(x)["probabilities"],
    )
  if "serving_default" not in module.signatures:
    raise ConfigError(f"{path} is a SavedModel without a serving signature")
  signature = module.signatures["serving_default"]
  ((name, spec),) = signature.structured_input_signature[1].items()
  outputs = signature.structured_outputs
  if len(outputs) != 1:
    raise ConfigError(
      f"{path}'s serving signature has {len(outputs)} outputs "
      f"({', '.join(outputs)}); one of class probabilities is needed"
    )
  ((output, out_spec),) = outputs.items()
  size = _patch_size(spec.shape.as_list(), patch_size, path)
  forward = lambda x: signature(**{name: tf.cast(x, spec.dtype)})[output]
  return Classifier(
    _names(class_names, int(out_spec.shape[-1]), path), size, path, "savedmodel", forward
  )


def load(
  path: str, class_names: Sequence[str] | None = None, patch_size: int | None = None
) -> "Classifier":
  """The classifier at `path` (see the module docstring)."""
  if not os.path.exists(path):
    raise MissingError(f"no model at {path}")
  if _is_run_directory(path):
    about, model = load_model(path)
    return _from_keras(model, path, "run", about["class_names"], about["patch_size"])
  if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
    return _from_saved_model(path, class_names, patch_size)
  if path.endswith(".keras"):
    return _from_keras(
      keras.models.load_model(path, compile=False), path, "keras", class_names, patch_size
    )
  raise ConfigError(
    f"{path} is neither a run directory (run.json), a SavedModel (saved_model.pb) nor a .keras file"
  )


def load_model(workdir):
  """(description, Keras model with the run's selected weights), from the run
  directory alone."""
  about = rundir.description(workdir)
  weights = os.path.join(workdir, about["weights"])
  if not os.path.exists(weights):
    raise MissingError(f"{workdir} has no trained weights ({weights}); train it first")
  model = nets.build(about["net"], about["patch_size"], about["num_classes"])
  model.load_weights(weights)
  return about, model


def load_run(workdir: str, **overrides: Any) -> tuple:
  """(config, task, model with its selected weights) of a trained run, to test
  it on its task; `overrides` (None values ignored) change the config, e.g.
  its test conditions."""
  config = config_lib.override(config_lib.saved(workdir), **overrides)
  task = tasks.task_for(config, logging.info)
  about, model = load_model(workdir)
  if list(task.class_names) != about["class_names"] or task.patch_size != about["patch_size"]:
    raise ConfigError(
      f"{workdir} was trained on classes {about['class_names']} at "
      f"{about['patch_size']} px, but its task now has {task.class_names} at "
      f"{task.patch_size} px (has the data folder changed?)"
    )
  return config, task, model
