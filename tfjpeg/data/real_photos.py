"""Real-photo tasks generated from never-compressed photos (`../shared/data`).

The built-in tasks are simulated scenes; these put the same questions to real
scene content. The sources are the never-compressed photos of the shared data
folder (Kodak PNG, McMaster TIFF: every PNG and TIFF one folder down). Each
photo is cut into non-overlapping tiles, and each tile becomes one image of
every class, so content tells nothing about the label; all tiles of a photo
share one split (`group_of`), so no test photo is ever seen in training.

  history   compression history: the tile as it is (`never`), or compressed once
            before at QF 90, 80 or 70 (4:2:0) and stored losslessly (PNG).
  cameras   the simulated cameras of `tfjpeg.data.builtin` shooting real scenes: each
            photo is downscaled by 2 first (area averaging), so that its own
            colour-filter and demosaicing traces are gone, then every camera
            shoots every tile and writes its in-camera JPEG.

Generated once into the cache, keyed by the sources' bytes, like the built-in
tasks.
"""

import hashlib
import os
import pathlib

import cv2
import numpy as np

from tfjpeg.core import progress
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import DataError
from tfjpeg.core.errors import MissingError
from tfjpeg.data import builtin
from tfjpeg.data import cache as cache_lib

VERSION = 1  # bump whenever generation changes, so caches are rebuilt
SOURCE_SUFFIXES = (".png", ".tif", ".tiff")  # never-compressed formats only
HISTORY_QFS = (90, 80, 70)
DOWNSCALE = {"history": 1, "cameras": 2}
DEFAULT_TILE = {"history": 240, "cameras": 120}
KINDS = tuple(DEFAULT_TILE)


def default_root():
  """The shared data folder: $TFJPEG_SHARED_DATA, else `shared/data` beside
  the checkout this package runs from (found from the repository's location,
  whatever the working directory), else `../shared/data` from the working
  directory (an installed package lives in a virtual environment, far from
  any data: then the folder is looked for beside where the command runs)."""
  env = os.environ.get("TFJPEG_SHARED_DATA")
  if env:
    return pathlib.Path(env)
  checkout = pathlib.Path(__file__).resolve().parents[2]
  beside_checkout = checkout.parent / "shared" / "data"
  if (checkout / "configs").is_dir() and beside_checkout.is_dir():
    return beside_checkout
  return pathlib.Path.cwd().parent / "shared" / "data"


def list_sources(root):
  """The never-compressed photos under `root/<collection>/`, sorted.

  Raises:
    FileNotFoundError: `root` is missing or holds no PNG or TIFF photo.
  """
  root = pathlib.Path(root)
  if not root.is_dir():
    raise MissingError(
      f"the real-photo tasks need the shared photo folder {root} (Kodak PNG, McMaster "
      "TIFF, one subfolder per collection); it does not exist: put it there, set "
      "TFJPEG_SHARED_DATA, or pass --data_dir"
    )
  paths = sorted(p for p in root.glob("*/*") if p.suffix.lower() in SOURCE_SUFFIXES)
  if not paths:
    raise MissingError(
      f"{root} holds no never-compressed photo ({', '.join(SOURCE_SUFFIXES)}) in a subfolder"
    )
  return paths


def read_rgb(path):
  """An 8-bit RGB photo; refuses what would need conversion (16-bit, alpha)."""
  image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
  if image is None:
    raise DataError(f"{path}: cannot be decoded")
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
    raise DataError(f"{path}: expected 8-bit RGB, got {image.dtype} {image.shape}")
  return np.ascontiguousarray(image[..., ::-1])


def tiles(image, size):
  """Non-overlapping `size` x `size` tiles from the top-left: {"r0c1": tile}."""
  rows, cols = image.shape[0] // size, image.shape[1] // size
  return {
    f"r{r}c{c}": image[r * size : (r + 1) * size, c * size : (c + 1) * size]
    for r in range(rows)
    for c in range(cols)
  }


