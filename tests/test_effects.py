"""The paper's two headline effects, at reduced scale, on held-out test images,
and the learning checks of the default net of each kind.

Five short fits (in-process, deterministic) of the default compact nets, every
image first saved whole at QF 100 (the lattice of the alignment experiment):

  forensic (`hpf` on the built-in `cameras`):
    aligned    trained on grid-aligned crops
    random     trained on random crops, no augmentation
    aug50      trained on random crops, half the patches saved at QF 50
  vision (`plain` on the built-in `shapes`):
    aligned, random   as above

and the effects, each scored by balanced accuracy on the test split:

  alignment  the forensic net trained aligned loses more on random test crops
             than the one trained random does; the vision nets barely care;
  quality    without augmentation the forensic net falls at test QF 50, and
             QF-50 augmentation lifts it there; the vision net barely moves.

The bounds come from MEASURED below: the same fits over seeds 0, 1 and 2 on
2 cores (`python tests/test_effects.py 0 1 2` prints them), with each bound
placed between the worst case over the seeds and what a broken pipeline gives
(crops that ignore the grid make `aligned` a random crop and erase the
alignment gap; an augmentation that does nothing leaves aug50 where random is).
"""

import sys

import keras
import pytest

from tfjpeg import config as config_lib
from tfjpeg.analysis import evaluation
from tfjpeg.data import tasks
from tfjpeg.models import nets
from tfjpeg.pipeline import input_pipeline

# Reduced scale: 100 of the 200 built-in camera scenes, 400 of the 800 shapes,
# 4 patches of 64 per image, a few epochs; a minute or two for all five fits.
SCALE = {
  "cameras": dict(net="hpf", builtin_scenes=100, epochs=3),
  "shapes": dict(net="plain", builtin_scenes=400, epochs=4),
}
RECIPES = {
  "cameras": {
    "aligned": dict(train_crop="aligned"),
    "random": dict(train_crop="random"),
    "aug50": dict(train_crop="random", train_qfs=(50,), aug_fraction=0.5),
  },
  "shapes": {"aligned": dict(train_crop="aligned"), "random": dict(train_crop="random")},
}
CONDITIONS = (
  input_pipeline.Condition("aligned"),
  input_pipeline.Condition("random"),
  input_pipeline.Condition("random", 50),
)
# Measured on 2 cores with `python tests/test_effects.py 0 1 2`: balanced
# accuracy on the test split (4 patches of each test image;
# chance 0.25), seeds 0 / 1 / 2:
#
#  cameras aligned  aligned 1.000 0.981 1.000  random 0.712 0.559 0.734 rnd@50 0.263 0.250 0.256
#  cameras random   aligned 0.822 0.616 0.872  random 0.822 0.594 0.869 rnd@50 0.250 0.250 0.250
#  cameras aug50    aligned 0.888 0.637 0.891  random 0.869 0.575 0.922 rnd@50 0.634 0.494 0.597
#  shapes  aligned  aligned 0.531 0.516 0.478  random 0.550 0.509 0.475 rnd@50 0.581 0.503 0.487
#  shapes  random   aligned 0.503 0.512 0.491  random 0.528 0.537 0.509 rnd@50 0.506 0.534 0.491
#
# So: the alignment gap (aligned net's loss on random crops less the random
# net's) 0.29 / 0.40 / 0.26, bound 0.15; crops that ignore the grid give 0.
# The fall at QF 50 without augmentation 0.57 / 0.34 / 0.62, bound 0.25; the
# lift by QF-50 augmentation 0.38 / 0.24 / 0.35, bound 0.15; an augmentation
# that does nothing gives 0. The vision nets move by at most 0.025 between
# crops or at QF 50, bound 0.08. Learning: cameras at least 0.616, bound 0.5;
# shapes at least 0.475, bound 0.4.


