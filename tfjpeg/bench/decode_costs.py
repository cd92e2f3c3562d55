"""The cost rule for windowed against whole decoding, measured on given files.

`tfjpeg.codec.jpeg.windowed_decode_pays` chooses, per image, between one
whole decode and one window per patch (both pixel-equal). Its model, in units
of one pixel of a whole decode: a window ending at row `bottom` costs
ENTROPY_SHARE * width * bottom (libjpeg entropy-decodes every row above it at
full width) + PIXEL_SHARE * its own pixels + WINDOW_OVERHEAD. Here, in one
thread, for each file:

  (k) the whole decode and windows at the top, middle and bottom of two
      heights are timed, and the model's three constants fitted to them by
      least squares (reported beside the rule's);
  (l) for 1, 2, 4 and 10 patches of 224 and 512 at random places, both paths
      are timed and the rule's pick compared with the faster: how often it
      picks it, and the faster path's time over the rule's path's time (1:
      never slower than the best; the goal is at least 0.9).

Timings are medians of `repeats`; ratios are within one process.
"""

import time

import numpy as np

GOALS = {"best/rule": 0.9}
PATCH_SIZES = (224, 512)
PATCH_COUNTS = (1, 2, 4, 10)


def _median_seconds(function, repeats):
  function()  # traced and warm
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    function()
    times.append(time.perf_counter() - started)
  return float(np.median(times))


def measure_file(data, repeats=5, seed=0, patch_sizes=PATCH_SIZES, counts=PATCH_COUNTS):
  """Timings of one JPEG's bytes: returns (whole seconds, pixels, [(width,
  bottom, window pixels, seconds)] for single windows, [(size, count, rule
  picks windows, windowed seconds, whole seconds)]). Windows and crops are
  looped one after the other, as the pipeline's per-image step does, so no
  path gains from a second core."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from tfjpeg.codec import crops  # pylint: disable=g-import-not-at-top
  from tfjpeg.codec import jpeg  # pylint: disable=g-import-not-at-top

  data = tf.constant(data)
  height, width = (int(v) for v in tf.image.extract_jpeg_shape(data)[:2])
  whole = tf.function(lambda d: jpeg.decode(d))
  whole_seconds = _median_seconds(lambda: whole(data).numpy(), repeats)

  def one_by_one(function, offsets, size):
    signature = tf.TensorSpec([size, size, 3], tf.uint8)
    return tf.map_fn(function, offsets, fn_output_signature=signature, parallel_iterations=1)

  def windows_fn(size):
    @tf.function
    def windows(d, offsets):
      return one_by_one(lambda o: jpeg.decode_crop(d, o, (size, size)), offsets, size)

    return windows

  def whole_crops_fn(size):
    @tf.function
    def whole_crops(d, offsets):
      image = jpeg.decode(d)
      return one_by_one(lambda o: crops.crop_at(image, size, o), offsets, size)

    return whole_crops

  singles = []
  for size in patch_sizes:
    if size > min(height, width):
      continue
    window = windows_fn(size)
    for top in (0, (height - size) // 2, height - size):
      offsets = tf.constant([[top, (width - size) // 2]], tf.int32)
      seconds = _median_seconds(lambda w=window, o=offsets: w(data, o).numpy(), repeats)
      bottom = min(top + size + jpeg.WINDOW_MARGIN, height)
      pixels = (bottom - max(top - jpeg.WINDOW_MARGIN, 0)) * min(
        size + 2 * jpeg.WINDOW_MARGIN, width
      )
      singles.append((width, bottom, pixels, seconds))
  cases = []
  rng = np.random.default_rng(seed)
  for size in patch_sizes:
    if size > min(height, width):
      continue
    for count in counts:
      offsets = np.stack(
        [rng.integers(0, height - size + 1, count), rng.integers(0, width - size + 1, count)], 1
      ).astype(np.int32)
      offsets = tf.constant(offsets)
      pays = bool(jpeg.windowed_decode_pays(tf.constant([height, width]), offsets, (size, size)))
      windowed_fn, whole_fn = windows_fn(size), whole_crops_fn(size)
      windowed = _median_seconds(lambda f=windowed_fn, o=offsets: f(data, o).numpy(), repeats)
      whole_cut = _median_seconds(lambda f=whole_fn, o=offsets: f(data, o).numpy(), repeats)
      cases.append((size, count, pays, windowed, whole_cut))
  return whole_seconds, height * width, singles, cases


def fit(files):
  """The model's constants fitted to `measure_file` results: (entropy share,
  pixel share, window overhead in pixels), each window's time in units of its
  file's whole-decode time per pixel."""
  rows, targets = [], []
  for whole_seconds, pixels, singles, _ in files:
    per_pixel = whole_seconds / pixels
    for width, bottom, window_pixels, seconds in singles:
      rows.append((width * bottom, window_pixels, 1.0))
      targets.append(seconds / per_pixel)
  solution, *_ = np.linalg.lstsq(np.array(rows, float), np.array(targets, float), rcond=None)
  return tuple(float(v) for v in solution)


def rule_summary(files):
  """(cases, cases where the rule picked the faster path, mean of the faster
  path's time over the rule's path's time) over every file's cases."""
  picks, efficiency = [], []
  for *_, cases in files:
    for _, _, pays, windowed, whole_cut in cases:
      chosen = windowed if pays else whole_cut
      picks.append(chosen <= min(windowed, whole_cut))
      efficiency.append(min(windowed, whole_cut) / chosen)
  return len(picks), int(np.sum(picks)), float(np.mean(efficiency))


def measure(report, paths, repeats=5, step=lambda: None, log=lambda line: None):
  """Adds (k) and (l) to `report` (a `tfjpeg.bench.benchmark.Report`) for the
  JPEG files `paths`, grouped by chroma subsampling."""
  from tfjpeg.codec import headers  # pylint: disable=g-import-not-at-top
  from tfjpeg.codec import jpeg  # pylint: disable=g-import-not-at-top

  by_layout = {}
  for path in paths:
    layout = headers.read(path).subsampling
    with open(path, "rb") as stream:
      result = measure_file(stream.read(), repeats)
    by_layout.setdefault(layout, []).append(result)
    log(f"{path}: {layout}, whole decode {1000 * result[0]:.1f} ms")
    step()
  everything = [r for results in by_layout.values() for r in results]
  entropy, pixel, overhead = fit(everything)
  count = len(everything)
  report.add(f"(k) fitted entropy share, {count} files (rule {jpeg.ENTROPY_SHARE})", entropy, "")
  report.add(f"(k) fitted pixel share (rule {jpeg.PIXEL_SHARE})", pixel, "")
  report.add(f"(k) fitted window overhead (rule {jpeg.WINDOW_OVERHEAD})", overhead, "pixels")
  for layout, results in sorted(by_layout.items()):
    cases, right, efficiency = rule_summary(results)
    report.add(f"(l) {layout}: rule picks the faster path, of {cases} cases", right, "cases")
    report.ratio(
      f"(l) {layout}: best/rule (time of the faster path)", efficiency, "best/rule", GOALS
    )
