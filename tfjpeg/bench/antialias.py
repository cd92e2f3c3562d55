"""(p) What invariance costs: a training step of each --antialias setting
against the plain net's, in the same process.

Each net is built plain, blurred (BlurPool, 4 taps) and with APS, and each
takes training steps (Adam, cross-entropy) on one batch of 32 random 64 px
patches held in memory, so the nets alone are timed. The three take turns,
a slice of the time each, so that a busy machine slows them alike. The
ratio is the plain net's steps per second over the setting's: how many
times longer a step takes. Anti-aliasing runs each strided layer at stride
1 (hpf's 8x8 stride-8 convolution: 64 times the positions), which is most
of the cost; the blur or the polyphase choice after it is little.
"""

import time

import numpy as np

NETS = ("hpf", "bondi", "plain", "resnet50")
MODES = ("blur", "aps")
PATCH, BATCH, CLASSES = 64, 32, 4


def _stepper(net, mode):
  import keras  # pylint: disable=g-import-not-at-top

  from tfjpeg.models import nets  # pylint: disable=g-import-not-at-top

  keras.utils.set_random_seed(0)
  model = nets.build(net, PATCH, CLASSES, antialias=mode)
  model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (BATCH, PATCH, PATCH, 3)).astype("float32")
  labels = rng.integers(0, CLASSES, (BATCH,))
  for _ in range(2):  # traced and warm
    model.train_on_batch(images, labels)
  return lambda: float(model.train_on_batch(images, labels))  # a host value: the step is done


def step_rates(net, seconds, rounds=3, min_steps=3):
  """{mode: training steps per second} of `net` for none and each of MODES:
  `rounds` turns each, of a share of `seconds` and at least `min_steps`
  steps (a slow net's single step would be all noise)."""
  steppers = {mode: _stepper(net, mode) for mode in ("none",) + MODES}
  steps = dict.fromkeys(steppers, 0)
  spent = dict.fromkeys(steppers, 0.0)
  for _ in range(rounds):
    for mode, step in steppers.items():
      started = time.perf_counter()
      done = 0
      while done < min_steps or time.perf_counter() - started < seconds / rounds:
        step()
        done += 1
      steps[mode] += done
      spent[mode] += time.perf_counter() - started
  return {mode: steps[mode] / spent[mode] for mode in steppers}


def measure(report, seconds, step, nets=NETS):
  """Adds (p)'s rows to `report`: each setting's steps per second and its
  step time as a multiple of the plain net's."""
  for net in nets:
    rates = step_rates(net, seconds)
    unit = f"steps/s (batch {BATCH}, {PATCH} px)"
    report.add(f"(p) {net}, plain", rates["none"], unit)
    for mode in MODES:
      report.add(f"(p) {net}, --antialias={mode}", rates[mode], unit)
      report.add(f"(p) {net} {mode}: step time / plain's", rates["none"] / rates[mode], "x")
    step()
