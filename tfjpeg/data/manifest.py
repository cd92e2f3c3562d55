"""A manifest: the list of a task's image files, probed, labelled and split.

One row per good file (path, label, class_name, image_id, source, split, format,
height, width); every bad file goes to `bad_files` with the problem, so it is
reported and counted, never dropped silently. Used by the folder task, the
built-in tasks and the TFDS builders alike.
"""

import concurrent.futures
import dataclasses
import logging
import os
import time

import pandas as pd

from tfjpeg.codec import images
from tfjpeg.core.errors import DataError
from tfjpeg.core.errors import MissingError
from tfjpeg.data import splits

COLUMNS = (
  "path",
  "label",
  "class_name",
  "image_id",
  "source",
  "split",
  "format",
  "height",
  "width",
)


@dataclasses.dataclass
class Manifest:
  class_names: list
  files: pd.DataFrame  # COLUMNS
  bad_files: pd.DataFrame  # path, class_name, problem

  def split(self, name):
    return self.files[self.files["split"] == name].reset_index(drop=True)

  def summary(self):
    """Counts per split and class, and the bad files: the run's data report."""
    lines = [
      f"{len(self.files)} images in {len(self.class_names)} classes; "
      f"{len(self.bad_files)} bad files left out"
    ]
    counts = self.files.groupby(["split", "class_name"]).size().unstack(fill_value=0)
    lines.append(counts.to_string())
    for row in self.bad_files.itertuples():
      lines.append(f"BAD {row.path}: {row.problem}")
    return "\n".join(lines)


def from_class_folders(
  root,
  min_size=None,
  fractions=splits.SplitFractions(),
  seed=0,
  class_names=None,
  workers=8,
  group=None,
  progress=logging.info,
  decode_check=True,
):
  """Scans `root/<class>/**` for images; one subfolder per class.

  Files of the same name (without extension) in different class folders count
  as versions of one source (a scene and its simulated cameras, a real image
  and the fake made from it) and always share a split. `group` maps a source
  to a coarser split group (tiles of one photo), if given. `decode_check`
  is `images.probe`'s.

  Raises:
    FileNotFoundError: `root` or a named class folder does not exist.
    ValueError: no class folders, or a class folder without a single image.
  """
  entries = class_folder_entries(root, class_names)
  class_names = list(dict.fromkeys(name for _, _, name, _ in entries))
  return from_entries(
    entries, class_names, min_size, fractions, seed, workers, group, progress, decode_check
  )


def class_folder_entries(root, class_names=None):
  """(path, label, class_name, source) of every image file of root/<class>/**,
  by extension, nothing read: the layout rules of `from_class_folders`.

  Raises:
    FileNotFoundError: `root` or a named class folder does not exist.
    ValueError: no class folders, or a class folder without a single image.
  """
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise MissingError(f"data directory {root} does not exist")
  if class_names is None:
    class_names = sorted(
      d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
  if not class_names:
    raise DataError(f"{root} holds no class subfolders (expected {root}/<class>/<images>)")
  entries = []
  for label, name in enumerate(class_names):
    folder = os.path.join(root, name)
    if not os.path.isdir(folder):
      raise MissingError(f"class folder {folder} does not exist")
    paths = images.list_images(folder)
    if not paths:
      raise DataError(
        f"class folder {folder} holds no images (looked for {', '.join(sorted(images.EXTENSIONS))})"
      )
    for path in paths:
      rel = os.path.relpath(path, folder)
      entries.append((path, label, name, os.path.splitext(rel)[0]))
  return entries


def from_entries(
  entries,
  class_names,
  min_size=None,
  fractions=splits.SplitFractions(),
  seed=0,
  workers=8,
  group=None,
  progress=logging.info,
  decode_check=True,
):
  """Probes (path, label, class_name, source) entries and splits them by source
  (or by `group(source)`, if given). Every file is decoded once, in parallel
  threads (TensorFlow's decoders release the GIL), unless `decode_check`
  (`images.probe`'s) leaves that to the caller; `progress` gets a line every
  few seconds with the time left, and a last line with the counts."""

  def check(entry):
    try:
      return entry, images.probe(entry[0], min_size, decode_check), None
    except images.BadImageError as e:
      return entry, None, e.problem

  good, bad = [], []
  started = last = time.monotonic()
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    for done, ((path, label, name, source), info, problem) in enumerate(
      pool.map(check, entries), 1
    ):
      now = time.monotonic()
      if now - last > 5 and done < len(entries):
        last, rate = now, done / (now - started)
        progress(
          f"probing images: {done}/{len(entries)} decoded, {len(bad)} bad, "
          f"about {(len(entries) - done) / rate:.0f} s left"
        )
      if problem is not None:
        bad.append(dict(path=path, class_name=name, problem=problem))
      else:
        good.append(
          dict(
            path=path,
            label=label,
            class_name=name,
            image_id=f"{name}/{source}",
            source=source,
            format=info.format,
            height=info.height,
            width=info.width,
          )
        )
  progress(
    f"probed {len(entries)} images in {time.monotonic() - started:.1f} s: "
    f"{len(good)} good, {len(bad)} bad"
  )
  files = pd.DataFrame(good, columns=[c for c in COLUMNS if c != "split"])
  empty = [n for n in class_names if n not in set(files["class_name"])]
  if empty:
    raise DataError(f"no usable image in class(es) {empty}: {len(bad)} bad files, e.g. {bad[:3]}")
  groups = files["source"].map(group) if group else files["source"]
  files["split"] = splits.assign(groups, files["label"], fractions, seed)
  return Manifest(
    list(class_names),
    files[list(COLUMNS)],
    pd.DataFrame(bad, columns=["path", "class_name", "problem"]),
  )
