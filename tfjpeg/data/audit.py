"""A shortcut audit: do a dataset's files give the class away by how they were saved?

In public real-against-generated datasets the real images are often JPEG and
the generated ones PNG (GenImage; Grommelt et al. 2024, "Fake or JPEG?"), and
detectors learn the file format instead of the task. The audit reads every
file's header (`tfjpeg.codec.headers`: no pixel is decoded), in parallel threads
with progress, and answers three questions:

  what      per split and class, the distribution of container format, JPEG
            quality (IJG scale; tables that match no IJG quality are counted
            as such, with their nearest quality), chroma subsampling,
            progressive coding, width, height and megapixels, bit depth and
            colour mode, EXIF and ICC profile. File size and bits per pixel
            depend on content too: reported, labelled so, never used below.
  how much  a metadata-only classifier (scikit-learn's decision tree) that
            predicts the class from those processing attributes alone,
            cross-validated by source image (a source's files share a fold),
            with a 95% bootstrap interval; and each attribute alone, so the
            verdict can name the culprit.
  so what   a verdict in plain words: which class is stored how, and whether a
            net can learn that instead of the task.

`compression_profile` turns the same headers into the QFs that the report's
compression swap and the `match_compression` training recipe draw from.
"""

import concurrent.futures
import dataclasses
import hashlib
import html
import json
import os
import shlex
import sys
import time
import warnings
from typing import IO
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn import model_selection
from sklearn import tree

if TYPE_CHECKING:
  from tfjpeg.data import tasks as tasks_lib
from tfjpeg.codec import headers
from tfjpeg.core import metrics
from tfjpeg.core import pages
from tfjpeg.core import progress
from tfjpeg.core.errors import ConfigError
from tfjpeg.data import manifest

# The processing attributes the classifier sees, in the order tables show them.
ATTRIBUTES = (
  "format",
  "quality",
  "quality_exact",
  "subsampling",
  "progressive",
  "width",
  "height",
  "megapixels",
  "bit_depth",
  "mode",
  "exif",
  "icc",
)
CATEGORICAL = ("format", "subsampling", "mode")
JPEG_ONLY = ("quality", "quality_exact", "subsampling", "progressive")
# Figures that depend on the picture as well as its processing: reported, never predictors.
CONTENT_FIGURES = ("file_bytes", "bits_per_pixel")
ATTRIBUTE_NAMES = {
  "format": "the file format",
  "quality": "the JPEG quality",
  "quality_exact": "whether the JPEG tables are IJG's",
  "subsampling": "the chroma subsampling",
  "progressive": "progressive JPEG coding",
  "width": "the image width",
  "height": "the image height",
  "megapixels": "the image size",
  "bit_depth": "the bit depth",
  "mode": "the colour mode",
  "exif": "the presence of EXIF",
  "icc": "the presence of an ICC profile",
}
FORMAT_NAMES = {
  "jpeg": "JPEG",
  "png": "PNG",
  "bmp": "BMP",
  "tiff": "TIFF",
  "webp": "lossy WebP",
  "webp-lossless": "lossless WebP",
}
LOSSLESS_LEVEL = 101  # a lossless file's place on the quality scale: above QF 100
FOLDS = 5
MAX_POOL = 100  # QF pools handed to the pipeline: at most this many quantiles


class _Parsed(dict):
  """A header row already read from bytes that are not kept (`files_of`)."""


def _header_row(source):
  if isinstance(source, _Parsed):
    return dict(source)
  try:
    header = headers.read(source)
  except (OSError, ValueError) as e:
    return dict(problem=str(e))
  row = dataclasses.asdict(header)
  row.update(
    megapixels=header.megapixels,
    problem="",
    bits_per_pixel=8 * header.file_bytes / max(1, header.width * header.height),
  )
  return row


