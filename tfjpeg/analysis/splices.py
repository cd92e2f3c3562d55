"""Splices with known answers, and how many of them a grid map finds.

    tfjpeg-grid_accuracy --photos=../shared/data --splices=30 [--zero=/path/to/zero]

Four kinds, each built from real photos with tfjpeg's exact JPEG:

- foreign: a block (64 to 256 px) of another photo saved at QF 70 to 95,
  pasted at a phase off the host's grid, stored losslessly (PNG);
- resaved: the same, then the whole image saved again at QF 90 to 95;
- missing: a block of a never-compressed photo pasted into the JPEG host;
- untouched: the JPEG host alone.

Hosts are either the never-compressed Kodak and McMaster photos saved at QF
70 to 95 ("photos"), or 768x512 crops on the 8x8 grid of the camera originals
as the cameras wrote them ("camera"). A splice counts as found when a region
of the map overlaps its block with an intersection over union of 0.5 or
more; every other region is a false one. With `zero` (the path of a built
ZERO binary, Nikoukhah et al.'s C, run with its QF-99 re-save as it asks),
ZERO is scored on the same files.
"""

import dataclasses
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from collections.abc import Sequence
from typing import IO
from typing import Any

import numpy as np
import pandas as pd

from tfjpeg.analysis import grid_maps
from tfjpeg.analysis import grid_pictures
from tfjpeg.codec import images
from tfjpeg.codec import jpeg
from tfjpeg.core import progress
from tfjpeg.core.errors import MissingError
from tfjpeg.data import real_photos

KINDS = ("foreign", "resaved", "missing", "untouched")
HOSTS = ("photos", "camera")
CAMERA_CROP = (512, 768)
FOUND_IOU = 0.5


@dataclasses.dataclass(frozen=True)
class Splice:
  kind: str
  image: np.ndarray  # uint8 RGB
  box: tuple[int, int, int, int] | None  # (y0, x0, y1, x1) of the pasted block
  details: str  # qualities and sizes, in words
  host: np.ndarray  # the JPEG host, as it was before the block


def box_iou(a: Sequence[int], b: Sequence[int]) -> float:
  """Intersection over union of two (y0, x0, y1, x1) boxes, ends exclusive."""
  inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
  area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
  return inter / max(area(a) + area(b) - inter, 1)


def _saved(rgb, quality):
  return jpeg.compress(rgb, int(quality)).numpy()


