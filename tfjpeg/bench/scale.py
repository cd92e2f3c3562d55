"""Speed at the paper's scale: camera-size JPEGs, experiment 1's lattice, and
one 224 patch per image, as ratios against baselines run in the same process.

Sources are generated once: camera-like JPEGs of at least 3000x2000 at several
QFs (4:2:0). Each measure runs for `seconds`:

  (e) 10 patches of 512 per image, no lattice QF: the training pipeline
      (windowed or whole decode by cost) against OpenCV doing the same work on
      every core (decode, 10 crops), and against the decode bound (a plain
      whole-image decode on every core, as patches/s: 10 per decode).
  (f) the same with lattice QF 100: the pipeline reading the cached lattice
      images (tfjpeg.data.lattice), and recomputing them, against OpenCV doing the
      lattice work on every core (decode, QF 100 re-save, decode, 10 crops).
  (g) 1 patch of 224 per image: the pipeline against OpenCV doing the same
      work on every core (decode, 1 crop) and the decode bound.

Goals: (f) cached at least 2x OpenCV's lattice work; (e) at least 0.8 of the
decode bound. Heavy imports stay inside functions: worker processes import
this module.
"""

import multiprocessing
import os
import time

import numpy as np

from tfjpeg import config as config_lib

QUALITIES = (95, 90, 85, 75)  # the sources' own QFs, cycled
GOALS = {"lattice_cached/opencv_lattice": 2.0, "no_lattice/decode_bound": 0.8}