def read_headers(files: pd.DataFrame, workers: int = 8, stream=None) -> pd.DataFrame:
  """`files` (columns `source`: a path or the file's bytes, `class_name`, `split`,
  `group`) with every header attribute added; a file whose header cannot be read
  keeps its row, with the reason in `problem`, and is counted, never dropped."""
  sources = files["source"].tolist()
  rows = [None] * len(sources)
  chunk = 256
  with (
    concurrent.futures.ThreadPoolExecutor(workers) as pool,
    progress.Progress(len(sources), "reading file headers", "files", stream) as bar,
  ):
    for start in range(0, len(sources), chunk):
      part = sources[start : start + chunk]
      rows[start : start + len(part)] = list(pool.map(_header_row, part))
      bar.update(len(part))
  table = pd.DataFrame(rows, index=files.index)
  for column in ATTRIBUTES + CONTENT_FIGURES:
    if column not in table:
      table[column] = np.nan
  out = files.drop(columns="source").join(table[list(ATTRIBUTES + CONTENT_FIGURES) + ["problem"]])
  out.insert(0, "file", [s if isinstance(s, str) else g for s, g in zip(sources, files["group"])])
  return out


def files_of(task) -> pd.DataFrame:
  """A task's files for `read_headers`: paths of a file task (its manifest), or
  for a TFDS task each stored file's header, read from its bytes as they stream
  past split by split (the bytes are not kept)."""
  if task.files is not None:
    return pd.DataFrame(
      dict(
        source=task.files["path"].astype(str),
        class_name=task.files["class_name"],
        split=task.files["split"],
        group=task.files["source"].astype(str),
      )
    ).reset_index(drop=True)
  rows = []
  for split in ("train", "validation", "test"):
    if not task.num_images.get(split):
      continue
    for element in task.images(split):
      rows.append(
        dict(
          source=_Parsed(_header_row(element["encoded"].numpy())),
          class_name=task.class_names[int(element["label"])],
          split=split,
          group=element["image_id"].numpy().decode(),
        )
      )
  return pd.DataFrame(rows, columns=["source", "class_name", "split", "group"])


def folder_files(root) -> pd.DataFrame:
  """Every image file of root/<class>/... for `read_headers`, found by
  extension and not decoded: split "all", and as group the file's name without
  extension (versions of one source in several classes share a fold, as they
  share a split in a manifest)."""
  entries = manifest.class_folder_entries(root)
  return pd.DataFrame(
    [
      dict(source=path, class_name=name, split="all", group=source)
      for path, _, name, source in entries
    ],
    columns=["source", "class_name", "split", "group"],
  )


def features(table: pd.DataFrame, attributes=ATTRIBUTES) -> pd.DataFrame:
  """The classifier's input: numbers as they are (a missing JPEG quality is 0),
  categories one-hot, booleans 0/1 (-1 where they do not apply)."""
  columns = {}
  for name in attributes:
    values = table[name]
    if name in CATEGORICAL:
      for value in sorted(values.fillna("").astype(str).unique()):
        columns[f"{name}={value}"] = (values.fillna("").astype(str) == value).astype(float)
    elif name in ("quality_exact", "progressive", "exif", "icc"):
      columns[name] = values.map({True: 1.0, False: 0.0}).fillna(-1.0).astype(float)
    else:
      columns[name] = pd.to_numeric(values, errors="coerce").fillna(0.0).astype(float)
  return pd.DataFrame(columns, index=table.index)


def _cross_validated(x, labels, groups, folds, seed):
  """Out-of-fold predictions of a small decision tree, folds by group."""
  predictions = np.zeros(len(labels), int)
  splitter = model_selection.StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
  with warnings.catch_warnings():  # classes with fewer groups than folds
    warnings.simplefilter("ignore", UserWarning)
    for train, test in splitter.split(x, labels, groups):
      model = tree.DecisionTreeClassifier(
        max_depth=6, min_samples_leaf=5, class_weight="balanced", random_state=seed
      )
      model.fit(x[train], labels[train])
      predictions[test] = model.predict(x[test])
  return predictions


