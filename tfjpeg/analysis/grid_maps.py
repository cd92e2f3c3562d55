"""bin/grid: where the JPEG grid breaks, for a photo or a folder of them.

    result = map_file("suspect.png")          # one photo's GridResult
    summary = map_folder("photos/", "grids/") # every photo: files, a CSV and a page

For each image, `tfjpeg.codec.grid_map.grid_map` on its exactly decoded
pixels, then in OUT, named after the file: `<name>.json` (the main grid, its
log10 NFA, the other meaningful grids, the regions), `<name>.mask.png`
(255 where a grid is foreign, 128 where the main grid is missing, 0
elsewhere) and `<name>.votes.png` (the photo in grey, each voting pixel
tinted by its grid, the main grid's pale, regions boxed); `grid.csv` (one
line per image, with its verdict in words) and `grid.html` (the verdict, then
the flagged images first, each with its vote map). A file that cannot be read
is one line on the terminal and in `grid.csv`; the others go on. The same
input gives the same files, byte for byte.
"""

import dataclasses
import html
import json
import os
import re
from collections.abc import Callable
from typing import IO
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from tfjpeg.analysis import grid_pictures
from tfjpeg.codec import grid_map as grid_map_lib
from tfjpeg.codec import images
from tfjpeg.core import pages
from tfjpeg.core import progress
from tfjpeg.core.errors import MissingError
from tfjpeg.train import rundir

CSV = "grid.csv"
PAGE = "grid.html"
MAX_MEGAPIXELS = 100  # the vote map and its work take about 40 bytes a pixel
CSV_COLUMNS = (
  "file", "status", "height", "width", "main_dy", "main_dx", "main_log_nfa", "foreign",
  "missing", "verdict",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Region:
  kind: str  # "foreign" (another grid) or "missing" (no grid)
  box: tuple[int, int, int, int]  # y0, x0, y1, x1; ends exclusive, as NumPy slices
  grid: tuple[int, int] | None  # (dy, dx) of a foreign region's grid
  log_nfa: float
  evidence: str  # "zeros", "resaved" or "lattice"

  def words(self) -> str:
    """The region as a verdict line."""
    y0, x0, y1, x1 = self.box
    where = f"{y1 - y0}x{x1 - x0} px at ({y0}, {x0})"
    if self.kind == "foreign":
      return f"a region of {where} saved on another grid {self.grid}"
    return f"no JPEG grid inside {where}"


@dataclasses.dataclass(frozen=True)
class GridResult:
  """One image's grid map, in plain values (`to_json` for the file)."""

  file: str
  height: int
  width: int
  main_grid: tuple[int, int] | None  # (dy, dx), None when no grid is meaningful
  main_log_nfa: float | None
  grids: tuple[tuple[tuple[int, int], float], ...]  # other meaningful grids, log10 NFA
  steps: tuple[tuple[int, ...], ...]  # quantisation steps on the main grid, 0 unknown
  regions: tuple[Region, ...]

  @property
  def flagged(self) -> bool:
    return bool(self.regions)

  def verdict(self) -> str:
    """The image in one line: its regions, else its grid."""
    if self.regions:
      return "; ".join(region.words() for region in self.regions)
    if self.main_grid is None:
      return "no JPEG grid found (never compressed, resized, or too flat to tell)"
    return f"one JPEG grid at {self.main_grid}, nothing else found"

  def to_json(self) -> str:
    value = {
      "file": self.file,
      "height": self.height,
      "width": self.width,
      "main_grid": list(self.main_grid) if self.main_grid else None,
      "main_log_nfa": _number(self.main_log_nfa),
      "grids": [{"grid": list(g), "log_nfa": _number(n)} for g, n in self.grids],
      "steps": [list(row) for row in self.steps],
      "regions": [
        {
          "kind": r.kind,
          "box": list(r.box),
          "grid": list(r.grid) if r.grid else None,
          "log_nfa": _number(r.log_nfa),
          "evidence": r.evidence,
        }
        for r in self.regions
      ],
      "verdict": self.verdict(),
    }
    text = json.dumps(value, indent=1, sort_keys=True)
    # Lists of numbers on one line each (a box, a grid, a row of steps).
    return re.sub(r"\[[-\d.,\s]*\]", lambda m: re.sub(r"\s+", " ", m.group(0)), text) + "\n"


def _number(value):
  return None if value is None or not np.isfinite(value) else round(float(value), 3)


def result_from_map(file: str, found: dict[str, Any]) -> GridResult:
  """A `GridResult` from `grid_map`'s tensors for one image."""
  count = int(found["region_count"])
  main = tuple(int(v) for v in np.asarray(found["main_grid"]))
  grid_nfa = np.asarray(found["grid_log_nfa"])
  grids = tuple(
    ((int(dy), int(dx)), float(grid_nfa[dy, dx]))
    for dy, dx in zip(*np.nonzero(grid_nfa < 0))
    if (int(dy), int(dx)) != main
  )
  regions = tuple(
    Region(
      kind=grid_map_lib.KINDS[int(found["region_kind"][i])],
      box=tuple(int(v) for v in np.asarray(found["region_box"][i])),  # type: ignore[arg-type]
      grid=(
        tuple(int(v) for v in np.asarray(found["region_grid"][i]))  # type: ignore[arg-type]
        if int(found["region_grid"][i][0]) >= 0
        else None
      ),
      log_nfa=float(found["region_log_nfa"][i]),
      evidence=grid_map_lib.EVIDENCE[int(found["region_evidence"][i])],
    )
    for i in range(count)
  )
  votes = np.asarray(found["votes"])
  return GridResult(
    file=file,
    height=int(votes.shape[0]),
    width=int(votes.shape[1]),
    main_grid=main if main[0] >= 0 else None,  # type: ignore[arg-type]
    main_log_nfa=float(found["main_log_nfa"]) if main[0] >= 0 else None,
    grids=grids,
    steps=tuple(tuple(int(v) for v in row) for row in np.asarray(found["steps"])),
    regions=regions,
  )


class Mapper:
  """Reads, checks and maps image files, one traced graph for every size."""

  def __init__(self):
    self._map = grid_map_lib.traced()

  def read(self, path: str) -> np.ndarray:
    """The file's exact pixels; `images.BadImageError` for a file that cannot be mapped."""
    info = images.probe(path)
    if info.height < grid_map_lib.MIN_SIDE or info.width < grid_map_lib.MIN_SIDE:
      raise images.BadImageError(
        path, f"image of {info.height}x{info.width} pixels is below the 16x16 a grid needs"
      )
    megapixels = info.height * info.width / 1e6
    if megapixels > MAX_MEGAPIXELS:
      raise images.BadImageError(
        path, f"image of {megapixels:.0f} megapixels is above bin/grid's {MAX_MEGAPIXELS}"
      )
    with open(path, "rb") as handle:
      return images.decode(handle.read()).numpy()

  def map(self, image: np.ndarray) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in self._map(tf.constant(image)).items()}


