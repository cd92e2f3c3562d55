"""Each compact net learns the built-in forensic task: a learning check, not a timing."""

import keras
import numpy as np
import pytest

from tfjpeg import input_pipeline
from tfjpeg import models
from tfjpeg import tasks

# (epochs over the training patches, training accuracy to reach; chance is 0.25)
BUDGET = {"hpf": (2, 0.6), "bayar": (2, 0.6), "bondi": (4, 0.4)}


def test_every_compact_net_has_a_learning_check():
  assert set(BUDGET) == {n for n, spec in models.NETS.items() if spec.compact}


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_compact_net_learns_the_builtin_forensic_task(name, tmp_path_factory, monkeypatch):
  monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
  keras.utils.set_random_seed(0)
  task = tasks.get("cameras")
  config = input_pipeline.PipelineConfig(patch_size=64, patches_per_image=4, batch_size=32)
  model = models.build(name, 64, task.num_classes)
  model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])
  epochs, target = BUDGET[name]
  for epoch in range(epochs):
    model.fit(input_pipeline.to_inputs(input_pipeline.train_dataset(task, config, epoch)),
              verbose=0, shuffle=False)
  # Accuracy of the trained net on a fixed pass over the training patches.
  _, accuracy = model.evaluate(
      input_pipeline.to_inputs(input_pipeline.train_dataset(task, config, 0)), verbose=0)
  assert accuracy > target, f"{name}: training accuracy {accuracy:.3f} after {epochs} epochs"