def leak(table: pd.DataFrame, seed: int = 0) -> tuple:
  """How well the processing attributes alone predict the class.

  Returns (overall, per_attribute): `overall` a dict with balanced_accuracy, its
  95% interval (low, high; bootstrap over files within class), chance (1/K),
  folds and n_files; `per_attribute` one such row per attribute, best first.
  With fewer than two source groups per class nothing can be cross-validated:
  the accuracies are NaN.
  """
  usable = table[table["problem"] == ""].reset_index(drop=True)
  classes = sorted(usable["class_name"].unique())
  labels = usable["class_name"].map({c: i for i, c in enumerate(classes)}).to_numpy()
  groups = usable["group"].astype(str).to_numpy()
  units = (usable["class_name"].astype(str) + "/" + usable["group"].astype(str)).to_numpy()
  per_class_groups = usable.groupby("class_name")["group"].nunique()
  folds = int(min(FOLDS, per_class_groups.min())) if len(per_class_groups) else 0
  chance = 1.0 / max(1, len(classes))

  def score(attributes):
    if folds < 2 or len(classes) < 2:
      return dict(balanced_accuracy=float("nan"), low=float("nan"), high=float("nan"))
    x = features(usable, attributes).to_numpy()
    predicted = _cross_validated(x, labels, groups, folds, seed)
    # Resampled by source within each class: one source's files are not independent.
    low, high = metrics.bootstrap_interval(labels, predicted, units, seed=seed)
    return dict(balanced_accuracy=metrics.balanced_accuracy(labels, predicted), low=low, high=high)

  overall = dict(
    score(ATTRIBUTES), chance=chance, folds=folds, n_files=len(usable), classes=classes
  )
  rows = [dict(attribute=a, **score((a,))) for a in ATTRIBUTES]
  per_attribute = (
    pd.DataFrame(rows)
    .sort_values("balanced_accuracy", ascending=False, kind="stable")
    .reset_index(drop=True)
  )
  return overall, per_attribute


def leaks(overall: dict) -> bool:
  """The warning's rule: the 95% interval's lower bound lies above chance."""
  return bool(overall["low"] > overall["chance"] + 1e-9)


BY_CLASS_COLUMNS = (
  "split",
  "class_name",
  "n_files",
  "n_unreadable",
  "formats",
  "jpeg_share",
  "quality_median",
  "quality_min",
  "quality_max",
  "quality_not_ijg_share",
  "subsampling",
  "progressive_share",
  "width_median",
  "height_median",
  "megapixels_median",
  "bit_depths",
  "modes",
  "exif_share",
  "icc_share",
  "content_file_bytes_median",
  "content_bits_per_pixel_median",
)


def by_class(table: pd.DataFrame) -> pd.DataFrame:
  """One row per split and class (and one per class over all splits, split
  "all"): counts and the share or median of every attribute."""
  usable, problems = table[table["problem"] == ""], table[table["problem"] != ""]
  frames = [usable.assign(split="all"), usable] if len(usable) else [usable]
  rows = []
  for (split, name), rows_of in pd.concat(frames).groupby(["split", "class_name"], sort=True):
    jpeg = rows_of[rows_of["format"] == "jpeg"]
    qualities = pd.to_numeric(jpeg["quality"], errors="coerce")
    rows.append(
      dict(
        split=split,
        class_name=name,
        n_files=len(rows_of),
        n_unreadable=int(
          (
            (problems["class_name"] == name) & ((problems["split"] == split) | (split == "all"))
          ).sum()
        ),
        formats=_shares(rows_of["format"]),
        jpeg_share=len(jpeg) / len(rows_of),
        quality_median=float(qualities.median()) if len(jpeg) else np.nan,
        quality_min=float(qualities.min()) if len(jpeg) else np.nan,
        quality_max=float(qualities.max()) if len(jpeg) else np.nan,
        quality_not_ijg_share=float((jpeg["quality_exact"] == False).mean())  # noqa: E712
        if len(jpeg)
        else np.nan,
        subsampling=_shares(jpeg["subsampling"]),
        progressive_share=float((jpeg["progressive"] == True).mean())  # noqa: E712
        if len(jpeg)
        else np.nan,
        width_median=float(rows_of["width"].median()),
        height_median=float(rows_of["height"].median()),
        megapixels_median=float(rows_of["megapixels"].median()),
        bit_depths=_shares(rows_of["bit_depth"]),
        modes=_shares(rows_of["mode"]),
        exif_share=float((rows_of["exif"] == True).mean()),  # noqa: E712
        icc_share=float((rows_of["icc"] == True).mean()),  # noqa: E712
        content_file_bytes_median=float(rows_of["file_bytes"].median()),
        content_bits_per_pixel_median=float(rows_of["bits_per_pixel"].median()),
      )
    )
  return pd.DataFrame(rows, columns=BY_CLASS_COLUMNS)


