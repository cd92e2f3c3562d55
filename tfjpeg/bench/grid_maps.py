"""(q) The local grid map's speed: seconds per megapixel and per photo.

tfjpeg's `grid_map` maps a batch of JPEG photos, one after the other, each on
every core; the baseline is a plain NumPy implementation of the same votes
(every window's DCT as one einsum over sliding windows, zeros counted, each
pixel's unique best window found by comparing the 64 shifted score maps),
run on the same photos in the same process. With `zero`, the path of a built
ZERO binary (Nikoukhah et al.'s C, tinankh/ZERO, built by the user: its
licence keeps it out of tfjpeg), ZERO is timed on the same photos too, each
a PNG on disk as ZERO reads them, and the goal is five times ZERO's speed
per photo. Every figure is the median of `repeats` runs.

The photos are the shared Kodak photos saved at QF 75 to 95 when
../shared/data is there, else generated scenes of the same size.
"""

import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tfjpeg.bench import folders

GOAL = 5.0  # ZERO's seconds per photo over the grid map's


def numpy_votes(rgb: np.ndarray) -> np.ndarray:
  """ZERO's votes in plain NumPy, vectorised: the baseline (and the same
  definitions as `tfjpeg.codec.grid_votes.votes`)."""
  rgb = rgb.astype(np.float64)
  value = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1]) + 0.114 * rgb[..., 2]
  luma = np.floor(value) + (value - np.floor(value) >= 0.5)
  height, width = luma.shape
  k = np.arange(8)
  scale = np.where(k == 0, np.sqrt(1 / 8), np.sqrt(2 / 8))
  cosines = scale[:, None] * np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16)
  windows = sliding_window_view(luma - 128.0, (8, 8))
  zeros = np.zeros(windows.shape[:2], np.int32)
  for u in range(8):  # a row of frequencies at a time keeps memory at 8 planes
    rows = np.einsum("abyx,y->abx", windows, cosines[u])
    plane = np.abs(np.einsum("abx,vx->abv", rows, cosines))
    zeros += (plane < 0.5 - 1e-9).sum(-1)
    if u == 0:
      zeros -= (plane[..., 0] < 0.5 - 1e-9).astype(np.int32)  # not the DC
  constant = (windows == windows[..., :, :1]).all((-1, -2)) | (windows == windows[..., :1, :]).all(
    (-1, -2)
  )
  inner = (height - 14, width - 14)
  best = np.full(inner, -1, np.int32)
  count = np.zeros(inner, np.int32)
  phase = np.full(inner, -1, np.int32)
  flat = np.zeros(inner, bool)
  for a in range(8):
    for b in range(8):
      score = zeros[a : a + inner[0], b : b + inner[1]]
      higher = score > best
      equal = score == best
      best = np.where(higher, score, best)
      count = np.where(higher, 1, count + equal)
      ys = (np.arange(inner[0])[:, None] + a) % 8
      xs = (np.arange(inner[1])[None, :] + b) % 8
      phase = np.where(higher, ys * 8 + xs, phase)
      flat = np.where(higher, constant[a : a + inner[0], b : b + inner[1]], flat)
  votes = np.where((count == 1) & (best > 0) & ~flat, phase, -1)
  return np.pad(votes, 7, constant_values=-1)


def photos(directory: str, count: int = 12) -> list[np.ndarray]:
  """JPEG photos (decoded): the shared Kodak photos at QF 75-95, or generated scenes."""
  from tfjpeg.codec import jpeg  # pylint: disable=g-import-not-at-top
  from tfjpeg.data import real_photos  # pylint: disable=g-import-not-at-top

  sources = [p for p in real_photos.list_sources(real_photos.default_root()) if "kodak" in str(p)]
  if sources:
    originals = [real_photos.read_rgb(path) for path in sources[:count]]
  else:
    paths = folders.make_sources(os.path.join(directory, "grid_scenes"), count, (512, 768))
    from tfjpeg.codec import images  # pylint: disable=g-import-not-at-top

    originals = []
    for path in paths:
      with open(path, "rb") as handle:
        originals.append(images.decode(handle.read()).numpy())
  rng = np.random.default_rng(0)
  return [jpeg.compress(photo, int(rng.integers(75, 96))).numpy() for photo in originals]


def _median_seconds(run, repeats):
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    run()
    times.append(time.perf_counter() - started)
  return statistics.median(times)


def map_seconds(pictures: list[np.ndarray], repeats: int) -> float:
  """Seconds for `grid_map` of every picture, one after the other, each on
  every core (TensorFlow's own threads: a tf.data map running two photos at
  once was slower here, the two contending for the same two cores)."""
  from tfjpeg.codec import grid_map  # pylint: disable=g-import-not-at-top

  mapper = grid_map.traced()

  def run():
    for picture in pictures:
      mapper(picture)["region_count"].numpy()

  run()  # traced and warm
  return _median_seconds(run, repeats)


def zero_seconds(binary: str, pictures: list[np.ndarray], repeats: int) -> float:
  """Seconds for ZERO's C on every picture (a PNG each), one after the other."""
  from tfjpeg.analysis import grid_pictures  # pylint: disable=g-import-not-at-top

  with tempfile.TemporaryDirectory() as work:
    names = []
    for index, picture in enumerate(pictures):
      names.append(f"photo{index}.png")
      with open(os.path.join(work, names[-1]), "wb") as handle:
        handle.write(grid_pictures.png(picture))

    def run():
      for name in names:
        subprocess.run([binary, name], cwd=work, capture_output=True, check=True)

    return _median_seconds(run, repeats)


def measure(report, directory, step, repeats=3, zero=None, count=12):
  """Adds (q)'s rows to `report`."""
  pictures = photos(directory, count)
  megapixels = sum(p.shape[0] * p.shape[1] for p in pictures) / 1e6
  mapped = map_seconds(pictures, repeats)
  step()
  baseline = _median_seconds(lambda: [numpy_votes(p) for p in pictures], repeats)
  step()
  size = f"{len(pictures)} photos of {pictures[0].shape[0]}x{pictures[0].shape[1]}"
  report.add(f"(q) grid_map, {size}, every core", mapped / megapixels, "s/megapixel")
  report.add("(q) grid_map per photo", mapped / len(pictures), "s")
  report.add("(q) NumPy votes alone (the baseline)", baseline / megapixels, "s/megapixel")
  report.add("(q) NumPy votes / grid_map (the whole map)", baseline / mapped, "ratio")
  if zero:
    zero_time = zero_seconds(zero, pictures, repeats)
    report.add("(q) ZERO's C per photo (one core)", zero_time / len(pictures), "s")
    report.ratio("(q) ZERO's C / grid_map, per photo", zero_time / mapped, "zero/grid_map")
  step()