def camera_hosts(root: str, count: int, seed: int = 0) -> list[np.ndarray]:
  """`count` 768x512 crops at multiples of 8 of the camera originals in turn."""
  folder = os.path.join(root, "camera_jpegs")
  paths = sorted(images.list_images(folder)) if os.path.isdir(folder) else []
  if not paths:
    raise MissingError(f"no camera originals in {folder}")
  rng = np.random.default_rng(seed)
  crops = []
  for index in range(count):
    with open(paths[index % len(paths)], "rb") as handle:
      photo = images.decode(handle.read()).numpy()
    height, width = CAMERA_CROP
    if photo.shape[0] < height:  # a portrait original
      height, width = width, height
    y = int(rng.integers(0, (photo.shape[0] - height) // 8 + 1)) * 8
    x = int(rng.integers(0, (photo.shape[1] - width) // 8 + 1)) * 8
    crops.append(photo[y : y + height, x : x + width])
  return crops


def build(
  kind: str,
  index: int,
  photos: Sequence[np.ndarray],
  rng: np.random.Generator,
  host: np.ndarray | None = None,
) -> Splice:
  """One splice of `kind`; the host is photo `index` saved at QF 70 to 95, or `host`."""
  if host is None:
    quality = int(rng.integers(70, 96))
    host, words = _saved(photos[index % len(photos)], quality), f"host QF {quality}"
  else:
    words = "camera host"
  if kind == "untouched":
    return Splice(kind, host, None, words, host)
  height, width = host.shape[:2]
  side = min(int(rng.integers(64, 257)), height - 32, width - 32)
  source = photos[(index + 1 + int(rng.integers(0, len(photos) - 1))) % len(photos)]
  if kind in ("foreign", "resaved"):
    quality = int(rng.integers(70, 96))
    source, words = _saved(source, quality), words + f", block QF {quality}"
  # The block starts on its own grid; pasted off a multiple of 8, it sits on another phase.
  by = int(rng.integers(0, (source.shape[0] - side) // 8 + 1)) * 8
  bx = int(rng.integers(0, (source.shape[1] - side) // 8 + 1)) * 8
  while True:
    y, x = int(rng.integers(8, height - side - 8)), int(rng.integers(8, width - side - 8))
    if (y % 8, x % 8) != (0, 0):
      break
  image = host.copy()
  image[y : y + side, x : x + side] = source[by : by + side, bx : bx + side]
  if kind == "resaved":
    quality = int(rng.integers(90, 96))
    image, words = _saved(image, quality), words + f", saved again at QF {quality}"
  return Splice(kind, image, (y, x, y + side, x + side), words + f", {side} px block", host)


def splices(root: str, hosts: str, count: int, seed: int = 0):
  """Yields `count` splices of each kind, in the order of KINDS."""
  sources = real_photos.list_sources(root)
  if not sources:
    raise MissingError(f"no never-compressed photos (Kodak, McMaster) below {root}")
  photos = [real_photos.read_rgb(path) for path in sources]
  camera = camera_hosts(root, count, seed) if hosts == "camera" else None
  for number, kind in enumerate(KINDS):
    rng = np.random.default_rng([seed, number, HOSTS.index(hosts)])
    for index in range(count):
      yield build(kind, index, photos, rng, None if camera is None else camera[index])


def _score(regions, box):
  found = [r for r in regions if box is not None and box_iou(r[1], box) >= FOUND_IOU]
  return bool(found), len(regions) - len(found), [r[0] for r in found]


def run_zero(binary: str, image: np.ndarray) -> list[tuple[str, tuple[int, int, int, int]]]:
  """ZERO's regions on one image: (kind, box) with ends exclusive, as bin/grid's."""
  with tempfile.TemporaryDirectory() as work:
    with open(os.path.join(work, "in.png"), "wb") as handle:
      handle.write(grid_pictures.png(image))
    with open(os.path.join(work, "in99.jpg"), "wb") as handle:
      handle.write(jpeg.encode(image, 99).numpy())
    done = subprocess.run(
      [binary, "in.png", "in99.jpg"], cwd=work, capture_output=True, text=True, check=True
    )
  regions = []
  lines = done.stdout.splitlines()
  for number, line in enumerate(lines):
    match = re.match(r"bounding box: (\d+) (\d+) to (\d+) (\d+)", line)
    if match:
      x0, y0, x1, y1 = (int(v) for v in match.groups())
      kind = "missing" if "missing" in lines[number - 1] else "foreign"
      regions.append((kind, (y0, x0, y1 + 1, x1 + 1)))
  return regions


def evaluate(
  root: str,
  count: int = 30,
  hosts: Sequence[str] = HOSTS,
  seed: int = 0,
  zero: str | None = None,
  stream: IO[str] | None = None,
  mapper: Callable[[np.ndarray], Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
  """Every splice mapped (and given to ZERO); returns (cases, summary).

  cases: one row per image (hosts, kind, details, found, false regions,
  seconds, and ZERO's found and false regions). summary: per hosts and kind,
  how many found (any kind of region, and of the right kind), false regions,
  images with a false region, and the median seconds per image.
  """
  grid_mapper = grid_maps.Mapper()
  mapper = mapper or grid_mapper.map
  rows = []
  with progress.Progress(count * len(KINDS) * len(hosts), "splices", "images", stream) as done:
    for host_kind in hosts:
      for splice in splices(root, host_kind, count, seed):
        started = time.perf_counter()
        found = grid_maps.result_from_map("", mapper(splice.image))
        seconds = time.perf_counter() - started
        regions = [(r.kind, r.box) for r in found.regions]
        hit, false, kinds = _score(regions, splice.box)
        right = "missing" if splice.kind == "missing" else "foreign"
        row = dict(
          hosts=host_kind, kind=splice.kind, details=splice.details, found=hit,
          right_kind=right in kinds, false_regions=false, seconds=seconds,
        )  # fmt: skip
        if zero:
          started = time.perf_counter()
          zero_hit, zero_false, _ = _score(run_zero(zero, splice.image), splice.box)
          row.update(zero_found=zero_hit, zero_false_regions=zero_false,
                     zero_seconds=time.perf_counter() - started)  # fmt: skip
        rows.append(row)
        done.update()
  cases = pd.DataFrame(rows)
  return cases, summarize(cases)


def summarize(cases: pd.DataFrame) -> pd.DataFrame:
  """Found, right kind, false regions and speed by hosts and kind."""
  aggregations: dict[str, Any] = dict(
    images=("found", "size"),
    found=("found", "sum"),
    right_kind=("right_kind", "sum"),
    false_regions=("false_regions", "sum"),
    images_with_false=("false_regions", lambda v: int((v > 0).sum())),
    seconds=("seconds", "median"),
  )
  if "zero_found" in cases:
    aggregations.update(
      zero_found=("zero_found", "sum"),
      zero_false_regions=("zero_false_regions", "sum"),
      zero_seconds=("zero_seconds", "median"),
    )
  summary = cases.groupby(["hosts", "kind"], sort=False).agg(**aggregations).reset_index()
  # An untouched photo has nothing to find: its counts stay blank.
  counted = [c for c in ("found", "right_kind", "zero_found") if c in summary]
  summary[counted] = summary[counted].astype("Int64")
  summary.loc[summary["kind"] == "untouched", counted] = pd.NA
  return summary
