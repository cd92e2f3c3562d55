"""The robustness report of a detector that takes whole images, from its model
or from anyone's scores.

A detector tested as its authors test it takes each file whole (resized or
centre-cropped to its input: `tfjpeg.serving.classifier.Preprocessing`), so
its conditions act on whole images (`tfjpeg.pipeline.whole_images`): as
stored, saved at each test QF, the compression swap and the common QF, the
resize x QF grid, and the published protocols. The same conditions are what
`bin/degrade` writes as files (`tfjpeg.analysis.degrade`), so a detector in
any framework can score those files, and `from_scores` builds from its scores
the page `from_model` builds from a model: per-condition balanced accuracy
and, for two classes, ROC AUC with 95% intervals (bootstrap over images),
per-class recall, the swap, the QF and resize grids, the stability of each
verdict, and the verdict lines.
"""

import dataclasses
import html
import json
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfjpeg.analysis import evaluation
from tfjpeg.analysis import file_page
from tfjpeg.analysis import report
from tfjpeg.codec import chain_syntax
from tfjpeg.codec import images
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import DataError
from tfjpeg.core.errors import MissingError
from tfjpeg.data import audit
from tfjpeg.pipeline import whole_images

# What the page calls the input of a detector known only by its scores.
SCORED = "scored"
MANIFEST = "manifest.csv"  # bin/degrade's list of the files it wrote
SETTINGS = "degrade.json"  # and what it did
BAD_FILES = "bad_files.csv"  # and the files it could not read
STORED = file_page.STORED


@dataclasses.dataclass(frozen=True)
class Plan:
  """The conditions of a whole-image report, and what the page needs to know
  of them: the resize grid's (factor, QF) of each of its chains, the
  protocols, and the profile the swap drew from."""

  conditions: tuple[whole_images.FileCondition, ...]
  resize_grid: pd.DataFrame  # resize_factor, resize_qf, test_chain
  protocols: tuple[str, ...]
  swap_qfs: tuple
  common_qf: int | None
  levels: tuple = ()  # each class's median place on the compression scale

  @property
  def profile(self) -> audit.CompressionProfile:
    return audit.CompressionProfile(
      class_names=(),
      swap_qfs=self.swap_qfs,
      common_qf=self.common_qf,
      match_qfs=(),
      levels=self.levels or (0.0,) * len(self.swap_qfs),
    )

  def to_json(self) -> dict:
    return dict(
      conditions=[dataclasses.asdict(c) for c in self.conditions],
      resize_grid=self.resize_grid.to_dict("records"),
      protocols=list(self.protocols),
      swap_qfs=[list(p) for p in self.swap_qfs],
      common_qf=self.common_qf,
      levels=[float(v) for v in self.levels],
    )

  @classmethod
  def from_json(cls, data: dict) -> "Plan":
    return cls(
      tuple(whole_images.FileCondition(**c) for c in data["conditions"]),
      pd.DataFrame(data["resize_grid"], columns=["resize_factor", "resize_qf", "test_chain"]),
      tuple(data["protocols"]),
      tuple(tuple(p) for p in data["swap_qfs"]),
      data["common_qf"],
      tuple(data.get("levels", ())),
    )


def plan(
  profile: audit.CompressionProfile,
  qualities: Sequence[int | None] = report.QUALITIES,
  resize_factors: Sequence[float] = report.RESIZE_FACTORS,
  resize_qualities: Sequence[int | None] = report.RESIZE_QUALITIES,
  protocols: Sequence[str] = report.PROTOCOLS,
) -> Plan:
  """Every condition of the report, for files: as stored, each test QF, the
  swap (when a class is less compressed) and the common QF, the resize x QF
  grid's chains, the protocols."""
  grid_table, _ = report.resize_grid(resize_factors, resize_qualities, 1, 1)
  protocols = tuple(chain_syntax.parse(p).text for p in protocols)
  conditions = [whole_images.FileCondition()]
  conditions += [whole_images.FileCondition(qf=int(q)) for q in qualities if q]
  if any(profile.swap_qfs):
    conditions.append(whole_images.FileCondition(resave="swap"))
  conditions.append(whole_images.FileCondition(resave="common"))
  chains = [t for t in grid_table["test_chain"] if t != "none"] + list(protocols)
  conditions += [whole_images.FileCondition(chain=t) for t in dict.fromkeys(chains)]
  return Plan(
    tuple(conditions),
    grid_table,
    protocols,
    tuple(tuple(p) for p in profile.swap_qfs),
    profile.common_qf,
    tuple(float(v) for v in profile.levels),
  )


