"""Speed of the JPEG training pipeline, as ratios against baselines run in the same process.

  (a) OpenCV alone, every core: decode the stored source image, cut the patch,
      JPEG-encode and decode it at the QF. The practical limit.
  (b) tfjpeg's training pipeline: read, crop, random-QF JPEG, batch.
  (c) The paper's way: Albumentations random crop and ImageCompression in a
      per-sample Python loop.
  (d) Training steps per second of a net fed by the real pipeline, against the
      same model fed one constant batch from memory.
  (e)-(g) The paper's scale: camera-size JPEGs with 10 patches of 512 (with
      and without experiment 1's lattice) and 1 patch of 224, against OpenCV
      and the decode bound (`tfjpeg.bench.scale`).
  (j) The shortcut audit's header reading (`tfjpeg.data.audit`) on 10,000 small
      generated files (JPEG at several QFs and subsamplings, PNG), in files/s,
      against reading the same files' bytes in one thread.
  (k) What `match_compression` costs: training patches/s on the built-in
      `generated_confounded` task with and without it.
  (p) What invariance costs: a training step of each --antialias setting
      against the plain net's (`tfjpeg.bench.antialias`).
  (q) The local grid map (bin/grid): seconds per megapixel on a batch of
      photos against a plain NumPy implementation of the same votes, and
      against ZERO's C given its binary (`tfjpeg.bench.grid_maps`).

Sources are camera-like JPEGs (1024x768, QF 95, 4:2:0) generated once, so the
benchmark needs no download. Heavy imports stay inside functions: worker
processes of (a) import this module.
"""

import dataclasses
import multiprocessing
import os
import time

import numpy as np

from tfjpeg import config as config_lib
from tfjpeg.bench import folders
from tfjpeg.core.errors import ConfigError

QUALITIES = (50, 60, 70, 80, 90, 99)
GOALS = {
  "b/a": 0.9,
  "b/c": 1.5,
  "d_real/d_const": 0.95,
  "memory_small/large": 0.9,
  "audit_files_per_s": 1000.0,
  "chain/pillow": 2.0,
  "zero/grid_map": 5.0,
}


def opencv_rate(paths, patch, seconds, workers):
  """(a): patches per second of OpenCV on every core: decode, crop, save at a
  random QF and decode."""
  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top

  return benchmark_scale.opencv_rate(paths, "codec", patch, 1, seconds, workers, QUALITIES)


def albumentations_rate(paths, patch, seconds):
  """(c): the paper's per-sample loop."""
  import albumentations as A  # pylint: disable=g-import-not-at-top
  import cv2  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  transforms = {
    q: A.Compose([A.RandomCrop(patch, patch), A.ImageCompression(quality_range=(q, q), p=1.0)])
    for q in QUALITIES
  }
  done, started = 0, time.perf_counter()
  while time.perf_counter() - started < seconds:
    image = cv2.cvtColor(cv2.imread(paths[done % len(paths)]), cv2.COLOR_BGR2RGB)
    transforms[int(rng.choice(QUALITIES))](image=image)
    done += 1
  return done / (time.perf_counter() - started)


def _pipeline_config(patch, batch_size, **settings):
  from tfjpeg.pipeline import input_pipeline  # pylint: disable=g-import-not-at-top

  return input_pipeline.PipelineConfig.of(
    patch_size=patch,
    patches_per_image=1,
    train_crop="random",
    train_qfs=QUALITIES,
    aug_fraction=1.0,
    batch_size=batch_size,
    **settings,
  )


def _steady_batches(task, config):
  """One training epoch, repeated: the steady state of a long epoch, without the
  pipeline's construction (tracing) that a real epoch of thousands of images
  amortises and a 48-image benchmark epoch would not."""
  from tfjpeg.pipeline import input_pipeline  # pylint: disable=g-import-not-at-top

  return iter(input_pipeline.train_dataset(task, config, 0).repeat())


def tfjpeg_rate(directory, patch, seconds, batch_size=32):
  """(b): patches per second out of the training pipeline."""
  task = folders.folder_task(directory, patch)
  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top

  return benchmark_scale.patches_per_second(
    _steady_batches(task, _pipeline_config(patch, batch_size)), seconds
  )


