"""Distribution as a cluster runs it: a tf.data service dispatcher and two
workers started as separate processes by bin/data_service, on loopback."""

import collections
import dataclasses
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfjpeg.models import nets
from tfjpeg.pipeline import input_pipeline as ip

import helpers as testing

REPO = pathlib.Path(__file__).resolve().parent.parent
PATCH = 64


def _start(*flag_values):
  """A bin/data_service process and the address it prints first."""
  process = subprocess.Popen(
    [sys.executable, str(REPO / "bin" / "data_service"), *flag_values],
    stdout=subprocess.PIPE,
    text=True,
    env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
  )
  role, address = process.stdout.readline().split()
  return process, address


@pytest.fixture
def cluster():
  processes = []
  try:
    dispatcher, target = _start("--role=dispatcher")
    processes.append(dispatcher)
    for _ in range(2):
      processes.append(_start("--role=worker", f"--dispatcher={target}")[0])
    yield target
  finally:
    for process in processes:
      process.kill()
      process.wait()


def test_training_from_a_dispatcher_and_two_worker_processes(cluster, tmp_path):
  task, _, _ = testing.folder_task(
    tmp_path / "data", (83, 101), PATCH, per_class=12, png_every=2, patches_per_image=3
  )
  config = ip.PipelineConfig.of(
    patch_size=PATCH,
    patches_per_image=3,
    batch_size=8,
    train_qfs=(50,),
    data_service=cluster,
    service_job="test-run",
  )
  patches = collections.Counter(
    image_id
    for batch in ip.train_dataset(task, config, 0)
    for image_id in batch["image_id"].numpy().tolist()
  )
  # The epoch is split between the workers: every image once, with all its patches.
  assert len(patches) == task.num_images["train"] and set(patches.values()) == {3}
  model = nets.build("hpf", PATCH, task.num_classes)
  model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
  # One step per batch the workers send (fit() warns at the end of a dataset of
  # unknown length, which a tf.data service's epoch is).
  losses = [
    model.train_on_batch(images, labels)
    for images, labels in ip.to_inputs(
      ip.train_dataset(task, dataclasses.replace(config, service_job="test-fit"), 1)
    )
  ]
  assert len(losses) > 0 and all(np.isfinite(losses))