def downscale(rgb, factor):
  """Area-averaged downscaling in linear light; returns linear RGB in [0, 1]."""
  linear = (rgb.astype(np.float32) / 255.0) ** 2.2
  if factor == 1:
    return linear
  height, width = rgb.shape[0] // factor, rgb.shape[1] // factor
  return cv2.resize(
    linear[: height * factor, : width * factor], (width, height), interpolation=cv2.INTER_AREA
  )


def compress_once(rgb, quality):
  """The tile as a JPEG at `quality` (4:2:0, libjpeg via OpenCV) would decode it."""
  ok, data = cv2.imencode(
    ".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
  )
  assert ok
  return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def class_names(kind):
  if kind == "history":
    return ["never"] + [f"qf{q}" for q in HISTORY_QFS]
  if kind == "cameras":
    return [c.name for c in builtin.CAMERAS]
  raise ConfigError(f"unknown real-photo kind {kind!r}; one of {KINDS}")


def source_name(path):
  """'kodak/01.png' -> 'kodak-01': the photo's name, the split group of its tiles."""
  path = pathlib.Path(path)
  return f"{path.parent.name}-{path.stem}"


def group_of(source):
  """The split group of a generated file's source ('kodak-01/r0c1' -> 'kodak-01')."""
  return str(source).split("/", 1)[0]


def generate(kind, sources, out_dir, tile, seed=0):
  """Writes `out_dir/<class>/<photo>/<tile>.(png|jpg)` for every source and tile."""
  names = class_names(kind)
  written = 0
  bar = progress.Progress(len(sources), f"generating the real-photo {kind} task", "photos")
  for index, path in enumerate(sources):
    photo = source_name(path)
    rgb = read_rgb(path)
    if kind == "history":
      for key, piece in tiles(rgb, tile).items():
        versions = [piece] + [compress_once(piece, q) for q in HISTORY_QFS]
        for name, version in zip(names, versions):
          _write_png(pathlib.Path(out_dir) / name / photo / f"{key}.png", version)
          written += 1
    else:
      light = downscale(rgb, DOWNSCALE[kind])
      for number, (key, piece) in enumerate(tiles(light, tile).items()):
        rng = np.random.default_rng([seed, index, number])
        for camera in builtin.CAMERAS:
          target = pathlib.Path(out_dir) / camera.name / photo / f"{key}.jpg"
          target.parent.mkdir(parents=True, exist_ok=True)
          target.write_bytes(builtin.shoot(np.ascontiguousarray(piece), camera, rng))
          written += 1
    bar.update()
  bar.close()
  if not written:
    raise ConfigError(f"no {tile}x{tile} tile fits any source photo: use smaller tiles")
  return names


def _write_png(path, rgb):
  path.parent.mkdir(parents=True, exist_ok=True)
  assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def _sources_digest(sources):
  h = hashlib.sha1()
  for path in sources:
    h.update(pathlib.Path(path).name.encode())
    h.update(pathlib.Path(path).read_bytes())
  return h.hexdigest()[:12]


def materialize(kind, tile=None, max_photos=None, seed=0, source_root=None, cache=None, log=print):
  """Generates a real-photo task once into the cache; returns its folder.

  Args:
    kind: "history" or "cameras".
    tile: tile side in pixels (after downscaling); None: the kind's default.
    max_photos: use only the first N photos (quick checks).
    seed: the cameras' sensor noise.
    source_root: the shared data folder (default: `default_root()`).
    cache: where generated tasks go (default: the built-in cache's `real/`).
  """
  class_names(kind)  # an unknown kind fails before anything is read
  tile = tile or DEFAULT_TILE[kind]
  sources = list_sources(source_root or default_root())[:max_photos]
  spec = dict(
    kind=kind,
    tile=tile,
    seed=seed,
    version=VERSION,
    sources=_sources_digest(sources),
    photos=len(sources),
  )
  root = pathlib.Path(cache) if cache else cache_lib.cache_root() / "real"
  return cache_lib.build_once(
    root, kind, spec, lambda staging: generate(kind, sources, staging, tile, seed), log
  )