probability_columns = file_page.probability_columns


def from_model(classifier, task, the_plan: Plan, seed: int, chroma: str, seen=None, all_jpeg=False):
  """(predictions, draws) of `classifier` on every image of `task`'s test
  split under every condition of `the_plan`: one row per condition and image
  (condition, image_id, label, prob_<class>...), and what each chain drew."""
  pre = classifier.preprocessing
  dataset = whole_images.dataset(
    task.images("test"),
    the_plan.conditions,
    seed,
    chroma,
    the_plan.swap_qfs,
    the_plan.common_qf,
    model_input=(pre.input, classifier.patch_size, pre.kernel),
    seen=seen,
    all_jpeg=all_jpeg,
  ).batch(32)
  names = [c.name for c in the_plan.conditions]
  rows, draws = [], []
  for batch in dataset.prefetch(tf.data.AUTOTUNE):
    probabilities = np.asarray(classifier.forward(batch["image"]))
    conditions = [names[k] for k in batch["condition"].numpy()]
    ids = [i.decode() for i in batch["image_id"].numpy()]
    frame = pd.DataFrame(probabilities, columns=probability_columns(classifier.class_names))
    frame.insert(0, "label", batch["label"].numpy())
    frame.insert(0, "image_id", ids)
    frame.insert(0, "condition", conditions)
    rows.append(frame)
    draws.append((conditions, ids, batch["draws"].numpy()))
  if not rows:
    raise ConfigError(f"no test image of the {task.name} task could be read")
  return pd.concat(rows, ignore_index=True), chain_draws(the_plan, draws)


def chain_draws(the_plan: Plan, batches) -> pd.DataFrame:
  """What each chain condition drew for each image, one table (as
  `evaluation.chain_draws`): test_chain, image_id, then the chain's columns."""
  by_name = {c.name: c for c in the_plan.conditions}
  tables = []
  for conditions, ids, values in batches:
    for name, image_id, row in zip(conditions, ids, values):
      condition = by_name[name]
      if condition.chain == "none":
        continue
      columns = chain_syntax.draw_columns(chain_syntax.parse(condition.chain))
      tables.append(dict(test_chain=condition.chain, image_id=image_id, **dict(zip(columns, row))))
  return pd.DataFrame(tables)


def read_plan(folder: str) -> Plan:
  """The plan `bin/degrade` wrote into `folder` (its degrade.json)."""
  with open(os.path.join(folder, SETTINGS)) as f:
    return Plan.from_json(json.load(f)["plan"])


def make(
  model_path: str,
  out_dir: str,
  images_dir: str | None = None,
  task: str | None = None,
  data_dir: str | None = None,
  class_names: Sequence[str] | None = None,
  patch_size: int | None = None,
  preprocessing=None,
  seed: int | None = None,
  qualities: Sequence[int | None] = report.QUALITIES,
  resize_factors: Sequence[float] = report.RESIZE_FACTORS,
  resize_qualities: Sequence[int | None] = report.RESIZE_QUALITIES,
  test_chains: Sequence[str] = report.PROTOCOLS,
  command: str | None = None,
  stream=None,
) -> dict:
  """The report of a model that takes whole images (`preprocessing.input`
  "resize" or "centre_crop"), on a labelled folder or a task's test split:
  every condition of `plan`, then `write`. Returns the summary."""
  classifier, memory_task, columns, config, profile = report.load_images(
    model_path,
    images_dir,
    task,
    data_dir,
    class_names,
    patch_size,
    None,
    seed,
    stream,
    preprocessing,
  )
  if not classifier.preprocessing.whole_image:
    raise ConfigError(
      "file_report.make is for models that take whole images (input resize or centre_crop)"
    )
  the_plan = plan(profile, qualities, resize_factors, resize_qualities, test_chains)
  predictions, draws = from_model(
    classifier,
    memory_task,
    the_plan,
    config.schedule.seed,
    config.jpeg.chroma,
    all_jpeg=all(images.sniff_format(e[:16]) == "jpeg" for e in columns["encoded"]),
  )
  source = (
    f"folder {images_dir}" if images_dir else f"the test split of the {memory_task.name} task"
  )
  about = (
    f"Model: <code>{html.escape(os.path.abspath(model_path))}</code> ({classifier.form}; "
    f"{classifier.num_classes} classes: {html.escape(', '.join(classifier.class_names))}), "
    f'SHA-256 <code id="fingerprint">{classifier.fingerprint()}</code>.<br>Input: '
    f"{html.escape(classifier.preprocessing.describe(classifier.patch_size))}."
  )
  return file_page.write(
    out_dir,
    predictions,
    draws,
    the_plan,
    classifier.class_names,
    classifier.preprocessing.input,
    about,
    source,
    config.schedule.seed,
    command or report.command_line(),
    f"JPEG robustness of {os.path.basename(os.path.normpath(model_path))}",
    dict(
      model=os.path.abspath(model_path),
      fingerprint=classifier.fingerprint(),
      preprocessing=classifier.preprocessing.as_dict(),
    ),
  )


