"""The lattice image, computed once: every whole image compressed at the
lattice QF (100 in experiment 1) is the same each epoch and each run, so it is
kept as its exact JPEG bytes and read instead of recomputed.

`cached_task(task, lattice_qf, chroma)` writes, on first use and in parallel,
`CACHE/lattice/qf<Q>_<chroma>/<key>.jpg` for every image of the task: the
bytes of `jpeg.encode(decode(file), Q)`, whose exact decode is the lattice
image pixel for pixel. The key hashes the source's path, size and
modification time, so a source that changes gets a new entry. The returned
task reads those files and says so (`Task.lattice_qf`); its pipeline then
skips the lattice step (`Config.pipeline`), and decodes windows or the whole
lattice JPEG by cost like any JPEG. Tasks without files (prepared TFDS
datasets) are returned unchanged, recomputing as before.
"""

import dataclasses
import hashlib
import os
import pathlib

import tensorflow as tf

from tfjpeg.codec import images
from tfjpeg.codec import jpeg
from tfjpeg.core import progress
from tfjpeg.data import cache


def cache_dir(lattice_qf, chroma="4:2:0", root=None):
  """Where the lattice JPEGs of one QF and chroma subsampling live."""
  root = pathlib.Path(root) if root else cache.cache_root() / "lattice"
  return root / f"qf{int(lattice_qf)}_{chroma.replace(':', '')}"


def entry_name(path):
  """The cache file name of a source: its path, size and modification time."""
  info = os.stat(path)
  key = f"{os.path.abspath(path)}|{info.st_size}|{info.st_mtime_ns}"
  return hashlib.sha1(key.encode()).hexdigest() + ".jpg"


def _lattice_bytes(lattice_qf, chroma):
  def make(path):
    return jpeg.encode(images.decode(tf.io.read_file(path)), lattice_qf, chroma)

  return make


def build(paths, lattice_qf, chroma="4:2:0", root=None, stream=None):
  """Writes the missing lattice JPEGs of `paths`; returns {path: cache file}.
  A source that no longer decodes stops the build, named."""
  folder = cache_dir(lattice_qf, chroma, root)
  folder.mkdir(parents=True, exist_ok=True)
  targets = {path: folder / entry_name(path) for path in paths}
  missing = [p for p, target in targets.items() if not target.exists()]
  if missing:
    dataset = tf.data.Dataset.from_tensor_slices(missing).map(
      _lattice_bytes(lattice_qf, chroma), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    with progress.Progress(
      len(missing), f"lattice images at QF {lattice_qf} into {folder}", "images", stream
    ) as bar:
      iterator = iter(dataset)
      for path in missing:
        try:
          data = next(iterator).numpy()
        except tf.errors.OpError as e:
          raise images.BadImageError(
            path, f"cannot be decoded for the lattice ({e.message.splitlines()[0]})"
          ) from e
        # Each process its own temporary name: two runs filling the cache at once
        # each rename a whole file into place, never write into one.
        tmp = targets[path].with_name(f".{targets[path].name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, targets[path])  # a killed build leaves no partial entry
        bar.update()
  return {path: str(target) for path, target in targets.items()}


def cached_task(task, lattice_qf, chroma="4:2:0", root=None, log=print):
  """`task` reading its images' lattice JPEGs (built on first use); unchanged
  without a lattice QF or without files."""
  if not lattice_qf or task.files is None:
    return task
  cached = build(task.files["path"].tolist(), lattice_qf, chroma, root)
  log(f"lattice images (QF {lattice_qf}, {chroma}) read from {cache_dir(lattice_qf, chroma, root)}")
  return dataclasses.replace(task, images=task.read_from(cached), lattice_qf=lattice_qf)