def _shares(values):
  """'jpeg 90%, png 10%': the values of a column by share, most common first."""
  counts = values.astype(str).value_counts()
  if not len(counts):
    return ""
  return ", ".join(f"{v} {100 * c / counts.sum():.0f}%" for v, c in counts.items())


def distribution(table: pd.DataFrame) -> pd.DataFrame:
  """Long form: split, class_name, attribute, value, count, share (of the
  class's files in that split); numbers binned as they come (quality per QF)."""
  usable = table[table["problem"] == ""]
  rows = []
  for attribute in (a for a in ATTRIBUTES if a != "megapixels"):  # width, height suffice
    for split in ("all",) + tuple(sorted(usable["split"].unique())):
      part = usable if split == "all" else usable[usable["split"] == split]
      if attribute in ("quality", "quality_exact", "subsampling", "progressive"):
        part = part[part["format"] == "jpeg"]
      counts = part.groupby("class_name")[attribute].value_counts(dropna=False)
      totals = part.groupby("class_name").size()
      for (name, value), count in counts.items():
        rows.append(
          dict(
            split=split,
            class_name=name,
            attribute=attribute,
            value="" if pd.isna(value) else value,
            count=int(count),
            share=count / totals[name],
          )
        )
  return pd.DataFrame(rows, columns=["split", "class_name", "attribute", "value", "count", "share"])


def levels_of(rows):
  """Where each file sits on the compression scale: its JPEG quality, lossless above."""
  return np.where(
    rows["format"] == "jpeg", pd.to_numeric(rows["quality"], errors="coerce"), LOSSLESS_LEVEL
  )


def _describe_class(rows, attribute):
  """How one class stores its files, for the named attribute: 'JPEG in 100% of
  files (median QF 96)', 'QF 90 in 100%', '256x256 px (median)'."""
  jpeg = rows[rows["format"] == "jpeg"]
  if attribute == "format":
    shares = rows["format"].value_counts(normalize=True)
    top = shares.index[0]
    text = f"{FORMAT_NAMES.get(top, top)} in {100 * shares.iloc[0]:.0f}% of files"
    if top == "jpeg":
      text += f" (median QF {jpeg['quality'].median():.0f})"
    return text
  if attribute in ("quality", "quality_exact"):
    if not len(jpeg):
      return "no JPEG files"
    q = pd.to_numeric(jpeg["quality"])
    spread = f"QF {q.min():.0f}" if q.min() == q.max() else f"QF {q.min():.0f}-{q.max():.0f}"
    exact = (jpeg["quality_exact"] == True).mean()  # noqa: E712
    tables = (
      "IJG tables"
      if exact == 1
      else "tables matching no IJG quality, nearest"
      if exact == 0
      else f"IJG tables in {100 * exact:.0f}%"
    )
    return f"median QF {q.median():.0f} ({spread}; {tables})"
  if attribute in ("width", "height", "megapixels"):
    return (
      f"{rows['width'].median():.0f}x{rows['height'].median():.0f} px (median, "
      f"{rows['megapixels'].median():.2f} MP)"
    )
  values = (jpeg if attribute in ("subsampling", "progressive") else rows)[attribute]
  if not len(values):
    return "no JPEG files"
  if attribute in ("exif", "icc", "progressive"):
    what = {"exif": "EXIF", "icc": "an ICC profile", "progressive": "progressive JPEG"}[attribute]
    return f"{what} in {100 * (values == True).mean():.0f}% of files"  # noqa: E712
  shares = values.astype(str).value_counts(normalize=True)
  unit = "-bit" if attribute == "bit_depth" else ""
  return f"{shares.index[0]}{unit} in {100 * shares.iloc[0]:.0f}% of files"