def training_rates(net, directory, patch, batch_size, steps):
  """(d): training steps per second with the real pipeline and with one constant batch."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from tfjpeg.models import nets  # pylint: disable=g-import-not-at-top
  from tfjpeg.pipeline import input_pipeline  # pylint: disable=g-import-not-at-top

  task = folders.folder_task(directory, patch)
  config = _pipeline_config(patch, batch_size)
  model = nets.build(net, patch, task.num_classes)
  model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
  # One iterator each, kept across steps: steady state, as inside a long fit().
  real = iter(input_pipeline.to_inputs(input_pipeline.train_dataset(task, config, 0)).repeat())
  first = next(real)
  constant = iter(tf.data.Dataset.from_tensors(first).repeat())
  rates = {}
  for name, batches in (("const", constant), ("real", real), ("const2", constant)):
    for _ in range(2):  # warm up: tracing, buffers
      model.train_on_batch(*next(batches))
    started = time.perf_counter()
    for _ in range(steps):
      model.train_on_batch(*next(batches))
    rates[name] = steps / (time.perf_counter() - started)
  # The constant feed is timed before and after the real one; average them so
  # drifting machine speed does not bias the ratio.
  return rates["real"], (rates["const"] + rates["const2"]) / 2


def _peak_memory_worker(args):
  """Peak resident memory (MB) of a fresh process running one pipeline epoch."""
  import resource  # pylint: disable=g-import-not-at-top

  from tfjpeg.pipeline import input_pipeline  # pylint: disable=g-import-not-at-top

  directory, patch = args
  task = folders.folder_task(directory, patch)
  # A small shuffle buffer, so that its (intended) bound is below both datasets.
  config = _pipeline_config(patch, 32, shuffle_buffer=64)
  for _ in input_pipeline.train_dataset(task, config, 0):
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_memory(directory, patch, sizes=(96, 384), source_size=(768, 1024)):
  """Peak MB of one epoch over `sizes` images each: streaming keeps them equal."""
  context = multiprocessing.get_context("spawn")
  peaks = []
  for size in sizes:
    folder = os.path.join(directory, f"memory_{size}")
    folders.make_sources(folder, num_images=size, size=source_size)
    with context.Pool(1) as pool:  # a fresh process: its own peak
      peaks.append(pool.map(_peak_memory_worker, [(folder, patch)])[0])
  return peaks


@dataclasses.dataclass
class Report:
  rows: list = dataclasses.field(default_factory=list)
  failures: list = dataclasses.field(default_factory=list)

  def add(self, name, value, unit):
    self.rows.append((name, value, unit))

  def ratio(self, name, value, goal_key, goals=None):
    goal = (goals or GOALS)[goal_key]
    ok = value >= goal
    self.rows.append((name, value, f"goal >= {goal}: {'met' if ok else 'MISSED'}"))
    if not ok:
      self.failures.append(f"{name} = {value:.2f} < {goal}")

  def text(self):
    cores = os.cpu_count()
    pooled = os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("1", "true")
    allocator = "pooling (BFC)" if pooled else "TensorFlow's default"
    lines = [f"tfjpeg benchmark on {cores} cores, CPU allocator {allocator}"]
    lines += [f"  {name:<56} {value:10.2f}  {unit}" for name, value, unit in self.rows]
    return "\n".join(lines)


def make_audit_sources(directory, count=10_000, size=(48, 64)):
  """`count` small image files in two class folders, made once: JPEG at QF 70-99
  in 4:2:0 or 4:4:4, and every fourth PNG. Returns their paths."""
  import cv2  # pylint: disable=g-import-not-at-top

  paths = []
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, size=(16,) + tuple(size) + (3,), dtype=np.uint8)
  for index in range(count):
    png = index % 4 == 3
    path = os.path.join(
      directory, f"class{index % 2}", f"file{index:05d}.{'png' if png else 'jpg'}"
    )
    paths.append(path)
    if os.path.exists(path):
      continue
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sampling = (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420)[
      index % 2
    ]
    params = (
      []
      if png
      else [cv2.IMWRITE_JPEG_QUALITY, 70 + index % 30, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling]
    )
    cv2.imwrite(path, pixels[index % len(pixels)], params)
  return paths


def audit_rates(directory, count=10_000):
  """(j): files per second of the audit's header reading, and of reading the
  same files' bytes in one thread (the same process, the same page cache)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top

  from tfjpeg.data import audit  # pylint: disable=g-import-not-at-top

  paths = make_audit_sources(os.path.join(directory, "audit_sources"), count)
  files = pd.DataFrame(
    dict(
      source=paths,
      class_name=[p.split(os.sep)[-2] for p in paths],
      split="all",
      group=[os.path.basename(p) for p in paths],
    )
  )
  started = time.perf_counter()
  for path in paths:
    with open(path, "rb") as f:
      f.read()
  read = len(paths) / (time.perf_counter() - started)
  started = time.perf_counter()
  with open(os.devnull, "w") as quiet:
    table = audit.read_headers(files, stream=quiet)
  headers = len(paths) / (time.perf_counter() - started)
  if (table["problem"] != "").any():
    raise RuntimeError(
      f"the audit could not read {int((table['problem'] != '').sum())} of its own benchmark files"
    )
  return headers, read, len(paths)


