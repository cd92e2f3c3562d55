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

The work is three steps, the same on every runner: `prepare` (the folder
listed, each file's header read and checked, the plan), `ImageWriter` (one
image: decoded once, strictly, which is also the check of its scan data,
then every condition's file written), `finish` (the manifest, the draws and
the bad files, in the folder's order). `degrade` runs them on this machine's
cores, or on Apache Beam (`runner="beam"`):

    prepare (here)
      -> Beam: each image to a worker (an `ImageWriter` per worker process,
         its graph built once there): its files written under OUT, its
         manifest rows and draws (or its problem) out as a line of a sharded
         file under OUT/.beam
      -> here: the shards read back, `finish`, the shards removed

so every runner writes the local path's bytes for the same seed. On a
cluster, the images and OUT must be on a file system every worker reads and
writes (a shared one, or a bucket mounted as one).
"""

import collections
import concurrent.futures
import dataclasses
import glob
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable
from collections.abc import Sequence
from typing import IO
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.analysis import file_report
from tfjpeg.analysis import report
from tfjpeg.codec import images
from tfjpeg.core import beam
from tfjpeg.core import progress
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import DataError
from tfjpeg.data import manifest as manifest_lib
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
DRAWS = "chain_draws.csv"
_ALIGN = 64  # bytes: the alignment TensorFlow's CPU kernels take memory at
_EXTENSIONS = {"jpeg": ".jpg", "png": ".png"}


def folder_name(condition: whole_images.FileCondition) -> str:
  """The folder a condition's files go to: its name, spelled for a file system."""
  return config_lib.file_name(condition.name)


@dataclasses.dataclass(frozen=True)
class Job:
  """What `bin/degrade` does, worked out before any image is processed: the
  images (`files`: index, path, image_id, class_name, label, format, height,
  width, in the folder's order), those refused already (`bad_files`), the classes in
  label order and the plan. Plain data: a runner ships it to its workers."""

  images_dir: str
  out_dir: str
  seed: int
  chroma: str
  class_names: tuple[str, ...]
  plan: file_report.Plan
  files: pd.DataFrame
  bad_files: pd.DataFrame
  order: dict  # path: its place in the folder's listing (bad files are named in it)
  command: str


def prepare(
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
) -> Job:
  """The folder listed and every file checked from its header (a JPEG's
  scan data is checked by its strict decode, in `ImageWriter`: the check
  folded into the decode the work does anyway), the classes ordered, the
  swap's profile read and the plan made (`degrade`'s arguments)."""
  task = tasks.labelled_folder(images_dir, 1, 1, class_names, decode_check=images.DEFERRED)
  names = list(class_names or task.class_names)
  if not class_names and len(names) == 2:  # the class named like a fake second: "fake" as 1
    positive = report.positive_class(names)
    names = [n for n in names if n != positive] + [positive]
  files = task.files  # the files whose headers passed, labelled by task.class_names
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
  if only_chains:
    the_plan = file_report.plan(profile, (), (1.0,), (None,), chains)
    the_plan = dataclasses.replace(
      the_plan,
      conditions=tuple(c for c in the_plan.conditions if c.chain != "none"),
      resize_grid=the_plan.resize_grid.iloc[0:0],
    )
  else:
    the_plan = file_report.plan(profile, qualities, resize_factors, resize_qualities, chains)
  listing = manifest_lib.class_folder_entries(images_dir, task.class_names)
  return Job(
    images_dir=images_dir,
    out_dir=out_dir,
    seed=seed,
    chroma=chroma,
    class_names=tuple(names),
    plan=the_plan,
    files=pd.DataFrame(
      dict(
        index=np.arange(len(files)),
        path=files["path"].to_numpy(),
        image_id=files["image_id"].to_numpy(),
        class_name=files["class_name"].to_numpy(),
        label=labels,
        format=files["format"].to_numpy(),
        height=files["height"].to_numpy(),
        width=files["width"].to_numpy(),
      )
    ),
    bad_files=task.bad_files.reset_index(drop=True),
    order={entry[0]: k for k, entry in enumerate(listing)},
    command=command or report.command_line(),
  )


class ImageWriter:
  """Writes one image's files under every condition of a `Job`, and returns
  what the manifest says of them: `write(image) -> dict` with "index",
  "rows" (manifest rows), "draws" (condition, image_id, draws) and "bad"
  (None, or the file's problem). Nothing is written for a file that cannot
  be read: it is reported, with the problem `images.probe` would name. Its
  graph is built once, at the first image; one writer per process, called
  from any number of threads."""

  def __init__(self, job: Job):
    self.job = job
    self._function: Any = None
    self._local = threading.local()  # each thread's pixel buffer

  def _pixels(self, image: dict, data: bytes) -> tf.Tensor:
    """The image decoded (a JPEG strictly: `images.decode_strictly`) into this
    thread's buffer, reused from image to image and aligned as TensorFlow's
    kernels want it, so that the graph reads it where it lies (DLPack)
    instead of a copy: a camera photo is tens of megabytes."""
    if image["format"] != "jpeg":
      return images.decode(data)  # checked whole by the header pass
    size = int(image["height"]) * int(image["width"]) * 3
    buffer = getattr(self._local, "buffer", None)
    if buffer is None or buffer.size < size:
      raw = np.empty(size + _ALIGN, np.uint8)
      start = -raw.ctypes.data % _ALIGN
      buffer = self._local.buffer = raw[start : start + size]
    pixels = images.decode_strictly(image["path"], data, buffer[:size])
    if pixels.ctypes.data % _ALIGN or not pixels.flags.c_contiguous:
      return tf.constant(pixels)  # TensorFlow's own decode, where it gave the pixels
    return tf.experimental.dlpack.from_dlpack(pixels.__dlpack__())

  def function(self):
    """The per-image graph (`whole_images.image_function`), traced once."""
    if self._function is None:
      plan = self.job.plan
      per_image = whole_images.image_function(
        plan.conditions,
        self.job.seed,
        self.job.chroma,
        plan.swap_qfs,
        plan.common_qf,
        files=True,
        pixels=False,
      )
      spec = dict(
        encoded=tf.TensorSpec([], tf.string),
        label=tf.TensorSpec([], tf.int32),
        image_id=tf.TensorSpec([], tf.string),
        image=tf.TensorSpec([None, None, 3], tf.uint8),
      )
      self._function = tf.function(per_image).get_concrete_function(spec)
    return self._function

  def write(self, image: dict) -> dict:
    """`image` is a row of `job.files` (a dict)."""
    path, index = image["path"], int(image["index"])
    try:
      with open(path, "rb") as f:
        data = f.read()
      outputs = self.function()(
        dict(
          # The bytes stay here: a file written as stored is written from them.
          encoded=tf.constant(b""),
          label=tf.constant(int(image["label"]), tf.int32),
          image_id=tf.constant(image["image_id"]),
          image=self._pixels(image, data),  # the scan data's check, and the pixels
        )
      )
    except images.BadImageError as e:
      return self._bad(index, image, e.problem)
    except OSError as e:
      return self._bad(index, image, f"cannot be read ({e.strerror or e})")
    except tf.errors.OpError as e:
      return self._bad(index, image, f"cannot be processed ({e.message.splitlines()[0]})")
    rows, draws = [], []
    for element in outputs:
      condition = self.job.plan.conditions[int(element["condition"])]
      content = data if bool(element["as_stored"]) else element["data"].numpy()
      kind = images.sniff_format(content[:16]) or "unknown"
      # An image id is its file's path without the extension ("real/frame.0001"),
      # one per file (checked by `prepare`): one path per file and condition.
      relative = os.path.join(
        folder_name(condition), image["image_id"] + _EXTENSIONS.get(kind, f".{kind}")
      )
      target = os.path.join(self.job.out_dir, relative)
      os.makedirs(os.path.dirname(target), exist_ok=True)
      rundir.write_atomically(target, content)
      qf = int(element["qf"])
      rows.append(
        dict(
          path=relative,
          condition=condition.name,
          image_id=image["image_id"],
          class_name=self.job.class_names[int(image["label"])],
          label=int(image["label"]),
          format=kind,
          bytes=len(content),
          sha256=hashlib.sha256(content).hexdigest(),
          qf=qf if qf else None,
        )
      )
      draws.append((condition.name, image["image_id"], element["draws"].numpy().tolist()))
    return dict(index=index, rows=rows, draws=draws, bad=None)

  @staticmethod
  def _bad(index, image, problem):
    bad = dict(path=image["path"], class_name=image["class_name"], problem=problem)
    return dict(index=index, rows=[], draws=[], bad=bad)


def finish(job: Job, results: Iterable[dict]) -> dict:
  """Writes manifest.csv, chain_draws.csv, degrade.json and bad_files.csv
  from every image's result (`ImageWriter.write`), in any order: each file
  lists the images in the folder's order, so every runner writes the same
  bytes. Returns the summary `degrade` returns."""
  results = sorted(results, key=lambda r: r["index"])
  rows = [row for r in results for row in r["rows"]]
  manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
  manifest["qf"] = manifest["qf"].astype("Int64")  # empty where no save was drawn
  rundir.write_atomically(os.path.join(job.out_dir, MANIFEST), manifest.to_csv(index=False))
  batches = [([c], [i], np.asarray([d], np.float64)) for r in results for c, i, d in r["draws"]]
  rundir.write_atomically(
    os.path.join(job.out_dir, DRAWS),
    file_report.chain_draws(job.plan, batches).to_csv(index=False),
  )
  settings = dict(
    source=os.path.abspath(job.images_dir),
    seed=job.seed,
    chroma=job.chroma,
    class_names=list(job.class_names),
    command=job.command,
    plan=job.plan.to_json(),
  )
  rundir.write_atomically(os.path.join(job.out_dir, SETTINGS), json.dumps(settings, indent=1))
  found = pd.DataFrame(
    [r["bad"] for r in results if r["bad"]], columns=["path", "class_name", "problem"]
  )
  bad = pd.concat([job.bad_files, found], ignore_index=True)
  bad = bad.iloc[np.argsort([job.order.get(p, len(job.order)) for p in bad["path"]], kind="stable")]
  bad_path = os.path.join(job.out_dir, file_report.BAD_FILES)
  if len(bad):  # counted and named, never dropped silently
    rundir.write_atomically(bad_path, bad.to_csv(index=False))
  elif os.path.exists(bad_path):
    os.remove(bad_path)
  return dict(
    files=len(manifest),
    bytes=int(manifest["bytes"].sum()),
    conditions=len(job.plan.conditions),
    images=int(len(job.files) - len(found)),
    bad=len(bad),
  )


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
  workers: int | None = None,
  runner: str = "local",
  beam_options: str | Sequence[str] | None = None,
) -> dict:
  """Writes every image of `images_dir` (DIR/<class>/...) under every
  condition of `file_report.plan` (or, with `only_chains`, under `chains`
  alone) to `out_dir` (module docstring), on this machine's cores (`workers`
  threads; default one per core, plus one), or with `runner="beam"` on
  Apache Beam (module docstring; `beam_options` as
  `tfjpeg.core.beam.options` takes them): the same bytes. Returns a summary: files, bytes,
  conditions, images (written), and bad (files that could not be read, each
  with its problem in bad_files.csv). `timings` (a dict) receives
  "files_per_second", the rate once the first file is out (the graph built),
  "check_seconds", the work on every file before any is processed (the
  folder listed, each file's header read and checked), and "seconds", all
  of it; each JPEG's scan data is checked by the strict decode that gives
  its pixels, counted in the rate."""
  beam.check_runner(runner)  # before any work: Beam is an optional extra
  started = time.perf_counter()
  job = prepare(
    images_dir,
    out_dir,
    seed,
    chroma,
    qualities,
    resize_factors,
    resize_qualities,
    chains,
    class_names,
    only_chains,
    command,
    stream,
  )
  checked = time.perf_counter()
  os.makedirs(out_dir, exist_ok=True)
  if runner == "beam":
    return _on_beam(job, beam_options, stream)
  writer = ImageWriter(job)
  writer.function()  # traced once, before the threads start
  results, first_out = [], None
  total = len(job.files) * len(job.plan.conditions)
  workers = workers or (os.cpu_count() or 1) + 1
  with (
    progress.Progress(total, "degrading", "files", stream) as bar,
    concurrent.futures.ThreadPoolExecutor(workers) as pool,
  ):
    for result in pool.map(writer.write, job.files.to_dict("records")):
      results.append(result)
      bar.update(len(result["rows"]) or len(job.plan.conditions))
      if result["rows"]:
        first_out = first_out or time.perf_counter()
  written = sum(len(r["rows"]) for r in results)
  summary = finish(job, results)
  if timings is not None:
    finished = time.perf_counter()
    timings["seconds"] = finished - started
    timings["check_seconds"] = checked - started
    if written > len(job.plan.conditions) and first_out is not None:
      # From the first image out: its files were counted once it was out.
      timings["files_per_second"] = (written - len(job.plan.conditions)) / (finished - first_out)
  return summary