def verdict(
  table: pd.DataFrame,
  overall: dict,
  per_attribute: pd.DataFrame,
  kind: str = "custom",
  processing_is_class: bool = False,
) -> list:
  """The audit's findings in plain words, the headline first."""
  usable = table[table["problem"] == ""]
  acc, low, high, chance = (overall[k] for k in ("balanced_accuracy", "low", "high", "chance"))
  unreadable = int((table["problem"] != "").sum())
  tail = (
    [f"{unreadable} file(s) have headers that cannot be read (see files.csv)."]
    if unreadable
    else []
  )
  classes = usable["class_name"].nunique()
  if not np.isfinite(acc):
    if not len(usable):
      reason = "No file has a readable header: nothing to audit."
    elif classes < 2:
      reason = "Only one class has readable files: there is no class to tell apart."
    else:
      reason = (
        "Too few source images per class to cross-validate a metadata classifier "
        "(each class needs files from at least two sources)."
      )
    return [reason] + tail
  lines = []
  figures = f"{acc:.2f} balanced accuracy (95% interval {low:.2f}-{high:.2f}; chance {chance:.2f})"
  if not leaks(overall):
    lines.append(
      f"The file metadata predict the class no better than chance: {figures}, from "
      "format, JPEG quality, subsampling, size, bit depth, colour mode, EXIF and ICC, "
      "cross-validated by source image. No processing leak in the file headers."
    )
  else:
    culprits = per_attribute[per_attribute["low"] > chance + 1e-9]
    if "format" in set(culprits["attribute"]):
      # What only JPEG files have follows from the format once that is named.
      best = float(culprits.set_index("attribute").loc["format", "balanced_accuracy"])
      culprits = culprits[
        ~(culprits["attribute"].isin(JPEG_ONLY) & (culprits["balanced_accuracy"] <= best))
      ]
    if processing_is_class:
      lines.append(
        f"The classes differ in how their files are saved: processing attributes "
        f"alone predict the class with {figures}, cross-validated by source image."
      )
    else:
      lines.append(
        f"The file metadata give the class away: processing attributes alone "
        f"predict it with {figures}, cross-validated by source image. A net can "
        "learn this instead of your task."
      )
    said = set()
    for row in culprits.itertuples():
      per_class = ", ".join(
        (f"'{name}' is " if row.attribute == "format" else f"'{name}': ")
        + _describe_class(rows, row.attribute)
        for name, rows in usable.groupby("class_name")
      )
      if per_class in said:  # width, height and megapixels tell one story
        continue
      said.add(per_class)
      lines.append(
        f"{per_class}: {ATTRIBUTE_NAMES[row.attribute]} alone predicts the class "
        f"for {100 * row.balanced_accuracy:.0f}% of images (balanced accuracy)."
      )
      if len(said) == 3:
        break
    if processing_is_class:
      lines.append(
        "Camera models do differ in how they save files (quantisation tables, "
        "subsampling, size): on this task that is a fact of the classes, but not "
        "the sensor trace, and it is gone once an image is re-saved. Whether a net "
        "may use it is your judgement."
      )
    elif kind == "vision":
      lines.append("On a vision task the content defines the class, so this is a shortcut.")
    else:
      lines.append(
        "If how files are saved is part of what defines your classes (camera "
        "models, platforms), this is a fact of the task; if not (real against "
        "generated images), it is a shortcut: train with --match_compression and "
        "check the model with bin/report's compression swap."
      )
  return lines + tail


