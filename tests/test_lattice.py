"""tfjpeg.data.lattice: whole images at the lattice QF computed once, read back
pixel-equal to recomputing them, and rebuilt when a source changes."""

import dataclasses
import os
import time

import numpy as np
import pytest

from tfjpeg import config as config_lib
from tfjpeg.codec import images
from tfjpeg.data import lattice
from tfjpeg.pipeline import input_pipeline as ip

import helpers as testing

PATCH = 32


def _batches(dataset):
  return [{k: v.numpy() for k, v in b.items()} for b in dataset]


def test_cached_lattice_images_equal_recomputed_ones(tmp_path):
  task, paths, _ = testing.folder_task(
    tmp_path / "data", (83, 101), PATCH, per_class=5, png_every=2, patches_per_image=2
  )
  config = config_lib.make(
    task="folder", lattice_qf=100, train_crop="random", train_qfs=(70,), batch_size=4
  )
  cached = lattice.cached_task(task, 100, root=tmp_path / "cache", log=lambda line: None)
  assert cached.lattice_qf == 100 and ip.PipelineConfig.for_run(config, cached).lattice_qf is None
  assert ip.PipelineConfig.for_run(config, task).lattice_qf == 100
  files = sorted(os.listdir(lattice.cache_dir(100, root=tmp_path / "cache")))
  assert len(files) == len(paths) and all(f.endswith(".jpg") for f in files)
  for train_crop in ("random", "aligned"):
    run = config_lib.replace(config, train_crop=train_crop)
    recomputed = _batches(ip.train_dataset(task, ip.PipelineConfig.for_run(run, task), 0))
    read_back = _batches(ip.train_dataset(cached, ip.PipelineConfig.for_run(run, cached), 0))
    assert len(recomputed) == len(read_back)
    for a, b in zip(recomputed, read_back):
      for key in ("image", "offset", "image_id", "qf"):
        np.testing.assert_array_equal(a[key], b[key])
  conditions = [ip.Condition("aligned"), ip.Condition("random", 50)]
  for a, b in zip(
    _batches(ip.eval_dataset(task, "test", conditions, ip.PipelineConfig.for_run(config, task))),
    _batches(
      ip.eval_dataset(cached, "test", conditions, ip.PipelineConfig.for_run(config, cached))
    ),
  ):
    np.testing.assert_array_equal(a["image"], b["image"])


def test_the_cache_is_built_once_and_follows_changed_sources(tmp_path):
  task, paths, _ = testing.folder_task(
    tmp_path / "data", (83, 101), PATCH, per_class=3, patches_per_image=1
  )
  root = tmp_path / "cache"
  first = lattice.build(sorted(paths.values()), 100, root=root)
  stamps = {p: os.stat(f).st_mtime_ns for p, f in first.items()}
  time.sleep(0.01)
  again = lattice.build(sorted(paths.values()), 100, root=root)
  assert again == first and all(os.stat(f).st_mtime_ns == stamps[p] for p, f in again.items())
  changed = sorted(paths.values())[0]
  testing.write_image(changed, testing.synthetic_image(83, 101, seed=99), quality=80)
  rebuilt = lattice.build(sorted(paths.values()), 100, root=root)
  assert rebuilt[changed] != first[changed] and os.path.exists(rebuilt[changed])
  assert {p: f for p, f in rebuilt.items() if p != changed} == {
    p: f for p, f in first.items() if p != changed
  }
  # Without files (a prepared TFDS dataset), or without a lattice QF: unchanged.
  no_files = dataclasses.replace(task, files=None)
  assert lattice.cached_task(no_files, 100, root=root) is no_files
  assert lattice.cached_task(task, None, root=root) is task


def test_a_source_that_no_longer_decodes_is_named(tmp_path):
  bad = tmp_path / "a" / "broken.jpg"
  bad.parent.mkdir()
  bad.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG any more")
  with pytest.raises(images.BadImageError, match="broken.jpg"):
    lattice.build([str(bad)], 100, root=tmp_path / "cache")
  assert not list((tmp_path / "cache").rglob("*.jpg"))  # nothing half-written