def _on_beam(job: Job, beam_options: str | Sequence[str] | None, stream: IO[str] | None) -> dict:
  """`job` written on Beam (`tfjpeg.core.beam.options`), then `finish`."""
  options = beam.options(beam_options)
  import apache_beam as beam_lib  # pylint: disable=g-import-not-at-top

  class WriteImage(beam_lib.DoFn):
    """Each image with one `ImageWriter` per worker; its result as JSON."""

    def setup(self):
      self.writer = ImageWriter(job)

    def process(self, image):
      yield json.dumps(self.writer.write(image))

  shards = os.path.join(job.out_dir, ".beam")
  shutil.rmtree(shards, ignore_errors=True)
  os.makedirs(shards)
  records = job.files.to_dict("records")
  with beam_lib.Pipeline(options=options) as pipeline:
    _ = (
      pipeline
      | "images" >> beam_lib.Create(records, reshuffle=True)
      | "write" >> beam_lib.ParDo(WriteImage())
      | "results" >> beam_lib.io.WriteToText(os.path.join(shards, "results"), ".jsonl")
    )
  results = []
  for path in sorted(glob.glob(os.path.join(shards, "results*.jsonl"))):
    with open(path) as f:
      results += [json.loads(line) for line in f if line.strip()]
  shutil.rmtree(shards, ignore_errors=True)
  written = {r["index"] for r in results}
  missing = [r["path"] for r in records if r["index"] not in written]
  if missing:  # every image is either written or named as bad: never dropped
    raise RuntimeError(f"Beam returned no result for {len(missing)} images, first {missing[0]}")
  if stream is not None:
    stream.write(f"degraded {len(results)} images on Beam\n")
  return finish(job, results)