@dataclasses.dataclass
class Audit:
  """Everything an audit found; `write` turns it into a page and tables."""

  name: str
  kind: str
  files: pd.DataFrame  # one row per file: its header attributes
  by_class: pd.DataFrame
  distribution: pd.DataFrame
  overall: dict
  per_attribute: pd.DataFrame
  verdict: list
  seconds: float
  processing_is_class: bool = False
  grids: pd.DataFrame | None = None  # per class, with --grids (`grid_audit.by_class`)
  grid_files: pd.DataFrame | None = None  # per file, with --grids

  @property
  def leaks(self) -> bool:
    return leaks(self.overall)

  def fingerprint(self) -> str:
    """SHA-256 of the file list: each file's name, class, split and size."""
    digest = hashlib.sha256()
    for row in self.files.sort_values(["class_name", "file"]).itertuples():
      digest.update(f"{row.file}|{row.class_name}|{row.split}|{row.file_bytes}\n".encode())
    return digest.hexdigest()

  def short_form(self) -> str:
    """The few lines a run's data_summary.txt holds."""
    o = self.overall
    lines = [
      f"Shortcut audit of the file headers ({o['n_files']} files): metadata-only "
      f"balanced accuracy {o['balanced_accuracy']:.2f} (95% interval {o['low']:.2f}-"
      f"{o['high']:.2f}, chance {o['chance']:.2f})."
    ]
    lines += self.verdict[1:] if self.leaks else self.verdict[:1]
    where = "--images=DIR" if self.name == "folder" else f"--task={self.name}"
    lines.append(f"Full audit: bin/audit {where} --out=OUT")
    return "\n".join(lines)

  def warning(self) -> str | None:
    """One line for a run's log when the metadata predict the class; None otherwise."""
    if not self.leaks:
      return None
    o = self.overall
    culprit = ATTRIBUTE_NAMES[self.per_attribute.iloc[0]["attribute"]]
    figures = (
      f"balanced accuracy {o['balanced_accuracy']:.2f}, 95% interval {o['low']:.2f}-"
      f"{o['high']:.2f}, chance {o['chance']:.2f}"
    )
    if self.processing_is_class:
      return (
        f"NOTE: {self.name}: the files' processing predicts the class ({figures}; "
        f"mostly {culprit}): its classes differ in how they save files, which a net may "
        "learn besides the trace itself (data_summary.txt, bin/audit)."
      )
    return (
      f"WARNING: {self.name}: the file metadata predict the class ({figures}; mostly "
      f"{culprit}): a net can learn this instead of the task (data_summary.txt, "
      "bin/audit; --match_compression removes the compression cue)."
    )


def audit(
  files: pd.DataFrame,
  name: str = "folder",
  kind: str = "custom",
  workers: int = 8,
  seed: int = 0,
  stream=None,
  processing_is_class: bool = False,
  grids: bool = False,
) -> Audit:
  """Audits `files` (see `read_headers`). `kind` is the task's ("forensic",
  "vision" or "custom"); `processing_is_class` says that how files are saved
  is part of what defines the classes (camera models), so the verdict states
  a metadata cue as a fact instead of warning of a shortcut. `grids`: also
  map every file's JPEG grid (`grid_audit`) and count, per class, the images
  with a region where it breaks; this decodes every file."""
  started = time.monotonic()
  table = read_headers(files, workers, stream)
  seconds = time.monotonic() - started
  overall, per_attribute = leak(table, seed)
  lines = verdict(table, overall, per_attribute, kind, processing_is_class)
  grid_files = grid_table = None
  if grids:
    paths = files["source"]
    if not all(isinstance(p, str) for p in paths):
      raise ConfigError(
        "--grids maps files on disk: a TFDS task's stored images are read as bytes; "
        "export them to a folder and audit that"
      )
    from tfjpeg.data import grid_audit  # pylint: disable=g-import-not-at-top  # TensorFlow

    grid_files = grid_audit.map_files(list(paths), list(files["class_name"]), stream)
    grid_table = grid_audit.by_class(grid_files)
    lines = lines + grid_audit.verdict(grid_table)
  return Audit(
    name,
    kind,
    table,
    by_class(table),
    distribution(table),
    overall,
    per_attribute,
    lines,
    seconds,
    processing_is_class,
    grid_table,
    grid_files,
  )


def audit_folder(
  root: str,
  workers: int = 8,
  seed: int = 0,
  stream: IO[str] | None = None,
  grids: bool = False,
) -> "Audit":
  """Audits the files of a labelled folder root/<class>/<images> by their
  headers alone (nothing is decoded): does how they were saved predict the
  class? Returns an `Audit`; `Audit.verdict` says it in words, `write` makes
  the page and tables. `grids`: also map every image's JPEG grid (decoding
  it) and count per class the images where the grid breaks.

  Examples:
    >>> found = tfjpeg.audit_folder("photos")  # doctest: +SKIP
    >>> print(found.verdict[0])  # doctest: +SKIP
    'fake' is PNG in 100% of files, 'real' is JPEG in 100% of files ...
  """
  return audit(
    folder_files(root), name=str(root), workers=workers, seed=seed, stream=stream, grids=grids
  )


def audit_task(
  task: "tasks_lib.Task",
  workers: int = 8,
  seed: int = 0,
  stream: IO[str] | None = None,
  grids: bool = False,
) -> "Audit":
  """Audits a task's files as stored (`files_of`); see `audit_folder`."""
  return audit(
    files_of(task),
    task.name,
    task.kind,
    workers,
    seed,
    stream,
    getattr(task, "processing_is_class", False),
    grids,
  )


