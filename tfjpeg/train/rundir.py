"""A run directory's own files: its saved config, its description, its
completion marker, the images a run lost at run time (appended to
data_summary.txt), and its tables (results.csv, offsets_*.csv,
offsets_summary.csv), read and upserted here.

`config.json` is written before training starts. `run.json` describes the
trained model to anyone holding the directory alone: the task's name and kind,
its class names, the patch size, the net, the file of the weights to use and
the input they expect, so export and prediction need no dataset.
`finished.json` is written last, after results and per-offset sweeps, so a run
killed at any point before is never taken for a finished one.
"""

import contextlib
import errno
import json
import os
import shutil
import time

import numpy as np
import pandas as pd

from tfjpeg.core.errors import MissingError
from tfjpeg.core.errors import UserError

DESCRIPTION = "run.json"
SELECTED_WEIGHTS = os.path.join("checkpoints", "best.weights.h5")

FINISHED = "finished.json"


class UnusableError(UserError, RuntimeError):
  """A file a resumed run reads is damaged or belongs to another run; the
  message names it and what to do, in one line."""


class WriteError(RuntimeError):
  """A run could not write one of its files; the message names the file, the
  problem (a full disk, a read-only directory) and what to do, in one line."""


_PROBLEMS = {
  errno.ENOSPC: "no space left on the device",
  errno.EDQUOT: "disk quota exceeded",
  errno.EROFS: "the file system is read-only",
  errno.EACCES: "permission denied",
  errno.EPERM: "permission denied",
}
WRITE_ERRNOS = tuple(_PROBLEMS)
RESUME = "then run the same command again to resume from the last complete checkpoint"


def write_error(path, error):
  """The one-line `WriteError` for an OSError met writing `path`."""
  number = getattr(error, "errno", None)
  if number is None and "errno = 28" in str(error):  # h5py's text
    number = errno.ENOSPC
  problem = _PROBLEMS.get(number) or (
    error.strerror if getattr(error, "strerror", None) else str(error).splitlines()[0]
  )
  return WriteError(f"cannot write {path}: {problem}; fix that, {RESUME}")


@contextlib.contextmanager
def writing(path, tmp=None):
  """Turns an OSError while writing `path` (through `tmp`, removed then) into
  a `WriteError`."""
  try:
    yield
  except OSError as e:
    if tmp:
      with contextlib.suppress(OSError):
        os.remove(tmp)
    raise write_error(path, e) from e


def check_space(path, needed):
  """Raises `WriteError` unless `needed` bytes are free where `path` goes:
  h5py half-writes a file on a full disk and can then crash the interpreter."""
  free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
  if free < needed:
    raise WriteError(
      f"cannot write {path}: no space left on the device ({needed / 1e6:.1f} "
      f"MB needed, {free / 1e6:.1f} MB free); free space, {RESUME}"
    )


def write_atomically(path, text):
  """Writes a file (`text`: str, or bytes) whole or not at all: a temporary
  file in the same folder, then a rename; a crash at any moment leaves the
  old file or the new one."""
  tmp = f"{path}.tmp"
  with writing(path, tmp):
    with open(tmp, "wb" if isinstance(text, bytes) else "w") as f:
      f.write(text)
    os.replace(tmp, path)


def weights_bytes(model, optimizer=False):
  """The bytes of a model's weights (and its optimizer's state), a checkpoint's size."""
  variables = list(model.weights) + (list(model.optimizer.variables) if optimizer else [])

  def itemsize(v):
    try:
      return np.dtype(str(v.dtype)).itemsize
    except TypeError:
      return 4

  return sum(int(np.prod(v.shape)) * itemsize(v) for v in variables)


def save_atomically(model, path, weights_only=False):
  """`model.save_weights` (a `.weights.h5` path) or `model.save` (`.keras`),
  whole or not at all, after checking the disk has room for it."""
  needed = int(1.2 * weights_bytes(model, optimizer=not weights_only)) + 1_000_000
  check_space(path, needed)
  suffix = ".weights.h5" if weights_only else ".keras"
  tmp = os.path.join(os.path.dirname(path), f".partial-{os.getpid()}{suffix}")
  with writing(path, tmp):
    (model.save_weights if weights_only else model.save)(tmp)
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
  write_atomically(
    os.path.join(workdir, FINISHED),
    json.dumps(dict(finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **facts)),
  )


def is_finished(workdir):
  """A run whose every output, sweeps included, is written: its marker exists."""
  return os.path.exists(os.path.join(workdir, FINISHED))


def write_description(workdir, config, task):
  """run.json: what the trained model is, readable without the task's data."""
  write_atomically(
    os.path.join(workdir, DESCRIPTION),
    json.dumps(
      dict(
        task=task.name,
        task_kind=task.kind,
        class_names=list(task.class_names),
        num_classes=task.num_classes,
        patch_size=task.patch_size,
        patches_per_image=task.patches_per_image,
        net=config.net,
        antialias=config.antialias,
        antialias_filter=config.antialias_filter,
        weights=SELECTED_WEIGHTS,
        selected_by=config.schedule.select,
        input="RGB patches, uint8 values 0..255, [N, patch_size, patch_size, 3]",
        output="class probabilities [N, num_classes], in class_names order",
      ),
      indent=1,
    ),
  )


