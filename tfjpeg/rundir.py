"""A run directory's own files: its saved config, its completion marker, and
the images a run lost at run time (appended to data_summary.txt).

`config.json` is written before training starts; `finished.json` is written
last, after results and per-offset sweeps, so a run killed at any point before
is never taken for a finished one.
"""

import dataclasses
import json
import os
import time

from tfjpeg import config as config_lib

FINISHED = "finished.json"


def write_atomically(path, text):
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def report_lost_images(workdir, task, split, seen, log=print):
  """Names the images of `split` that a pipeline with `seen` skipped (failed to
  decode at run time): logged, and appended to the run's data_summary.txt.
  Returns how many."""
  lost = task.lost_images(split, seen.ids)
  lines = [f"LOST AT RUN TIME ({split}) {row.path}: {row.problem}" for row in lost.itertuples()]
  path = os.path.join(workdir, "data_summary.txt")
  known = set(open(path).read().splitlines()) if os.path.exists(path) else set()
  new = [line for line in lines if line not in known]  # each file named once
  if new:
    with open(path, "a") as f:
      f.write("\n".join(new) + "\n")
    for line in new:
      log(line)
  return len(lines)


def mark_finished(workdir, **facts):
  write_atomically(os.path.join(workdir, FINISHED), json.dumps(
      dict(finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **facts)))


def is_finished(workdir):
  """A run whose every output, sweeps included, is written: its marker exists."""
  return os.path.exists(os.path.join(workdir, FINISHED))


def saved_config(workdir):
  """The config a run directory was trained with (config.json)."""
  with open(os.path.join(workdir, "config.json")) as f:
    return config_lib.Config.from_json(f.read())


def config_differences(saved, config):
  """Names of the fields in which two configs differ, sorted."""
  return sorted(k for k in dataclasses.asdict(config) if getattr(saved, k) != getattr(config, k))