def map_file(path: str, mapper: Mapper | None = None) -> GridResult:
  """The grid map of one image file. Raises `images.BadImageError`."""
  mapper = mapper or Mapper()
  return result_from_map(path, mapper.map(mapper.read(path)))


def write_image_files(
  result: GridResult, image: np.ndarray, found: dict[str, Any], out: str, name: str
) -> None:
  """`<name>.json`, `<name>.mask.png` and `<name>.votes.png` in `out`."""
  rundir.write_atomically(os.path.join(out, f"{name}.json"), result.to_json())
  kinds = [region.kind for region in result.regions]
  mask = grid_pictures.mask_picture(found["region_mask"], kinds)
  rundir.write_atomically(os.path.join(out, f"{name}.mask.png"), grid_pictures.png(mask))
  main = -1 if result.main_grid is None else result.main_grid[0] * 8 + result.main_grid[1]
  regions = [{"kind": r.kind, "box": r.box} for r in result.regions]
  picture = grid_pictures.vote_picture(image, found["votes"], main, regions)
  rundir.write_atomically(os.path.join(out, f"{name}.votes.png"), grid_pictures.png(picture))


def list_inputs(source: str) -> tuple[str, list[str]]:
  """(root, files): one file, or every image below a folder, sorted."""
  if os.path.isfile(source):
    return os.path.dirname(source), [source]
  if not os.path.isdir(source):
    raise MissingError(f"no file or folder at {source}")
  files = images.list_images(source)
  if not files:
    raise MissingError(f"{source} holds no image ({', '.join(images.FORMATS)})")
  return source, sorted(files)


