"""(o) bin/degrade of a published protocol against Pillow doing the same per
image on every core, writing the same files.

The protocol is Corvi et al. 2023's (`corvi2023`: a square crop of 160..2048
px, resized to 200x200, Lanczos when shrinking and bicubic when enlarging,
then a JPEG at QF 65..100). tfjpeg is `tfjpeg.analysis.degrade.degrade(...,
chains=("corvi2023",), only_chains=True)`, bin/degrade's library call; Pillow
is a pool of one process per core, each opening its image (decoded whole, as
Pillow does), cropping it at the window tfjpeg drew, resizing it and saving it
at the QF drawn, as the protocol's own code does (grip-unina/DMimageDetection).
Every file of both is decoded and compared: the pixels are the same.

Measured on each set: files per second once writing has started (tfjpeg after
its graph is built, Pillow after its pool has started); tfjpeg's rate with its
checks of every file included (before any work starts, bin/degrade reads each
file's header and checks it; each JPEG's scan data is checked by the strict
decode that gives its pixels, inside the writing: work per file, as the
writing is); and the whole command's seconds. The goal ratio is the checked
rate's to Pillow's, the median of `repeats` runs; goal 1.5.
"""

import os
import shutil
import time

import numpy as np

GOALS = {"degrade/pillow": 1.5}
PROTOCOL = "corvi2023"


def _pillow_file(job):
  """One image as Corvi et al.'s code makes it, from tfjpeg's draws."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  source, out, y, x, side, quality = job
  with Image.open(source) as image:
    image = image.convert("RGB").crop((x, y, x + side, y + side))
  kernel = Image.Resampling.LANCZOS if side > 200 else Image.Resampling.BICUBIC
  image = image.resize((200, 200), kernel)
  os.makedirs(os.path.dirname(out), exist_ok=True)
  image.save(out, quality=quality)
  return out


def pillow_rate(jobs, workers):
  """(files per second once the pool runs, seconds of all of it) of `jobs`."""
  import multiprocessing  # pylint: disable=g-import-not-at-top

  started = time.perf_counter()
  with multiprocessing.get_context("fork").Pool(workers) as pool:
    pool.map(_pillow_file, jobs[:workers])  # every worker started
    running = time.perf_counter()
    pool.map(_pillow_file, jobs, chunksize=1)
    finished = time.perf_counter()
  return len(jobs) / (finished - running), finished - started


def jobs_of(folder, ours, theirs):
  """Pillow's jobs from tfjpeg's draws in `ours` (bin/degrade's folder)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top

  draws = pd.read_csv(os.path.join(ours, "chain_draws.csv"), dtype={"image_id": str})
  sources = {}
  for root, _, names in os.walk(folder):
    for name in names:
      relative = os.path.relpath(os.path.join(root, name), folder)
      sources[os.path.splitext(relative)[0]] = os.path.join(root, name)
  return [
    (
      sources[row["image_id"]],
      os.path.join(theirs, row["image_id"] + ".jpg"),
      int(row["0_crop_y"]),
      int(row["0_crop_x"]),
      int(row["0_crop_height"]),
      int(row["2_jpeg_qf"]),
    )
    for row in draws.to_dict("records")
  ]


def same_pixels(ours, theirs, jobs):
  """Whether every file of Pillow's decodes to the pixels of tfjpeg's."""
  import cv2  # pylint: disable=g-import-not-at-top

  for _, out, *_ in jobs:
    image_id = os.path.relpath(out, theirs)
    mine = cv2.imread(os.path.join(ours, PROTOCOL, image_id), cv2.IMREAD_COLOR)
    if mine is None or not np.array_equal(mine, cv2.imread(out, cv2.IMREAD_COLOR)):
      return False
  return True


def labelled_copies(paths, staging, count):
  """At least `count` files in two class folders under `staging`: `paths`
  linked in turn, as often as it takes (a few camera originals make a
  folder long enough to time)."""
  made = []
  while len(made) < count:
    for path in paths:
      number = len(made)
      target = os.path.join(staging, f"class{number % 2}", f"{number:04d}.jpg")
      if not os.path.lexists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.path.realpath(path), target)
      made.append(target)
      if len(made) >= count:
        break
  return made


def measure(report, sets, workers, step, repeats=1):
  """(o) on each of `sets` ({name: labelled folder}), in `report`."""
  from tfjpeg.analysis import degrade  # pylint: disable=g-import-not-at-top

  for name, folder in sets.items():
    rates, seconds, equal = [], [], True
    for run in range(repeats):
      ours = os.path.join(os.path.dirname(folder), f"degraded_{run}")
      theirs = os.path.join(os.path.dirname(folder), f"pillow_{run}")
      for path in (ours, theirs):
        shutil.rmtree(path, ignore_errors=True)
      timings = {}
      with open(os.devnull, "w") as quiet:
        degrade.degrade(
          folder, ours, chains=(PROTOCOL,), only_chains=True, timings=timings, stream=quiet
        )
      jobs = jobs_of(folder, ours, theirs)
      pillow, pillow_seconds = pillow_rate(jobs, workers)
      equal = equal and same_pixels(ours, theirs, jobs)
      # The check of every file is work per file too: a folder ten times
      # larger takes ten times as long to check.
      checked = len(jobs) / (timings["check_seconds"] + len(jobs) / timings["files_per_second"])
      rates.append((timings["files_per_second"], checked, pillow))
      seconds.append((timings["seconds"], pillow_seconds))
      step()
    writing, checked, baseline = (float(np.median([r[k] for r in rates])) for k in range(3))
    report.add(f"(o) bin/degrade {PROTOCOL}, writing, {name}", writing, "files/s")
    report.add(f"(o) bin/degrade {PROTOCOL}, checks included, {name}", checked, "files/s")
    report.add(f"(o) Pillow, {workers} processes, {name}", baseline, "files/s")
    report.add(
      f"(o) writing alone, bin/degrade / Pillow, {name}",
      float(np.median([r[0] / r[2] for r in rates])),
      "rates ratio",
    )
    report.add(
      f"(o) whole command, bin/degrade / Pillow, {name}",
      float(np.median([s[0] for s in seconds])) / float(np.median([s[1] for s in seconds])),
      "seconds ratio",
    )
    report.add(f"(o) the same pixels, {name}", float(equal), "1 = yes")
    report.ratio(
      f"degrade/pillow on {name}",
      float(np.median([r[1] / r[2] for r in rates])),
      "degrade/pillow",
      GOALS,
    )