def _parts(path: str) -> tuple:
  """A path's components, whichever separator wrote it."""
  return tuple(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))


def read_scores(scores_path: str, folder: str, class_names: Sequence[str]) -> pd.DataFrame:
  """`bin/degrade`'s manifest in `folder` joined with a scores CSV: one row
  per file, `path` (as written from the working directory, or relative to
  `folder`, or any path ending in `<condition>/<class>/<file>` as the folder
  holds it: scores made elsewhere) and either `score` (the second class's probability, "fake") or a
  probability per class (`prob_<class>` as `bin/predict` writes, or columns
  named like the classes). Any malformed row is refused in one line that
  names it. Returns predictions (condition, image_id, label, prob_<class>...)."""
  if not os.path.isfile(scores_path):
    raise MissingError(f"no scores file at {scores_path}")
  try:
    scores = pd.read_csv(scores_path, dtype=str, keep_default_na=False)
  except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise DataError(f"{scores_path}: not a CSV file ({first})") from None
  columns = probability_columns(class_names)
  named = list(class_names)
  if "path" not in scores.columns:
    raise DataError(f"{scores_path}: no 'path' column (columns: {', '.join(scores.columns)})")
  if all(c in scores.columns for c in columns):
    given = columns
  elif all(c in scores.columns for c in named):
    given = named
  elif "score" in scores.columns and len(class_names) == 2:
    given = ["score"]
  else:
    wanted = "'score' or " if len(class_names) == 2 else ""
    raise DataError(
      f"{scores_path}: no scores: give {wanted}a column per class "
      f"({', '.join(columns)} or {', '.join(named)})"
    )
  manifest_path = os.path.join(folder, MANIFEST)
  if not os.path.isfile(manifest_path):
    raise MissingError(f"{folder} has no {MANIFEST}: is it a folder bin/degrade wrote?")
  manifest = pd.read_csv(manifest_path, dtype={"image_id": str})
  by_path = {os.path.abspath(os.path.join(folder, p)): k for k, p in enumerate(manifest["path"])}
  by_relative = {_parts(p): k for k, p in enumerate(manifest["path"])}
  # bin/degrade's own files, which a scorer given the whole folder lists too.
  own = {
    os.path.abspath(os.path.join(folder, n))
    for n in (MANIFEST, SETTINGS, BAD_FILES, evaluation.DRAWS_FILE)
  }
  found = {}
  values = np.zeros((len(manifest), len(class_names)))
  for number, row in enumerate(scores.to_dict("records"), start=2):  # line 1: the header
    path = str(row["path"])
    where = f"{scores_path} row {number}"
    if os.path.abspath(path) in own:
      continue
    key = by_path.get(os.path.abspath(path))  # as written: from the working directory
    parts = _parts(path)
    for start in range(len(parts)):  # else the longest tail that names a file of the folder
      if key is not None:
        break
      key = by_relative.get(parts[start:])
    if key is None:
      raise DataError(f"{where}: {path!r} is not a file of {folder} (its {MANIFEST})")
    if key in found:
      raise DataError(f"{where}: {path!r} is scored twice (row {found[key]} too)")
    numbers = []
    for column in given:
      text = str(row[column]).strip()
      try:
        value = float(text)
      except ValueError:
        value = float("nan")
      if not np.isfinite(value):
        raise DataError(f"{where}: {column} {text!r} is not a number")
      numbers.append(value)
    for column, value in zip(given, numbers):
      if not 0.0 <= value <= 1.0:
        raise DataError(f"{where}: {column} {value} is not a probability in 0..1")
    if given == ["score"]:
      numbers = [1.0 - numbers[0], numbers[0]]
    values[key] = numbers
    found[key] = number
  missing = [p for k, p in enumerate(manifest["path"]) if k not in found]
  if missing:
    raise DataError(
      f"{scores_path} scores {len(found)} of the {len(manifest)} files of {folder}; "
      f"{len(missing)} have no score (first: {missing[0]})"
    )
  predictions = manifest[["condition", "image_id", "label"]].copy()
  for k, column in enumerate(columns):
    predictions[column] = values[:, k]
  return predictions