def map_folder(
  source: str,
  out: str,
  stream: IO[str] | None = None,
  report: Callable[[str], None] = print,
) -> pd.DataFrame:
  """Maps one image or every image below a folder into `out`; returns grid.csv's table.

  Files are named after the image's path below the folder, with "/" as "__"
  (`a/b.jpg` gives `a__b.jpg.json`), so that no two images share a name.
  A file that cannot be mapped is reported through `report` in one line,
  counted in the table (status "error", the problem as its verdict), and the
  others go on.
  """
  root, files = list_inputs(source)
  os.makedirs(out, exist_ok=True)
  mapper = Mapper()
  rows = []
  with progress.Progress(len(files), "grid maps", "images", stream, every=10.0) as done:
    for path in files:
      name = os.path.relpath(path, root).replace(os.sep, "__")
      try:
        image = mapper.read(path)
      except images.BadImageError as error:
        report(f"grid: {error}")
        rows.append(dict(file=name, status="error", verdict=error.problem))
        done.update()
        continue
      found = mapper.map(image)
      result = result_from_map(name, found)
      write_image_files(result, image, found, out, name)
      rows.append(_row(result))
      done.update()
  table = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
  integers = ["height", "width", "main_dy", "main_dx", "foreign", "missing"]
  table[integers] = table[integers].astype("Int64")  # blank, not NaN, for a bad file
  rundir.write_atomically(os.path.join(out, CSV), table.to_csv(index=False))
  rundir.write_atomically(os.path.join(out, PAGE), page(table, source))
  return table


def _row(result: GridResult) -> dict[str, Any]:
  main = result.main_grid or (None, None)
  return dict(
    file=result.file,
    status="flagged" if result.flagged else "clean",
    height=result.height,
    width=result.width,
    main_dy=main[0],
    main_dx=main[1],
    main_log_nfa=_number(result.main_log_nfa),
    foreign=sum(r.kind == "foreign" for r in result.regions),
    missing=sum(r.kind == "missing" for r in result.regions),
    verdict=result.verdict(),
  )


def summary_lines(table: pd.DataFrame) -> list[str]:
  """The folder in a few plain lines."""
  counts = table["status"].value_counts()
  flagged, errors = int(counts.get("flagged", 0)), int(counts.get("error", 0))
  lines = [
    f"{len(table)} images: {flagged} with a region where the grid breaks, "
    f"{int(counts.get('clean', 0))} without, {errors} that could not be read"
  ]
  if flagged:
    lines.append(
      f"{int((table['foreign'] > 0).sum())} hold a region saved on another grid, "
      f"{int((table['missing'] > 0).sum())} a region without the main grid"
    )
  no_grid = int(((table["status"] == "clean") & table["main_dy"].isna()).sum())
  if no_grid:
    lines.append(f"{no_grid} show no JPEG grid at all (never compressed, resized, or flat)")
  return lines


def page(table: pd.DataFrame, source: str) -> str:
  """grid.html: the verdict, then every image, the flagged ones first."""
  order = {"flagged": 0, "error": 1, "clean": 2}
  ranked = table.assign(rank=table["status"].map(order)).sort_values(
    ["rank", "file"], kind="stable"
  )
  parts = [pages.head(f"Where the JPEG grid breaks: {source}"), pages.verdict(summary_lines(table))]
  parts.append(
    "<p>Each picture: the photo in grey, each pixel that votes tinted by its grid "
    "(the main grid pale green), regions on another grid boxed in magenta, regions "
    "without the main grid in cyan. Box coordinates are (y0, x0, y1, x1), ends "
    "exclusive.</p>"
  )
  for row in ranked.itertuples():
    name = html.escape(str(row.file))
    parts.append(f"<h2>{name}</h2><p>{html.escape(str(row.verdict))}</p>")
    if row.status != "error":
      parts.append(f'<img src="{html.escape(str(row.file) + ".votes.png")}" alt="votes of {name}">')
  parts.append("</body></html>\n")
  return "\n".join(parts)


def grid_found(
  paths: list[str], conditions: list[str], stream: IO[str] | None = None
) -> pd.DataFrame:
  """Per condition, how many of its image files still show a main JPEG grid
  (`grid_map`'s main grid meaningful): columns condition, images, grid_found,
  grid_found_share. A file that cannot be read counts as an image without one.
  """
  mapper = Mapper()
  found = []
  with progress.Progress(len(paths), "grid maps", "images", stream, every=10.0) as done:
    for path in paths:
      try:
        result = mapper.map(mapper.read(path))
        found.append(bool(result["main_grid"][0] >= 0))
      except images.BadImageError:
        found.append(False)
      done.update()
  table = pd.DataFrame(dict(condition=conditions, grid_found=found))
  out = table.groupby("condition", sort=False).agg(
    images=("grid_found", "size"), grid_found=("grid_found", "sum")
  )
  out["grid_found_share"] = out["grid_found"] / out["images"]
  return out.reset_index()
