"""A labelled folder put through the report's whole-image conditions, as files
anyone's detector can score.

    OUT/<condition>/<class>/<name>.<jpg|png|as stored>
    OUT/manifest.csv      path, condition, image_id, class_name, label, format,
                          bytes, sha256, qf: one row per file written
    OUT/chain_draws.csv   what each chain drew for each image
    OUT/degrade.json      the source, seed, chroma, classes and the plan
                          (`file_report.Plan`), which `bin/report --scores` reads
    OUT/bad_files.csv     path, class_name, problem: files that could not be read

A file is the image as stored where nothing was done to it (the original
bytes, never re-encoded), the final JPEG's bytes where a condition ends in a
save, lossless PNG otherwise. Its pixels are those the report gives a model
for the condition (`tfjpeg.pipeline.whole_images`), and the same seed writes
the same bytes. Each `<condition>` folder is itself a labelled folder.
"""

import collections
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from typing import IO

import pandas as pd
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.analysis import file_report
from tfjpeg.analysis import report
from tfjpeg.codec import images
from tfjpeg.core import progress
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import DataError
from tfjpeg.data import tasks
from tfjpeg.pipeline import whole_images
from tfjpeg.train import rundir

MANIFEST = file_report.MANIFEST
SETTINGS = file_report.SETTINGS
MANIFEST_COLUMNS = (
  "path",
  "condition",
  "image_id",
  "class_name",
  "label",
  "format",
  "bytes",
  "sha256",
  "qf",
)
_EXTENSIONS = {"jpeg": ".jpg", "png": ".png"}


def folder_name(condition: whole_images.FileCondition) -> str:
  """The folder a condition's files go to: its name, spelled for a file system."""
  return config_lib.file_name(condition.name)


def _images(task, label_of):
  """The task's images read from their files as the pipeline goes (a folder
  of any size, never held in memory), labelled by `label_of` (class name to
  label)."""
  relabel = tf.constant([label_of[n] for n in task.class_names], tf.int32)
  return task.images("test").map(lambda e: dict(e, label=tf.gather(relabel, e["label"])))


def degrade(
  images_dir: str,
  out_dir: str,
  seed: int = 0,
  chroma: str = "4:2:0",
  qualities: Sequence[int | None] = report.QUALITIES,
  resize_factors: Sequence[float] = report.RESIZE_FACTORS,
  resize_qualities: Sequence[int | None] = report.RESIZE_QUALITIES,
  chains: Sequence[str] = report.PROTOCOLS,
  class_names: Sequence[str] | None = None,
  only_chains: bool = False,
  command: str | None = None,
  stream: IO[str] | None = None,
  timings: dict | None = None,
) -> dict:
  """Writes every image of `images_dir` (DIR/<class>/...) under every
  condition of `file_report.plan` (or, with `only_chains`, under `chains`
  alone) to `out_dir` (module docstring). Returns a summary: files, bytes,
  conditions, images, and bad (files that could not be read, each with its
  problem in bad_files.csv). `timings` (a dict) receives "files_per_second", the
  rate once the first file is out (the graph built), "check_seconds", the
  work on every file before any is processed (the folder listed, each file
  probed by `tfjpeg.data.manifest` and its header read), and "seconds", all
  of it."""
  started = time.perf_counter()
  task = tasks.labelled_folder(images_dir, 1, 1, class_names)
  names = list(class_names or task.class_names)
  if not class_names and len(names) == 2:  # the class named like a fake second: "fake" as 1
    positive = report.positive_class(names)
    names = [n for n in names if n != positive] + [positive]
  files = task.files  # the good files, labelled by task.class_names
  if not len(files):
    raise ConfigError(f"no images in {images_dir}")
  ids = collections.Counter(files["image_id"])
  twice = sorted(i for i, n in ids.items() if n > 1)
  if twice:
    raise DataError(
      f"{images_dir}: {len(twice)} names hold two files each (one name, two extensions; "
      f"first: {twice[0]}): rename them, their degraded files would have one path"
    )
  label_of = {n: i for i, n in enumerate(names)}
  labels = files["class_name"].map(label_of).to_numpy()
  profile = report.stored_profile(files["path"], labels, files["image_id"], names, stream)
  checked = time.perf_counter()
  if only_chains:
    the_plan = file_report.plan(profile, (), (1.0,), (None,), chains)
    the_plan = dataclasses.replace(
      the_plan,
      conditions=tuple(c for c in the_plan.conditions if c.chain != "none"),
      resize_grid=the_plan.resize_grid.iloc[0:0],
    )
  else:
    the_plan = file_report.plan(profile, qualities, resize_factors, resize_qualities, chains)
  dataset = whole_images.dataset(
    _images(task, label_of),
    the_plan.conditions,
    seed,
    chroma,
    the_plan.swap_qfs,
    the_plan.common_qf,
    files=True,
    pixels=False,
    all_jpeg=bool((files["format"] == "jpeg").all()),
  )
  os.makedirs(out_dir, exist_ok=True)
  bad_path = os.path.join(out_dir, file_report.BAD_FILES)
  if len(task.bad_files):  # counted and named, never dropped silently
    rundir.write_atomically(bad_path, task.bad_files.to_csv(index=False))
  elif os.path.exists(bad_path):
    os.remove(bad_path)
  rows, draw_batches, first_out = [], [], None
  total = len(files) * len(the_plan.conditions)
  with progress.Progress(total, "degrading", "files", stream) as bar:
    for element in dataset.prefetch(tf.data.AUTOTUNE):
      condition = the_plan.conditions[int(element["condition"])]
      data = element["data"].numpy()
      image_id = element["image_id"].numpy().decode()
      kind = images.sniff_format(data[:16]) or "unknown"
      # An image id is its file's path without the extension ("real/frame.0001"),
      # one per file (checked above): one path per file and condition.
      relative = os.path.join(folder_name(condition), image_id + _EXTENSIONS.get(kind, f".{kind}"))
      path = os.path.join(out_dir, relative)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      rundir.write_atomically(path, data)
      label = int(element["label"])
      rows.append(
        dict(
          path=relative,
          condition=condition.name,
          image_id=image_id,
          class_name=names[label],
          label=label,
          format=kind,
          bytes=len(data),
          sha256=hashlib.sha256(data).hexdigest(),
          qf=int(element["qf"]),
        )
      )
      draw_batches.append(([condition.name], [image_id], element["draws"].numpy()[None]))
      bar.update()
      first_out = first_out or time.perf_counter()
  manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
  rundir.write_atomically(os.path.join(out_dir, MANIFEST), manifest.to_csv(index=False))
  rundir.write_atomically(
    os.path.join(out_dir, "chain_draws.csv"),
    file_report.chain_draws(the_plan, draw_batches).to_csv(index=False),
  )
  settings = dict(
    source=os.path.abspath(images_dir),
    seed=seed,
    chroma=chroma,
    class_names=names,
    command=command or report.command_line(),
    plan=the_plan.to_json(),
  )
  rundir.write_atomically(os.path.join(out_dir, SETTINGS), json.dumps(settings, indent=1))
  if timings is not None:
    finished = time.perf_counter()
    timings["seconds"] = finished - started
    timings["check_seconds"] = checked - started
    if len(rows) > 1:
      timings["files_per_second"] = (len(rows) - 1) / (finished - first_out)
  return dict(
    files=len(manifest),
    bytes=int(manifest["bytes"].sum()),
    conditions=len(the_plan.conditions),
    images=len(files),
    bad=len(task.bad_files),
  )