def matching_limit(result: "Audit") -> str | None:
  """What `match_compression` cannot hide in this dataset, or None: JPEG
  classes stored at different QFs keep their own first compression (only
  lossless images get one from the shared pool), and only the shared last
  save covers it."""
  stored = result.by_class[
    (result.by_class["split"] == "all") & (result.by_class["jpeg_share"] > 0)
  ]
  medians = dict(zip(stored["class_name"], stored["quality_median"]))
  if len(set(medians.values())) < 2:
    return None
  return (
    "NOTE: match_compression: the JPEG classes are stored at different QFs (median "
    + ", ".join(f"'{n}' {q:.0f}" for n, q in medians.items())
    + "); their first "
    "compression still differs, and only the shared last save covers it."
  )


def describe_qfs(qualities) -> str:
  """'QF 90 (60%), 95 (40%)': a QF pool by share."""
  counts = pd.Series(list(qualities)).value_counts(normalize=True).sort_index()
  return "QF " + ", ".join(f"{q} ({100 * share:.0f}%)" for q, share in counts.items())


def _pool(qualities):
  """A QF distribution as at most MAX_POOL values (its quantiles), for drawing."""
  values = np.sort(np.asarray(qualities, int))
  if len(values) > MAX_POOL:
    values = np.quantile(values, np.linspace(0, 1, MAX_POOL), method="nearest")
  return tuple(int(v) for v in values)


@dataclasses.dataclass(frozen=True)
class CompressionProfile:
  """The QFs the compression swap and `match_compression` draw from.

  `swap_qfs[k]`: for each class (in `class_names` order) that is less
  compressed than the most compressed class (a higher median QF, lossless
  counting as above 100), the stored QFs of the other classes' JPEG files;
  empty for the others, which stay as stored. `common_qf`: the median stored
  QF of all JPEG files (90 without any), every image's in the common-QF
  condition. `match_qfs`: the stored QFs of the training split's JPEG files
  (all files' where no split is known), pooled over classes. With more than
  two classes, or several JPEG classes, the swap pools the other classes' QFs
  as the issue of the audit asks, so a re-saved class may draw a QF of
  another re-saved class.
  """

  class_names: tuple
  swap_qfs: tuple
  common_qf: int
  match_qfs: tuple
  levels: tuple  # each class's median place on the compression scale


def compression_profile(table: pd.DataFrame, class_names) -> CompressionProfile:
  """The profile of an audited file table (`read_headers`)."""
  usable = table[table["problem"] == ""]
  jpeg = usable[usable["format"] == "jpeg"]
  levels = []
  for name in class_names:
    rows = usable[usable["class_name"] == name]
    levels.append(float(np.median(levels_of(rows))) if len(rows) else np.nan)
  most = np.nanmin(levels) if levels else np.nan
  swap = []
  for name, level in zip(class_names, levels):
    others = jpeg[jpeg["class_name"] != name]["quality"]
    swap.append(_pool(others) if level > most and len(others) else ())
  qualities = jpeg["quality"].astype(int)
  # The recipe learns from the training files only, where the split is known.
  training = jpeg[jpeg["split"] == "train"]["quality"].astype(int) if "split" in jpeg else ()
  return CompressionProfile(
    tuple(class_names),
    tuple(swap),
    int(np.median(qualities)) if len(qualities) else 90,
    _pool(training if len(training) else qualities),
    tuple(levels),
  )


def task_profile(task, stream=None) -> CompressionProfile:
  """`compression_profile` of a task's files as stored."""
  return compression_profile(read_headers(files_of(task), stream=stream), task.class_names)


PAGE = """{head}{verdict}
<p>Made by <code>{command}</code></p>
<p>Files: {n_files} ({n_unreadable} with unreadable headers), {n_classes} classes; file list
SHA-256 <code id="fingerprint">{fingerprint}</code>. Headers read in {seconds:.1f} s
({rate:.0f} files/s).</p>
{sections}
</body></html>
"""


