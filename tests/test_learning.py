"""Each compact net learns a task of its kind: a learning check, not a timing,
scored on held-out test images, never on the patches it was trained on.

In the README's test command: `hpf` and `plain`, the default nets of each
kind, on the built-in tasks (tests/test_effects.py, whose fits also show the
paper's effects), and `hpf` on the real-photo compression-history task when
../shared/data is present (below). With TFJPEG_ALL_LEARNING_CHECKS=1 also
`bayar` and `minimal`, on both (a minute or two each on 2 cores: the suite's
10-minute budget leaves no room); `bondi` learns too slowly for a bounded
check (below); the ImageNet nets are the paper's, GPU work, and only built
(tests/test_models.py).
"""

import os

import keras
import pytest

from tfjpeg import config as config_lib
from tfjpeg.analysis import evaluation
from tfjpeg.data import tasks
from tfjpeg.models import nets
from tfjpeg.pipeline import input_pipeline

import helpers as testing

# (epochs over the training patches, balanced accuracy on the held-out test
# images to reach; chance is 0.25) of the nets not in the suite; hpf and
# plain, the suite's, are checked by tests/test_effects.py.
BUDGET = {"bayar": (3, 0.45), "minimal": (3, 0.4)}
# Checked in the suite by tests/test_effects.py: the default net of each kind.
# The others' checks run with TFJPEG_ALL_LEARNING_CHECKS=1; configs/nets.py's
# study (docs/tasks-and-nets.md) measures every net over 3 seeds.
IN_THE_SUITE = {"hpf", "plain"}
ALL_CHECKS = os.environ.get("TFJPEG_ALL_LEARNING_CHECKS") == "1"
# Bondi et al.'s net as published learns the built-in task too slowly for a
# bounded check: run deterministically (seed 0, op determinism), 0.255 after 4
# epochs and 0.333 after 8; its old check (4 epochs, > 0.4) passed only on
# lucky thread timings. 6 epochs of configs/nets.py take it to 0.48 +- 0.02 (README).
TOO_SLOW_TO_CHECK = {"bondi"}
TASK_FOR = {"forensic": "cameras", "vision": "shapes"}
# Half the built-in cameras' scenes and all the images of half the shapes'
# (measured here: hpf 0.70 after 2 epochs, plain 0.65 after 3, seed 0).
SCENES = {"cameras": 100, "shapes": 400}
# Real photos: (epochs, balanced accuracy on held-out test photos to reach; chance 0.25).
REAL_BUDGET = {"hpf": (3, 0.4), "bayar": (3, 0.32), "minimal": (3, 0.35)}
# In the suite, hpf on the tiles of 24 of the 42 photos (measured here: 0.43
# after 3 epochs against 0.54 on all of them), so its bound is lower.
REAL_IN_THE_SUITE = dict(photos=24, at_least=0.35)
# Bondi et al.'s net as published (inputs scaled to [0, 1], no non-linearity
# before its fourth convolution) stayed at chance here even after 8 epochs:
# the faithful baseline of the paper, not a net for small real datasets.
NOT_ON_REAL_PHOTOS = {"bondi"}


def _fit(name, task, config, epochs):
  keras.utils.set_random_seed(0)
  model = nets.build(name, config.patch_size, task.num_classes)
  model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
  )
  for epoch in range(epochs):
    # Batch by batch: one pass over the epoch (fit() warns at the end of a
    # dataset of unknown length).
    for images, labels in input_pipeline.to_inputs(
      input_pipeline.train_dataset(task, config, epoch)
    ):
      model.train_on_batch(images, labels)
  return model


def test_every_compact_net_has_a_learning_check():
  compact = {n for n, spec in nets.NETS.items() if spec.compact}
  checked = set(BUDGET) | IN_THE_SUITE
  assert checked | TOO_SLOW_TO_CHECK == compact and not checked & TOO_SLOW_TO_CHECK
  forensic = {n for n in compact if nets.NETS[n].made_for == "forensic"}
  assert set(REAL_BUDGET) | NOT_ON_REAL_PHOTOS == forensic


def test_the_default_nets_are_checked_by_the_effects_fits():
  import test_effects  # pylint: disable=g-import-not-at-top

  assert {scale["net"] for scale in test_effects.SCALE.values()} == IN_THE_SUITE


if ALL_CHECKS:  # the other compact nets: only on request (see the module docstring)

  @pytest.mark.parametrize("name", sorted(BUDGET))
  def test_compact_net_learns_the_builtin_task_of_its_kind(name, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    kind = TASK_FOR[nets.NETS[name].made_for]
    run = config_lib.make(
      task=kind, net=name, builtin_scenes=SCENES[kind], patches_per_image=4, test_crops=("random",)
    )
    task = tasks.get(run.task)
    epochs, target = BUDGET[name]
    model = _fit(name, task, input_pipeline.PipelineConfig.for_run(run, task), epochs)
    results, _ = evaluation.evaluate(model, task, run)
    score = results["balanced_accuracy"].iloc[0]
    assert score > target, f"{name}: {score:.3f} on held-out images after {epochs} epochs"


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data absent")
@pytest.mark.parametrize("name", sorted(REAL_BUDGET) if ALL_CHECKS else ["hpf"])
def test_forensic_net_learns_real_photos_on_held_out_photos(name, tmp_path_factory, monkeypatch):
  monkeypatch.setenv("TFJPEG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
  run = config_lib.make(
    task="real_history",
    net=name,
    patches_per_image=2,
    shuffle_buffer=None,
    test_crops=("aligned",),
    builtin_scenes=None if ALL_CHECKS else REAL_IN_THE_SUITE["photos"],
  )
  task = tasks.get(run.task)
  epochs, target = REAL_BUDGET[name]
  if not ALL_CHECKS:
    target = REAL_IN_THE_SUITE["at_least"]
  model = _fit(name, task, input_pipeline.PipelineConfig.for_run(run, task), epochs)
  results, _ = evaluation.evaluate(model, task, run)
  score = results["balanced_accuracy"].iloc[0]
  assert results["n_images"].iloc[0] == task.num_images["test"]
  assert score > target, f"{name}: {score:.3f} on held-out photos after {epochs} epochs"