def config_for(task, recipe, seed):
  scale = SCALE[task]
  return config_lib.make(
    task=task,
    net=scale["net"],
    builtin_scenes=scale["builtin_scenes"],
    lattice_qf=100,
    patches_per_image=4,
    batch_size=32,
    shuffle_buffer=None,
    seed=seed,
    split_seed=seed,
    **RECIPES[task][recipe],
  )


def fit_and_score(task_name, recipe, seed):
  """{condition name: balanced accuracy on the test split} of one fit."""
  config = config_for(task_name, recipe, seed)
  task = tasks.task_for(config, log=lambda *_: None)
  pipeline = input_pipeline.PipelineConfig.for_run(config, task)
  keras.utils.set_random_seed(seed)
  model = nets.build(config.net, task.patch_size, task.num_classes)
  model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
  for epoch in range(SCALE[task_name]["epochs"]):
    # Batch by batch: one pass over the epoch (fit() warns at the end of a
    # dataset of unknown length).
    for images, labels in input_pipeline.to_inputs(
      input_pipeline.train_dataset(task, pipeline, epoch)
    ):
      model.train_on_batch(images, labels)
  results, _ = evaluation.evaluate(model, task, config, conditions=CONDITIONS)
  assert set(results["n_images"]) == {task.num_images["test"]}
  return {c.name: float(a) for c, a in zip(CONDITIONS, results["balanced_accuracy"])}


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
  """Every fit of RECIPES at seed 0, on data generated in the test's cache."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("TFJPEG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    return {
      (task, recipe): fit_and_score(task, recipe, 0)
      for task, recipes in RECIPES.items()
      for recipe in recipes
    }


ALIGNED, RANDOM, QF50 = (c.name for c in CONDITIONS)


def test_forensic_nets_learn_the_builtin_task_on_held_out_images(scores):
  """The learning check of `hpf`, on the test split, far above chance (0.25)."""
  for recipe in RECIPES["cameras"]:
    assert scores[("cameras", recipe)][ALIGNED] > 0.5, (recipe, scores[("cameras", recipe)])


def test_vision_nets_learn_the_builtin_task_on_held_out_images(scores):
  """The learning check of `plain`, on the test split, above chance (0.25)."""
  for recipe in RECIPES["shapes"]:
    assert scores[("shapes", recipe)][RANDOM] > 0.4, (recipe, scores[("shapes", recipe)])


def test_alignment_a_forensic_net_trained_aligned_loses_on_random_crops(scores):
  aligned, random = scores[("cameras", "aligned")], scores[("cameras", "random")]
  loss_aligned = aligned[ALIGNED] - aligned[RANDOM]
  loss_random = random[ALIGNED] - random[RANDOM]
  assert loss_aligned - loss_random > 0.15, (aligned, random)


def test_alignment_a_vision_net_barely_cares(scores):
  for recipe in RECIPES["shapes"]:
    score = scores[("shapes", recipe)]
    assert abs(score[ALIGNED] - score[RANDOM]) < 0.08, (recipe, score)


def test_quality_a_forensic_net_falls_at_qf50_and_augmentation_lifts_it(scores):
  plain, augmented = scores[("cameras", "random")], scores[("cameras", "aug50")]
  assert plain[RANDOM] - plain[QF50] > 0.25, plain
  assert augmented[QF50] - plain[QF50] > 0.15, (plain, augmented)


def test_quality_a_vision_net_barely_moves_at_qf50(scores):
  score = scores[("shapes", "random")]
  assert abs(score[RANDOM] - score[QF50]) < 0.08, score


if __name__ == "__main__":  # the measurement behind the bounds: seeds on the command line
  for seed in [int(s) for s in sys.argv[1:]] or [0]:
    for task, recipes in RECIPES.items():
      for recipe in recipes:
        score = fit_and_score(task, recipe, seed)
        print(
          f"seed {seed} {task:8} {recipe:8} aligned {score[ALIGNED]:.3f} "
          f"random {score[RANDOM]:.3f} random_qf50 {score[QF50]:.3f}",
          flush=True,
        )