def matching_rates(directory, seconds, scenes=200):
  """(k): training patches per second on `generated_confounded` (64 px, 4 an
  image) with and without `match_compression`: what the recipe costs."""
  import dataclasses as dc  # pylint: disable=g-import-not-at-top

  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top
  from tfjpeg.data import audit  # pylint: disable=g-import-not-at-top
  from tfjpeg.data import tasks  # pylint: disable=g-import-not-at-top
  from tfjpeg.pipeline import input_pipeline  # pylint: disable=g-import-not-at-top

  task = tasks.get(
    config_lib.TaskConfig(
      name="generated_confounded",
      data_dir=os.path.join(directory, "generated"),
      builtin_scenes=scenes,
      test_fraction=0.0,
      validation_fraction=0.0,
    )
  )
  with open(os.devnull, "w") as quiet:
    profile = audit.task_profile(task, stream=quiet)
  plain = input_pipeline.PipelineConfig.of(
    patch_size=task.patch_size, batch_size=32, patches_per_image=task.patches_per_image
  )
  matched = dc.replace(plain, match_qfs=profile.match_qfs)
  rates = {}
  for name, config in (("plain", plain), ("matched", matched), ("plain2", plain)):
    batches = iter(input_pipeline.train_dataset(task, config, 0).repeat())
    rates[name] = benchmark_scale.patches_per_second(batches, seconds)
  # Plain is timed before and after, so drifting machine speed does not bias the ratio.
  return rates["matched"], (rates["plain"] + rates["plain2"]) / 2


def _audit(report, directory, seconds, log, step):
  headers, read, count = audit_rates(directory)
  step()
  report.add(f"(j) audit: file headers read, {count:,} files", headers, "files/s")
  report.add("(j) baseline: the same files' bytes read, one thread", read, "files/s")
  report.ratio("audit files/s", headers, "audit_files_per_s")
  report.add("audit headers / bytes read", headers / read, "ratio")
  matched, plain = matching_rates(directory, seconds)
  step()
  report.add("(k) training pipeline, generated_confounded, plain", plain, "patches/s")
  report.add("(k) the same with --match_compression", matched, "patches/s")
  report.add("(k) matched / plain", matched / plain, "ratio")
  log(report.text())


SECTIONS = (
  "pipeline",
  "memory",
  "training",
  "scale",
  "decode_costs",
  "audit",
  "chains",
  "layers",
  "degrade",
  "antialias",
  "grid_map",
)
# Not in the default run: the accelerator's side, (h) and (i) of tfjpeg.bench.nets.
ALL_SECTIONS = SECTIONS + ("accelerator",)