def make_camera_sources(directory, num_images=12, size=(2000, 3008), seed=0):
  """Camera-size JPEGs (4:2:0, QFs cycling through QUALITIES) in two class
  folders, generated once; returns their paths."""
  import cv2  # pylint: disable=g-import-not-at-top

  from tfjpeg.data import builtin  # pylint: disable=g-import-not-at-top

  paths = []
  for index in range(num_images):
    path = os.path.join(directory, f"class{index % 2}", f"camera{index:03d}.jpg")
    if not os.path.exists(path):
      os.makedirs(os.path.dirname(path), exist_ok=True)
      rng = np.random.default_rng([seed, index])
      light = builtin.scene(*size, rng)
      rgb = np.clip(np.round(255 * light + rng.normal(0, 2, light.shape)), 0, 255)
      quality = QUALITIES[index % len(QUALITIES)]
      cv2.imwrite(path, rgb.astype(np.uint8)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    paths.append(path)
  return paths


def _opencv_worker(args):
  """Patches per second of one process doing `work` for `seconds`:
  "decode" (whole decode only, counted as `count` patches), "crops" (decode,
  `count` crops), "lattice" (decode, QF 100 re-save and decode, `count`
  crops) or "codec" (decode, `count` crops, each saved at a QF drawn from
  `qualities` and decoded: bin/benchmark's (a))."""
  import cv2  # pylint: disable=g-import-not-at-top

  paths, work, patch, count, seconds, seed, qualities = args
  cv2.setNumThreads(1)
  rng = np.random.default_rng(seed)
  done, started = 0, time.perf_counter()
  while time.perf_counter() - started < seconds:
    image = cv2.imread(paths[(done // count + seed) % len(paths)], cv2.IMREAD_COLOR)
    if work == "lattice":
      _, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 100])
      image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if work != "decode":
      for _ in range(count):
        y = rng.integers(0, image.shape[0] - patch + 1)
        x = rng.integers(0, image.shape[1] - patch + 1)
        crop = np.ascontiguousarray(image[y : y + patch, x : x + patch])
        if work == "codec":
          quality = int(rng.choice(qualities))
          _, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
          cv2.imdecode(data, cv2.IMREAD_COLOR)
    done += count
  return done / (time.perf_counter() - started)


def opencv_rate(paths, work, patch, count, seconds, workers, qualities=(100,)):
  """Patches per second of `workers` processes doing `work` (`_opencv_worker`)."""
  context = multiprocessing.get_context("spawn")  # no fork after TensorFlow started
  with context.Pool(workers) as pool:
    return sum(
      pool.map(
        _opencv_worker, [(paths, work, patch, count, seconds, s, qualities) for s in range(workers)]
      )
    )


def patches_per_second(batches, seconds):
  """Patches per second out of an iterator of pipeline batches, after one
  batch of warm-up (thread pools, buffers)."""
  next(batches)
  done, started = 0, time.perf_counter()
  while time.perf_counter() - started < seconds:
    done += int(next(batches)["image"].shape[0])
  return done / (time.perf_counter() - started)


def tfjpeg_rate(directory, patch, count, seconds, lattice_qf=None, cache_root=None):
  """Patches per second out of the training pipeline (no QF augmentation, so
  the decode path is what is timed); with `cache_root`, the lattice images
  are built there first and read back."""
  from tfjpeg.data import lattice  # pylint: disable=g-import-not-at-top
  from tfjpeg.data import tasks  # pylint: disable=g-import-not-at-top
  from tfjpeg.pipeline import input_pipeline  # pylint: disable=g-import-not-at-top

  task = tasks.get(
    config_lib.TaskConfig(
      name="folder",
      data_dir=directory,
      patch_size=patch,
      patches_per_image=count,
      test_fraction=0.0,
      validation_fraction=0.0,
    )
  )
  if cache_root:
    task = lattice.cached_task(task, lattice_qf, root=cache_root, log=lambda line: None)
    lattice_qf = None  # the task delivers lattice images
  config = input_pipeline.PipelineConfig.of(
    patch_size=patch,
    patches_per_image=count,
    lattice_qf=lattice_qf,
    train_crop="random",
    batch_size=16,
    shuffle_buffer=64,
  )
  return patches_per_second(iter(input_pipeline.train_dataset(task, config, 0).repeat()), seconds)


def measure(
  report, directory, seconds, num_images=12, size=(2000, 3008), step=lambda: None, workers=None
):
  """Adds (e)-(g) to `report` (a `tfjpeg.bench.benchmark.Report`)."""
  workers = workers or os.cpu_count()
  sources = os.path.join(directory, "camera_sources")
  paths = make_camera_sources(sources, num_images, size)
  step()
  scale = f"{size[1]}x{size[0]}"
  bound_512 = opencv_rate(paths, "decode", 512, 10, seconds, workers)
  opencv_crops = opencv_rate(paths, "crops", 512, 10, seconds, workers)
  pipeline = tfjpeg_rate(sources, 512, 10, seconds)
  step()
  report.add(f"(e) decode bound, {workers} processes, {scale}", bound_512, "patches/s (10/decode)")
  report.add(f"(e) OpenCV decode + 10 crops of 512, {workers} processes", opencv_crops, "patches/s")
  report.add("(e) tfjpeg pipeline, 10 patches of 512, no lattice", pipeline, "patches/s")
  report.ratio(
    "(e) no_lattice/decode_bound", pipeline / bound_512, "no_lattice/decode_bound", GOALS
  )
  report.add("(e) no_lattice/opencv_crops", pipeline / opencv_crops, "ratio")
  opencv_lattice = opencv_rate(paths, "lattice", 512, 10, seconds, workers)
  recomputed = tfjpeg_rate(sources, 512, 10, seconds, lattice_qf=100)
  started = time.perf_counter()
  cache_root = os.path.join(directory, "lattice_cache")
  cached = tfjpeg_rate(sources, 512, 10, seconds, lattice_qf=100, cache_root=cache_root)
  step()
  report.add(f"(f) OpenCV lattice work, {workers} processes", opencv_lattice, "patches/s")
  report.add("(f) tfjpeg pipeline, lattice 100 recomputed", recomputed, "patches/s")
  report.add("(f) tfjpeg pipeline, lattice 100 cached", cached, "patches/s")
  report.add("(f) first use: cache build and timed read", time.perf_counter() - started, "s")
  report.ratio(
    "(f) lattice_cached/opencv_lattice",
    cached / opencv_lattice,
    "lattice_cached/opencv_lattice",
    GOALS,
  )
  report.add("(f) lattice_cached/lattice_recomputed", cached / recomputed, "ratio")
  bound_224 = opencv_rate(paths, "decode", 224, 1, seconds, workers)
  opencv_one = opencv_rate(paths, "crops", 224, 1, seconds, workers)
  one = tfjpeg_rate(sources, 224, 1, seconds)
  step()
  report.add(f"(g) decode bound, {workers} processes", bound_224, "patches/s (1/decode)")
  report.add(f"(g) OpenCV decode + 1 crop of 224, {workers} processes", opencv_one, "patches/s")
  report.add("(g) tfjpeg pipeline, 1 patch of 224", one, "patches/s")
  report.add("(g) one_patch/decode_bound", one / bound_224, "ratio")
  report.add("(g) one_patch/opencv_crop", one / opencv_one, "ratio")