def from_scores(
  scores_path: str,
  folder: str,
  out_dir: str,
  command: str | None = None,
  grid_found: bool = False,
) -> dict:
  """The page of `write` from a scores CSV of the files `bin/degrade` wrote
  to `folder` (`read_scores`): the same numbers as the report of the model
  that gave those scores. `grid_found`: also map each file's JPEG grid
  (`grid_maps.grid_found`) and give, per condition, the share of images
  whose main grid is still found."""
  settings_path = os.path.join(folder, SETTINGS)
  if not os.path.isfile(settings_path):
    raise MissingError(f"{folder} has no degrade.json: is it a folder bin/degrade wrote?")
  with open(settings_path) as f:
    settings = json.load(f)
  the_plan = Plan.from_json(settings["plan"])
  class_names = settings["class_names"]
  predictions = read_scores(scores_path, folder, class_names)
  draws_path = os.path.join(folder, evaluation.DRAWS_FILE)
  has_draws = os.path.isfile(draws_path) and os.path.getsize(draws_path) > 1
  draws = pd.read_csv(draws_path) if has_draws else pd.DataFrame()
  about = (
    f"Scores: <code>{html.escape(os.path.abspath(scores_path))}</code> of the files "
    f"<code>{html.escape(os.path.abspath(folder))}</code> holds ({len(class_names)} classes: "
    f"{html.escape(', '.join(class_names))}), made by "
    f"<code>{html.escape(settings['command'])}</code>."
  )
  return file_page.write(
    out_dir,
    predictions,
    draws,
    the_plan,
    class_names,
    SCORED,
    about,
    f"folder {settings['source']}",
    settings["seed"],
    command or report.command_line(),
    f"JPEG robustness from {os.path.basename(scores_path)}",
    dict(scores=os.path.abspath(scores_path), degraded=os.path.abspath(folder)),
    grids=_grid_found(folder) if grid_found else None,
  )


def _grid_found(folder: str) -> pd.DataFrame:
  """`grid_maps.grid_found` of every file bin/degrade wrote to `folder`."""
  from tfjpeg.analysis import grid_maps  # pylint: disable=g-import-not-at-top

  manifest = pd.read_csv(os.path.join(folder, MANIFEST), dtype={"image_id": str})
  paths = [os.path.join(folder, p) for p in manifest["path"]]
  return grid_maps.grid_found(paths, list(manifest["condition"]))


def make_any(
  model_path: str,
  out_dir: str,
  preprocessing=None,
  patches_per_image: int | None = None,
  periods: Sequence[int] = (8, 16),
  **arguments,
) -> dict:
  """The report a model's input asks for: the whole-image report (`make`)
  for a model that takes whole images, else the patch report
  (`tfjpeg.analysis.report.make`, with `patches_per_image` and the offset
  `periods`). `arguments` are those both take."""
  if preprocessing is not None and preprocessing.whole_image:
    return make(model_path, out_dir, preprocessing=preprocessing, **arguments)
  return report.make(
    model_path,
    out_dir,
    preprocessing=preprocessing,
    patches_per_image=patches_per_image,
    periods=periods,
    **arguments,
  )