def run(
  directory,
  patch_sizes=(224, 512),
  nets=("efficientnetb0", "efficientnetb4", "resnet50", "xception"),
  seconds=10.0,
  train_batch=4,
  train_steps=8,
  log=print,
  memory_sizes=(96, 384),
  num_sources=48,
  source_size=(768, 1024),
  real_photos=False,
  stream=None,
  sections=SECTIONS,
  scale_images=12,
  scale_size=(2000, 3008),
  net_patches=(224, 512),
  rows_log=lambda row: None,
  sources=None,
  repeats=1,
  zero=None,
):
  """Measures the `sections` and returns the `Report` (its `failures` list the
  goals missed): "pipeline" (a)-(c), "memory", "training" (d), "scale"
  ((e)-(g) of `tfjpeg.bench.scale`: camera-size photos, the lattice, one 224
  patch) and "decode_costs" ((k)-(l) of `tfjpeg.bench.decode_costs`: the
  rule for windowed against whole decoding, on the scale section's files) and
  "chains" ((m) of `tfjpeg.bench.chains`: a resize-blur-JPEG training chain
  against Pillow and scipy per sample, on generated scenes and `sources`)
  and "layers" ((n) of `tfjpeg.bench.layers`: the Keras layers in a
  `tf.data` map against TensorFlow's and Keras's own ops, on generated scenes
  and `sources`, the median of `repeats` runs) and "degrade" ((o) of
  `tfjpeg.bench.degrade`: bin/degrade of Corvi et al.'s protocol against
  Pillow on every core, on generated scenes and `sources`) and "antialias"
  ((p) of `tfjpeg.bench.antialias`: a training step of the blur and aps nets
  against the plain net's, a third of `seconds` for each) and "grid_map"
  ((q) of `tfjpeg.bench.grid_maps`: the grid map against NumPy, and against
  ZERO's C when `zero` names its binary, the median of `repeats` runs, at
  least 3).
  With `sources` (any folder of JPEGs), those files are the pipeline's, the
  training's and the scale and decode-cost sections' sources, as they are;
  `repeats` runs the scale section's (e) and (f) that many times and reports
  the median ratios. Otherwise sources go to `directory/sources` (with
  `real_photos`, the shared never-compressed photos as JPEG, in
  `directory/real_sources`), the memory measure's datasets and the
  camera-size sources beside them, so no run reads another's files. Progress,
  with the time left, goes to `stream`."""
  from tfjpeg.bench import antialias as benchmark_antialias  # pylint: disable=g-import-not-at-top
  from tfjpeg.bench import nets as benchmark_nets  # pylint: disable=g-import-not-at-top
  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top
  from tfjpeg.core import progress  # pylint: disable=g-import-not-at-top
  from tfjpeg.data import real_photos as real_photos_lib  # pylint: disable=g-import-not-at-top

  unknown = set(sections) - set(ALL_SECTIONS)
  if unknown:
    raise ConfigError(
      f"--sections: unknown benchmark sections {sorted(unknown)}; choose from {ALL_SECTIONS}"
    )
  report = Report()
  workers = os.cpu_count()
  total = (
    3 * len(patch_sizes) * ("pipeline" in sections)
    + ("memory" in sections)
    + len(nets) * ("training" in sections)
    + 4 * ("scale" in sections)
    + ("decode_costs" in sections)
    + 2 * ("audit" in sections)
    + 2 * repeats * ("chains" in sections)
    + 6 * ("layers" in sections)
    + 2 * repeats * ("degrade" in sections)
    + len(benchmark_antialias.NETS) * ("antialias" in sections)
    + 3 * ("grid_map" in sections)
    + (2 * len(net_patches) * len(nets) + 1) * ("accelerator" in sections)
  )
  scale_sources, paths = sources, None
  if {"pipeline", "training"} & set(sections):
    if sources:  # any folder of JPEGs, read as they are
      staging = os.path.join(directory, "sources_of_" + os.path.basename(os.path.abspath(sources)))
      paths = benchmark_scale.folder_of(sources, staging)
      sources = staging
    else:
      photos = real_photos_lib.list_sources(real_photos_lib.default_root()) if real_photos else None
      sources = os.path.join(directory, "real_sources") if photos else folders.source_dir(directory)
      paths = folders.make_sources(sources, num_sources, source_size, photos=photos)
  with progress.Progress(total, "benchmark", "measures", stream) as done:
    if "pipeline" in sections:
      _pipeline(report, paths, sources, patch_sizes, seconds, workers, log, done.update)
    if "memory" in sections:
      _memory(report, directory, memory_sizes, source_size, log, done.update)
    if "training" in sections:
      _training(report, sources, nets, source_size, train_batch, train_steps, log, done.update)
    if "scale" in sections:
      benchmark_scale.measure(
        report,
        directory,
        seconds,
        scale_images,
        scale_size,
        done.update,
        workers,
        sources=scale_sources,
        repeats=repeats,
      )
      log(report.text())
    if "decode_costs" in sections:
      _decode_costs(report, directory, scale_sources, scale_images, scale_size, log, done.update)
    if "audit" in sections:
      _audit(report, directory, seconds, log, done.update)
    if "chains" in sections:
      _chains(
        report,
        directory,
        scale_sources,
        (num_sources, source_size),
        seconds,
        workers,
        repeats,
        log,
        done.update,
      )
    if "layers" in sections:
      _layers(report, directory, scale_sources, num_sources, seconds, repeats, log, done.update)
    if "degrade" in sections:
      _degrade(
        report,
        directory,
        scale_sources,
        num_sources,
        source_size,
        workers,
        repeats,
        log,
        done.update,
      )
    if "antialias" in sections:
      benchmark_antialias.measure(report, seconds, done.update, benchmark_antialias.NETS)
      log(report.text())
    if "grid_map" in sections:
      from tfjpeg.bench import grid_maps  # pylint: disable=g-import-not-at-top

      grid_maps.measure(report, directory, done.update, max(repeats, 3), zero)
      log(report.text())
    if "accelerator" in sections:
      benchmark_nets.measure(
        report,
        directory,
        nets,
        net_patches,
        seconds,
        done.update,
        workers,
        scale_images,
        scale_size,
        rows_log,
      )
      log(report.text())
  return report


