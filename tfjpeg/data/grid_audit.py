"""The audit's grid maps: per class, how many images hold a region where the
JPEG grid breaks (`tfjpeg.codec.grid_map`).

A "real vs generated" set whose generated images were pasted into JPEG
photos (inpainting, splices) shows it: the generated class's maps hold
regions without the photo's grid, the real class's none. A net may then
learn the splice's border instead of the generator. Each file is decoded
exactly (no header can tell this), so `bin/audit --grids` is slower than the
header audit: about a third of a second per 768x512 photo on 2 cores.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from tfjpeg.codec import grid_map
from tfjpeg.codec import images
from tfjpeg.core import progress

FILE_COLUMNS = ("file", "class_name", "grid_found", "foreign", "missing", "problem")
CLASS_COLUMNS = (
  "class_name", "images", "unreadable", "no_grid", "with_foreign", "with_missing", "flagged",
  "flagged_share",
)  # fmt: skip
DIFFERENT = 0.01  # p-value below which the classes' flagged shares differ


def map_files(paths: Sequence[str], class_names: Sequence[str], stream=None) -> pd.DataFrame:
  """One row per file: whether a main grid was found and how many foreign and
  missing regions its map holds; a file that cannot be read keeps its row,
  with the reason in `problem`, and is counted, never dropped."""
  mapper = grid_map.traced()
  rows = []
  with progress.Progress(len(paths), "grid maps", "images", stream) as done:
    for path, class_name in zip(paths, class_names):
      row: dict[str, object] = dict(file=path, class_name=class_name, problem="")
      try:
        info = images.probe(path)
        if min(info.height, info.width) < grid_map.MIN_SIDE:
          raise images.BadImageError(path, "smaller than the 16x16 a grid map needs")
        with open(path, "rb") as handle:
          found = mapper(images.decode(handle.read()))
        kinds = found["region_kind"].numpy()
        row.update(
          grid_found=bool(found["main_grid"][0] >= 0),
          foreign=int((kinds == grid_map.FOREIGN).sum()),
          missing=int((kinds == grid_map.MISSING).sum()),
        )
      except images.BadImageError as error:
        row["problem"] = error.problem
      rows.append(row)
      done.update()
  return pd.DataFrame(rows, columns=list(FILE_COLUMNS))


def by_class(files: pd.DataFrame) -> pd.DataFrame:
  """Per class: images, unreadable ones, images without a main grid, with a
  foreign region, with a missing region, and the share with either."""
  rows = []
  for name, group in files.groupby("class_name", sort=True):
    read = group[group["problem"] == ""]
    flagged = (read["foreign"] > 0) | (read["missing"] > 0)
    rows.append(
      dict(
        class_name=name,
        images=len(group),
        unreadable=len(group) - len(read),
        no_grid=int((~read["grid_found"].astype(bool)).sum()),
        with_foreign=int((read["foreign"] > 0).sum()),
        with_missing=int((read["missing"] > 0).sum()),
        flagged=int(flagged.sum()),
        flagged_share=float(flagged.mean()) if len(read) else np.nan,
      )
    )
  return pd.DataFrame(rows, columns=list(CLASS_COLUMNS))


def verdict(table: pd.DataFrame) -> list[str]:
  """Plain lines: each class's count, and whether the classes differ (a
  chi-squared test of flagged against clean images, or Fisher's for two)."""
  counts = ", ".join(
    f"'{row.class_name}' {row.flagged} of {row.images - row.unreadable} ({row.with_foreign} on "
    f"another grid, {row.with_missing} without the main grid)"
    for row in table.itertuples()
  )
  lines = [f"Grid maps: images with a region where the JPEG grid breaks: {counts}."]
  read = table["images"] - table["unreadable"]
  contingency = np.stack([table["flagged"], read - table["flagged"]], 1)
  if len(table) >= 2 and contingency.sum(0).min() > 0:
    if len(table) == 2:
      p_value = stats.fisher_exact(contingency).pvalue
    else:
      p_value = stats.chi2_contingency(contingency).pvalue
    if p_value < DIFFERENT:
      top = table.sort_values("flagged_share", ascending=False).iloc[0]
      lines.append(
        f"The classes differ in where the grid breaks (p = {p_value:.2g}): '{top.class_name}' "
        "images hold splices or inserted regions more often, a trace a net may learn "
        "instead of the task (docs: Where the grid breaks)."
      )
  return lines
