"""Each compact net learns the built-in task of its kind: a learning check, not a timing.

The forensic nets must learn `cameras`; `plain`, the compact vision net, `shapes`.
"""

import keras
import numpy as np
import pytest

from tfjpeg import input_pipeline
from tfjpeg import models
from tfjpeg import tasks

# (epochs over the training patches, training accuracy to reach; chance is 0.25)
BUDGET = {"hpf": (2, 0.6), "bayar": (2, 0.6), "bondi": (4, 0.4), "plain": (3, 0.5)}
TASK_FOR = {"forensic": "cameras", "vision": "shapes"}


def test_every_compact_net_has_a_learning_check():
  assert set(BUDGET) == {n for n, spec in models.NETS.items() if spec.compact}


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_compact_net_learns_the_builtin_task_of_its_kind(name, tmp_path_factory, monkeypatch):
  monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
  keras.utils.set_random_seed(0)
  task = tasks.get(TASK_FOR[models.NETS[name].made_for])
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
