"""(m) A resize-blur-JPEG training chain: the pipeline against Pillow and scipy.

The chain is `CHAIN`: every training image resized by a factor drawn in
0.5..1.5 (bicubic), blurred with a sigma drawn in 0..2 (half the images), saved
at a QF drawn in 65..100, then a random patch cut. The baseline does the same
per sample with the libraries the published protocols use (Pillow's decode,
resize and JPEG, scipy's `gaussian_filter` on each channel, as CNNDetection
does), in one process per core. Both give the same pixels for the same draws
(tests/test_chains.py); the ratio is the pipeline's patches per second over
the baseline's, in the same process run.
"""

import multiprocessing
import time

import numpy as np

from tfjpeg.bench import folders

CHAIN = "resize:0.5..1.5>blur:0..2@0.5>jpeg:65..100"
GOAL_KEY = "chain/pillow"


def _pillow_worker(args):
  """Patches per second of one process: decode, resize, blur, JPEG, crop."""
  import io  # pylint: disable=g-import-not-at-top

  import scipy.ndimage  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  paths, patch, seconds, seed = args
  rng = np.random.default_rng(seed)
  done, started = 0, time.perf_counter()
  tried = 0
  while time.perf_counter() - started < seconds:
    tried += 1
    try:
      image = Image.open(paths[(tried * 7 + seed) % len(paths)]).convert("RGB")
    except OSError:  # a file the pipeline's probe refuses too: not a sample
      continue
    factor = rng.uniform(0.5, 1.5)
    size = (max(1, int(image.width * factor + 0.5)), max(1, int(image.height * factor + 0.5)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    if rng.uniform() < 0.5:
      pixels = np.array(image)
      sigma = rng.uniform(0, 2)
      for channel in range(3):
        scipy.ndimage.gaussian_filter(
          pixels[..., channel], output=pixels[..., channel], sigma=sigma
        )
      image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(65, 101)))
    pixels = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    y = rng.integers(0, pixels.shape[0] - patch + 1)
    x = rng.integers(0, pixels.shape[1] - patch + 1)
    np.ascontiguousarray(pixels[y : y + patch, x : x + patch])
    done += 1
  return done / (time.perf_counter() - started)


def pillow_rate(paths, patch, seconds, workers):
  """Patches per second of `workers` processes running the chain per sample."""
  context = multiprocessing.get_context("spawn")  # no fork after TensorFlow started
  with context.Pool(workers) as pool:
    return sum(pool.map(_pillow_worker, [(paths, patch, seconds, s) for s in range(workers)]))


def tfjpeg_rate(directory, patch, seconds, batch_size=32):
  """Patches per second out of the training pipeline with the chain."""
  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top
  from tfjpeg.pipeline import input_pipeline  # pylint: disable=g-import-not-at-top

  task = folders.folder_task(directory, patch)
  config = input_pipeline.PipelineConfig.of(
    patch_size=patch,
    patches_per_image=1,
    train_crop="random",
    batch_size=batch_size,
    train_chain=CHAIN,
  )
  batches = iter(input_pipeline.train_dataset(task, config, 0).repeat())
  return benchmark_scale.patches_per_second(batches, seconds)


def measure(report, sets, patch, seconds, workers, step, repeats=1):
  """(m) on each of `sets` ({name: (folder, paths)}): both rates, and their
  ratio (the median of `repeats` runs)."""
  for name, (folder, paths) in sets.items():
    ratios = []
    for _ in range(repeats):
      ours = tfjpeg_rate(folder, patch, seconds)
      theirs = pillow_rate(paths, patch, seconds, workers)
      ratios.append(ours / theirs)
      step()
    report.add(f"(m) tfjpeg pipeline, chain, {name}, {patch} px", ours, "patches/s")
    report.add(f"(m) Pillow+scipy, {workers} processes, {name}", theirs, "patches/s")
    if repeats > 1:
      report.add(f"(m) runs' ratios, {name}", float(np.min(ratios)), "lowest")
    report.ratio(f"chain/pillow on {name}", float(np.median(ratios)), GOAL_KEY)