def write(result: Audit, out_dir: str, command: str | None = None) -> str:
  """Writes out_dir/audit.html (self-contained), files.csv, by_class.csv,
  distribution.csv, attributes.csv and summary.json; returns the page's path."""
  os.makedirs(out_dir, exist_ok=True)
  result.files.to_csv(os.path.join(out_dir, "files.csv"), index=False)
  result.by_class.to_csv(os.path.join(out_dir, "by_class.csv"), index=False)
  result.distribution.to_csv(os.path.join(out_dir, "distribution.csv"), index=False)
  result.per_attribute.to_csv(os.path.join(out_dir, "attributes.csv"), index=False)
  if result.grids is not None and result.grid_files is not None:
    result.grids.to_csv(os.path.join(out_dir, "grids_by_class.csv"), index=False)
    result.grid_files.to_csv(os.path.join(out_dir, "grids.csv"), index=False)
  command = command or " ".join(shlex.quote(a) for a in sys.argv)
  fingerprint = result.fingerprint()
  summary = dict(
    name=result.name,
    kind=result.kind,
    command=command,
    fingerprint=fingerprint,
    leaks=result.leaks,
    verdict=result.verdict,
    **{
      k: None if isinstance(v, float) and not np.isfinite(v) else v
      for k, v in result.overall.items()
    },
  )
  with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1, default=str)
  keys = ["split", "class_name"]
  # The per-class table's columns up to coding: how the files were saved.
  compression = list(BY_CLASS_COLUMNS[: BY_CLASS_COLUMNS.index("progressive_share") + 1])
  rest = keys + [
    "width_median",
    "height_median",
    "megapixels_median",
    "bit_depths",
    "modes",
    "exif_share",
    "icc_share",
  ]
  sections = [
    (
      "Metadata-only classifier",
      f"A decision tree (scikit-learn, depth 6) sees only the processing attributes and "
      f"predicts the class; {result.overall['folds']}-fold cross-validation keeps each "
      "source image's files in one fold. Each attribute alone below, best first; intervals "
      "are 95%, by bootstrap over files.",
      pages.table(result.per_attribute),
    ),
    (
      "Format and compression, per split and class",
      "Shares and medians (split 'all' "
      "pools the splits). JPEG quality, subsampling and progressive coding are over JPEG "
      "files; quality_not_ijg_share counts tables that match no IJG quality (their nearest "
      "is used).",
      pages.table(result.by_class[compression], "{:.4g}"),
    ),
    (
      "Size, bit depth, colour mode and metadata, per split and class",
      "",
      pages.table(result.by_class[rest], "{:.4g}"),
    ),
    (
      "Content-dependent figures",
      "File size and bits per pixel depend on the picture as "
      "well as its processing: shown for reference, left out of the classifier and the "
      "verdict.",
      pages.table(
        result.by_class[keys + [c for c in result.by_class.columns if c.startswith("content_")]],
        "{:.6g}",
      ),
    ),
    *(
      [
        (
          "Where the JPEG grid breaks, per class",
          "Each image's local grid map (bin/grid): images without a main grid, with a "
          "region on another grid (a splice), with a region without the main grid (an "
          "insert never compressed, such as a generated region pasted into a photo). "
          "grids.csv has every file.",
          pages.table(result.grids, "{:.3f}"),
        )
      ]
      if result.grids is not None
      else []
    ),
    (
      "Every value",
      "distribution.csv holds every attribute's values per split and class; "
      "files.csv one row per file.",
      None,
    ),
  ]
  body = "\n".join(
    f"<h2>{html.escape(t)}</h2><p>{html.escape(text)}</p>{table or ''}"
    for t, text, table in sections
  )
  rate = len(result.files) / max(result.seconds, 1e-9)
  page = PAGE.format(
    head=pages.head(f"Shortcut audit of {result.name}"),
    verdict=pages.verdict(result.verdict),
    command=html.escape(command),
    n_files=len(result.files),
    n_unreadable=int((result.files["problem"] != "").sum()),
    n_classes=len(result.overall["classes"]),
    fingerprint=fingerprint,
    seconds=result.seconds,
    rate=rate,
    sections=body,
  )
  path = os.path.join(out_dir, "audit.html")
  with open(path, "w") as f:
    f.write(page)
  return path