def description(workdir):
  """run.json of a run directory (see `write_description`)."""
  path = os.path.join(workdir, DESCRIPTION)
  if not os.path.exists(path):
    raise MissingError(
      f"{workdir} has no {DESCRIPTION}: not a run directory, or one trained before runs "
      "described themselves (train it again, or evaluate it on its task)"
    )
  with open(path) as f:
    return json.load(f)


# QF columns hold "none" or a number: read them as text, whatever the file holds.
TEXT_COLUMNS = {
  "train_qf": str,
  "train_chain": str,
  "test_qf": str,
  "test_first_qf": str,
  "test_resave": str,
  "test_chain": str,
}
RESULT_KEYS = ("test_crop", "test_grid", "test_qf", "test_first_qf", "test_resave", "test_chain")


def read_table(path, default_grid=8):
  """A results-like CSV (results.csv, a study table, offsets_summary.csv).

  QF columns come back as text; a file written before double compression
  existed gets its `test_first_qf` column ("none"), one written before test
  crops named their grid gets `test_grid` = `default_grid` (such crops
  followed the training `crop_grid`), and one written before re-saving test
  conditions gets `test_resave` = "none"; one written before processing
  chains gets `train_chain` and `test_chain` = "none".
  """
  table = pd.read_csv(path, keep_default_na=False, dtype=TEXT_COLUMNS)
  if "test_qf" in table.columns and "test_first_qf" not in table.columns:
    table.insert(table.columns.get_loc("test_qf") + 1, "test_first_qf", "none")
  if "test_crop" in table.columns and "test_grid" not in table.columns:
    table.insert(table.columns.get_loc("test_crop") + 1, "test_grid", default_grid)
  if "test_first_qf" in table.columns and "test_resave" not in table.columns:
    table.insert(table.columns.get_loc("test_first_qf") + 1, "test_resave", "none")
  if "test_resave" in table.columns and "test_chain" not in table.columns:
    table.insert(table.columns.get_loc("test_resave") + 1, "test_chain", "none")
  if "train_qf" in table.columns and "train_chain" not in table.columns:
    table.insert(table.columns.get_loc("train_qf") + 1, "train_chain", "none")
  return table


def upsert_rows(path, rows, keys):
  """Writes `rows` to the CSV at `path`, replacing the rows already there with
  the same values of `keys` and keeping the others; atomic. Returns the table."""
  if os.path.exists(path):
    old = read_table(path)
    key = lambda f: f[list(keys)].astype(str).agg("/".join, axis=1)
    rows = pd.concat([old[~key(old).isin(set(key(rows)))], rows], ignore_index=True)
  tmp = path + ".tmp"
  with writing(path, tmp):
    rows.to_csv(tmp, index=False)
    os.replace(tmp, path)
  return rows


def write_results(workdir, results, confusions, class_names):
  """Adds `results` to workdir/results.csv (replacing rows of the same test
  conditions) and writes each condition's confusion matrix as CSV; returns
  (the whole table, {condition: CSV stem})."""
  table = upsert_rows(os.path.join(workdir, "results.csv"), results, RESULT_KEYS)
  stems = {}
  for name, matrix in confusions.items():
    stems[name] = os.path.join(workdir, f"confusion_{name}")
    np.savetxt(stems[name] + ".csv", matrix, fmt="%d", delimiter=",", header=",".join(class_names))
  return table, stems


def output_dir(workdir, builtin_seed=None):
  """Where results on a run's own test split go (the run directory), or on a
  built-in task generated anew with `builtin_seed` (a subfolder, created)."""
  if builtin_seed is None:
    return workdir
  path = os.path.join(workdir, f"builtin_seed{builtin_seed}")
  os.makedirs(path, exist_ok=True)
  return path


def sweep_tag(qf=None, first_qf=None, period=8):
  """File tag of a per-offset sweep: qfnone, qf90, qf90_first50, qfnone_period16."""
  qf, first_qf = (None if str(q).lower() in ("none", "0", "") else int(q) for q in (qf, first_qf))
  return (
    f"qf{qf or 'none'}"
    + (f"_first{first_qf}" if first_qf else "")
    + ("" if int(period) == 8 else f"_period{period}")
  )


def sweep_path(workdir, qf=None, first_qf=None, period=8):
  """Where a sweep's phase table is kept (offsets_<tag>.csv)."""
  return os.path.join(workdir, f"offsets_{sweep_tag(qf, first_qf, period)}.csv")


def write_sweep(workdir, table, curve, summary_row, qf=None, first_qf=None, period=8):
  """A sweep's phase table (offsets_<tag>.csv), its displacement curve
  (displacement_<tag>.csv), and its row of offsets_summary.csv (other
  conditions and periods already swept stay). Returns the summary table."""
  name = sweep_tag(qf, first_qf, period)
  table.to_csv(sweep_path(workdir, qf, first_qf, period), index=False)
  curve.to_csv(os.path.join(workdir, f"displacement_{name}.csv"), index=False)
  return upsert_rows(
    os.path.join(workdir, "offsets_summary.csv"),
    pd.DataFrame([summary_row]),
    ("period", "test_qf", "test_first_qf"),
  )