def _pipeline(report, paths, sources, patch_sizes, seconds, workers, log, step):
  for patch in patch_sizes:
    a = opencv_rate(paths, patch, seconds, workers)
    step()
    b = tfjpeg_rate(sources, patch, seconds)
    step()
    c = albumentations_rate(paths, patch, seconds)
    step()
    report.add(f"(a) OpenCV, {workers} processes, {patch} px", a, "patches/s")
    report.add(f"(b) tfjpeg pipeline, {patch} px", b, "patches/s")
    report.add(f"(c) Albumentations loop, {patch} px", c, "patches/s")
    report.ratio(f"b/a at {patch} px", b / a, "b/a")
    report.ratio(f"b/c at {patch} px", b / c, "b/c")
    log(report.text())


def _chains(report, directory, sources, generated, seconds, workers, repeats, log, step):
  """(m) on `generated` = (count, size) scenes, and on `sources` (camera
  originals) when given."""
  from tfjpeg.bench import chains  # pylint: disable=g-import-not-at-top
  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top

  scenes = os.path.join(directory, "chain_scenes")
  sets = {"generated scenes": (scenes, folders.make_sources(scenes, *generated))}
  if sources:
    staging = os.path.join(directory, "chain_sources")
    sets["--sources"] = (staging, benchmark_scale.folder_of(sources, staging))
  else:
    step()  # the second set's share of the progress
  chains.measure(report, sets, 224, seconds, workers, step, repeats)
  log(report.text())


def _layers(report, directory, sources, num_sources, seconds, repeats, log, step):
  """(n) on generated scenes, and on `sources` (camera originals) when given."""
  from tfjpeg.bench import layers  # pylint: disable=g-import-not-at-top
  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top

  scenes = os.path.join(directory, "layer_scenes")
  sets = {"generated scenes": folders.make_sources(scenes, min(num_sources, 12), (448, 448))}
  if sources:
    sets["--sources"] = benchmark_scale.folder_of(sources, os.path.join(directory, "layer_sources"))
  else:
    for _ in range(3):
      step()  # the second set's share of the progress
  layers.measure(report, sets, seconds, step, repeats)
  log(report.text())


def _degrade(report, directory, sources, num_sources, source_size, workers, repeats, log, step):
  """(o) on generated scenes, and on `sources` (camera originals) when given,
  each set at least `num_sources` files long."""
  from tfjpeg.bench import degrade  # pylint: disable=g-import-not-at-top
  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top

  scenes = os.path.join(directory, "degrade_scenes", "sources")
  folders.make_sources(scenes, num_sources, source_size)
  sets = {"generated scenes": scenes}
  if sources:
    found = benchmark_scale.folder_of(sources, os.path.join(directory, "degrade_links"))
    staging = os.path.join(directory, "degrade_originals", "sources")
    degrade.labelled_copies(found, staging, num_sources)
    sets["--sources"] = staging
  else:
    for _ in range(repeats):
      step()  # the second set's share of the progress
  degrade.measure(report, sets, workers, step, repeats)
  log(report.text())


def _decode_costs(report, directory, sources, num_images, size, log, step):
  from tfjpeg.bench import decode_costs  # pylint: disable=g-import-not-at-top
  from tfjpeg.bench import scale as benchmark_scale  # pylint: disable=g-import-not-at-top

  if sources:
    paths = benchmark_scale.folder_of(sources, os.path.join(directory, "decode_costs_sources"))
  else:
    paths = benchmark_scale.make_camera_sources(
      os.path.join(directory, "camera_sources"), num_images, size
    )
  decode_costs.measure(report, paths, log=log)
  step()
  log(report.text())


def _memory(report, directory, memory_sizes, source_size, log, step):
  small, large = peak_memory(directory, min(224, *source_size), memory_sizes, source_size)
  step()
  report.add(f"pipeline peak memory, {memory_sizes[0]} images", small, "MB")
  report.add(f"pipeline peak memory, {memory_sizes[1]} images", large, "MB")
  report.ratio("memory_small/large (1 = no growth)", small / large, "memory_small/large")
  log(report.text())


def _training(report, sources, nets, source_size, train_batch, train_steps, log, step):
  for net in nets:
    patch = min(224, *source_size)
    real, const = training_rates(net, sources, patch, train_batch, train_steps)
    report.add(f"(d) {net} {patch} px, real pipeline", real, f"steps/s (batch {train_batch})")
    report.add(f"(d) {net} {patch} px, constant batch", const, f"steps/s (batch {train_batch})")
    report.ratio(f"d_real/d_const {net}", real / const, "d_real/d_const")
    step()
    log(report.text())
