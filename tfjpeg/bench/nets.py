"""Which side bounds training on an accelerator: the nets or the JPEG input?

(h) Each paper net's training speed, in images per second, at 224 and 512
    pixels, in float32 and in mixed precision (mixed_float16, the
    --mixed_precision setting), on random patches already in memory: the
    most the net can take.
(i) The host's JPEG decode capacity on every core (OpenCV whole decodes of
    camera-size sources, `tfjpeg.bench.scale`), as patches per second at
    10 patches of 512 and 1 patch of 224 per image. The training pipeline
    reaches a measured fraction of it (section "scale"; 0.8 on the 2-core CPU
    of the README).

Plain Keras, whatever its backend: it runs with KERAS_BACKEND=jax on a
machine without TensorFlow. Heavy imports stay inside functions.
"""

import time

import numpy as np

PAPER_NETS = ("efficientnetb0", "efficientnetb4", "resnet50", "xception")
BATCHES = {224: 32, 512: 8}


def train_rate(net, patch, batch, mixed_precision, seconds=10.0, num_classes=28):
  """Training images per second of `net` on random uint8-valued patches."""
  import keras  # pylint: disable=g-import-not-at-top

  from tfjpeg.models import nets  # pylint: disable=g-import-not-at-top

  keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
  try:
    model = nets.build(net, patch, num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, patch, patch, 3)).astype("float32")
    labels = rng.integers(0, num_classes, (batch,))
    for _ in range(3):  # compile and warm up
      model.train_on_batch(images, labels)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
      float(model.train_on_batch(images, labels))  # a host value: the step has finished
      steps += 1
    return steps * batch / (time.perf_counter() - started)
  finally:
    keras.mixed_precision.set_global_policy("float32")


def measure(
  report,
  directory,
  nets=PAPER_NETS,
  patches=(224, 512),
  seconds=10.0,
  step=lambda: None,
  workers=None,
  num_images=12,
  size=(2000, 3008),
  log=print,
):
  """Adds (h) and (i) to `report` (a `tfjpeg.bench.benchmark.Report`); `log` gets
  each row as it is measured (minutes apart on an accelerator: compilation)."""
  import os  # pylint: disable=g-import-not-at-top

  import keras  # pylint: disable=g-import-not-at-top

  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top

  workers = workers or os.cpu_count()
  backend = keras.backend.backend()
  for net in nets:
    for patch in patches:
      for mixed in (False, True):
        rate = train_rate(net, patch, BATCHES.get(patch, 8), mixed, seconds)
        report.add(
          f"(h) {net} {patch} px {'mixed' if mixed else 'float32'} ({backend})",
          rate,
          f"images/s (batch {BATCHES.get(patch, 8)})",
        )
        log("  ".join(str(v) for v in report.rows[-1]))
        step()
  paths = benchmark_scale.make_camera_sources(
    os.path.join(directory, "camera_sources"), num_images, size
  )
  for patch, count in ((512, 10), (224, 1)):
    rate = benchmark_scale.opencv_rate(paths, "decode", patch, count, seconds, workers)
    report.add(
      f"(i) host decode bound, {workers} processes, {count} x {patch} px", rate, "patches/s"
    )
    log("  ".join(str(v) for v in report.rows[-1]))
  step()
