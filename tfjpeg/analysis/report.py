"""A JPEG robustness report for any trained classifier: one HTML page and its tables.

`make(model_path, out_dir, ...)` loads the model (`tfjpeg.serving.classifier`: a run
directory, its SavedModel, any SavedModel or .keras file), takes labelled
images (a folder `DIR/<class>/...`, all of it, or a registered task's test
split), reads every image once into memory, and measures on the same test
patches, with the project's own evaluation and per-offset code:

  quality     balanced accuracy against test QF (as stored, 50..99), aligned
              and random crops;
  grid        random crops against crops realigned to the JPEG grid
              estimated from each image, and the estimator's confidence;
  double      double compression: the whole image at QF1, the crop, then QF2;
  swap        the compression swap: images of a less-compressed class saved
              whole at the QFs the other classes are stored at (read from the
              test files' headers, tfjpeg.data.audit), and every image at one
              common QF; per-class accuracy under every condition, and for two
              classes the share of each called positive, beside ROC AUC;
  offsets     the per-offset map (8x8, and 16x16 for 4:2:0 chroma), the
              displacement curve and ASD%;
  resize      balanced accuracy against the factor the whole test image is
              resized by (0.25 to 2, Pillow-exact bicubic) and a resize x QF
              grid (resized, then saved again), random crops; Corvi et al.
              2023's test operations (crop, resize to 200x200, JPEG 65..100)
              and any other processing chain asked for (tfjpeg.codec.chain_syntax),
              what each drew for each image in chain_draws.csv.

Every accuracy has its 95% interval, by bootstrap over images; two-class
models also get ROC AUC and AP under each condition. The page (figures
embedded, no network, opens from disk) starts with a verdict in plain words,
and names the command that made it and the model's SHA-256. `across` gives
the mean and spread over several reports (the same recipe trained with
several seeds): one run on a few hundred test images can move by 0.2.
"""

import base64
import dataclasses
import html
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence
from typing import IO

import numpy as np
import pandas as pd
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.analysis import evaluation
from tfjpeg.analysis import offsets
from tfjpeg.analysis import plotting
from tfjpeg.analysis import stability
from tfjpeg.analysis import tables as tables_lib
from tfjpeg.codec import chain_syntax as chains_lib
from tfjpeg.codec import grid
from tfjpeg.codec import images
from tfjpeg.core import metrics
from tfjpeg.core import pages
from tfjpeg.core import progress
from tfjpeg.core.errors import ConfigError
from tfjpeg.data import audit
from tfjpeg.data import tasks
from tfjpeg.pipeline import input_pipeline
from tfjpeg.serving import classifier as classifier_lib
from tfjpeg.train import rundir

QUALITIES = (None, 99, 95, 90, 80, 70, 60, 50)
DOUBLE_PAIRS = tuple((first, second) for first in (50, 70, 90) for second in (70, 90))
FLOOR = 0.6  # the verdict names the QFs where accuracy falls below this
# The resize x QF grid: factors of the whole test image (1: as stored), each
# then saved at a QF or not at all (None), bicubic as Pillow resizes by default.
RESIZE_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
RESIZE_QUALITIES = (None, 90, 75, 50)
# Published test protocols every report puts the classifier through.
PROTOCOLS = ("corvi2023",)


class _Forward:
  """A classifier as `inference.predict` calls a model."""

  def __init__(self, classifier):
    self.classifier = classifier

  def __call__(self, patches, training=False):
    del training
    return self.classifier.forward(patches)


def in_memory(task, class_names, split="test"):
  """`task` with `split`'s encoded images read once and kept in memory, so
  every condition and sweep of the report reads them from there; labels
  become indices into `class_names` (the model's order). Returns (task, the
  columns read)."""
  unknown = sorted(set(task.class_names) - set(class_names))
  if unknown:
    raise ConfigError(f"the {task.name} task has classes {unknown} the model does not know")
  to_model = np.array([list(class_names).index(n) for n in task.class_names])
  elements = [{k: v.numpy() for k, v in e.items()} for e in task.images(split)]
  columns = {k: np.array([e[k] for e in elements]) for k in ("encoded", "label", "image_id")}
  if elements:
    columns["label"] = to_model[columns["label"]]

  def read(which, shuffle_seed=None):
    del shuffle_seed  # the report cuts test patches only
    if which != split or not elements:
      return tf.data.Dataset.from_tensor_slices(
        dict(
          encoded=tf.constant([], tf.string),
          label=tf.constant([], tf.int32),
          image_id=tf.constant([], tf.string),
        )
      )
    return tf.data.Dataset.from_tensor_slices(
      dict(
        encoded=tf.constant(columns["encoded"]),
        label=tf.constant(columns["label"], tf.int32),
        image_id=tf.constant(columns["image_id"]),
      )
    )

  return dataclasses.replace(task, images=read, class_names=list(class_names)), columns


def _images(classifier, model_path, images_dir, task_name, data_dir, config):
  """(task, config): the labelled images and the config their patches follow.
  A model that takes whole images takes any size: no image is refused as
  smaller than its input."""
  whole = classifier.preprocessing.whole_image
  size = 1 if whole else classifier.patch_size
  if images_dir:
    return tasks.labelled_folder(
      images_dir, size, config.task.patches_per_image or 1, classifier.class_names
    ), config
  if not task_name and classifier.run_config is not None:  # the run's own test split
    config = config_lib.override(classifier.run_config, data_dir=data_dir)
    task = tasks.get(config.task)
  elif task_name:
    config = config_lib.replace(
      config, task=task_name, data_dir=data_dir, patch_size=classifier.patch_size
    )
    task = tasks.get(config.task)
  else:
    raise ConfigError("name the labelled images: --images=DIR (DIR/<class>/...) or --task")
  if task.patch_size != classifier.patch_size and not whole:
    raise ConfigError(
      f"the model takes {classifier.patch_size}-pixel patches; the {task.name} "
      f"task cuts {task.patch_size}"
    )
  return task, config


def conditions(qualities=QUALITIES, double_pairs=DOUBLE_PAIRS):
  """Every test condition of the report, for one pass over the images."""
  single = [
    input_pipeline.Condition(crop, qf) for crop in ("aligned", "random") for qf in qualities
  ]
  double = [
    input_pipeline.Condition(crop, second, first)
    for crop in ("aligned", "random")
    for first, second in double_pairs
  ]
  return single + [input_pipeline.Condition("realigned")] + double


def grid_confidence(encoded):
  """The JPEG-grid estimator on each image: origin "dy:dx" and confidence."""
  rows = []
  for data in encoded:
    origin, confidence = grid.traced()(images.decode(data))
    rows.append(dict(origin=f"{int(origin[0])}:{int(origin[1])}", confidence=float(confidence)))
  return pd.DataFrame(rows, columns=["origin", "confidence"])


def _row(table, crop, qf="none", first="none", resave="none"):
  rows = table[
    (table["test_crop"] == crop)
    & (table["test_qf"].astype(str) == str(qf))
    & (table["test_first_qf"].astype(str) == str(first))
    & (table["test_resave"] == resave)
  ]
  return rows.iloc[0] if len(rows) else None


SWAP_DROP = 0.1  # a swap that costs this much balanced accuracy means a shortcut
POSITIVE_WORDS = ("fake", "generated", "synthetic", "gan", "ai", "manipulated", "forged")


def positive_class(class_names):
  """The class two-class figures call positive: the one named like a fake,
  generated or manipulated image if exactly one is, else the second."""

  def words(name):  # whole words, and their plurals: "ai" is not in "mountain"
    return {w.removesuffix("s") for w in re.split(r"[^a-z0-9]+", name.lower()) if w}

  named = [n for n in class_names if words(n) & set(POSITIVE_WORDS)]
  return named[0] if len(named) == 1 else class_names[1]


def resave_conditions(profile, crops=("aligned", "random")):
  """The compression swap (only when some class is less compressed than
  another) and the common-QF condition, for each crop."""
  resaves = (("swap",) if any(profile.swap_qfs) else ()) + ("common",)
  return [input_pipeline.Condition(crop, resave=r) for crop in crops for r in resaves]


def resize_grid(factors, qualities, smallest_side, patch_size):
  """The resize x QF grid as a table of (resize_factor, resize_qf, test_chain):
  every factor that leaves the smallest test image at least a patch wide
  (the others are listed in `skipped`), each then saved at each QF."""
  kept = [f for f in factors if int(np.floor(smallest_side * f + 0.5)) >= patch_size]
  rows = []
  for factor in kept:
    for quality in qualities:
      steps = ([f"resize:{float(factor)!r}"] if factor != 1 else []) + (
        [f"jpeg:{quality}"] if quality else []
      )
      text = chains_lib.parse(">".join(steps)).text
      rows.append(
        dict(resize_factor=float(factor), resize_qf=str(quality or "none"), test_chain=text)
      )
  return pd.DataFrame(rows), [f for f in factors if f not in kept]


def resize_verdict(grid_table, protocols):
  """Plain words on resizing: what halving and doubling the size cost, the
  worst cell of the resize x QF grid, and each published protocol."""
  lines = []
  alone = grid_table[grid_table["resize_qf"] == "none"].set_index("resize_factor")
  if 1.0 in alone.index:
    stored = float(alone.loc[1.0, "balanced_accuracy"])
    for factor, words in ((0.5, "halving"), (2.0, "doubling"), (0.25, "quartering")):
      if factor in alone.index:
        cost = stored - float(alone.loc[factor, "balanced_accuracy"])
        verb = "costs" if cost >= 0 else "gains"
        lines.append(
          f"Resizing: {words} the size {verb} {abs(cost):.2f} balanced accuracy "
          f"(as stored {stored:.2f}, resized by {factor:g}: "
          f"{float(alone.loc[factor, 'balanced_accuracy']):.2f})."
        )
  if len(grid_table):
    worst = grid_table.loc[grid_table["balanced_accuracy"].astype(float).idxmin()]
    saved = "" if worst["resize_qf"] == "none" else f" then saved at QF {worst['resize_qf']}"
    lines.append(
      f"Hardest resize: by {worst['resize_factor']:g}{saved}, "
      f"{float(worst['balanced_accuracy']):.2f}."
    )
  for _, row in protocols.iterrows():
    lines.append(
      f"Under {row['test_chain']} "
      f"({chains_lib.PRESETS.get(row['test_chain'], row['test_chain'])}): "
      f"{float(row['balanced_accuracy']):.2f} "
      f"({float(row['balanced_accuracy_low']):.2f}-{float(row['balanced_accuracy_high']):.2f})."
    )
  return lines


def stability_label(condition) -> str | None:
  """What the stability table calls a random-crop condition ('stored',
  'qf75', 'qf50>qf90' for a double compression, 'swap', 'common', the
  chain); None for other crops."""
  if condition.crop != "random" or condition.grid != 8:
    return None
  if condition.chain != "none":
    return condition.chain
  if condition.resave != "none":
    return condition.resave
  if condition.first_qf:
    return f"qf{condition.first_qf}>qf{condition.qf}"
  return f"qf{condition.qf}" if condition.qf else "stored"


def stability_of_random_crops(patches, conditions_list, class_names):
  """`stability.table` of the random-crop conditions against random crops
  as stored, from `evaluation.evaluate`'s kept patches; images a chain left
  too small are out of that condition."""
  labels = [stability_label(c) for c in conditions_list]
  keep = np.array([labels[k] is not None for k in patches["condition"]])
  if "valid" in patches:
    keep &= patches["valid"]
  verdicts = stability.image_verdicts(
    patches["probabilities"][keep],
    patches["label"][keep],
    patches["image_id"][keep],
    np.array([labels[k] for k in patches["condition"][keep]]),
  )
  return stability.table(verdicts, "stored", list(class_names))


def per_class(table, confusions, conditions_list, class_names):
  """One row per test condition and true class: its recall (accuracy on that
  class), its patches, and the share called each class."""
  rows = []
  for condition, row in zip(conditions_list, table.itertuples()):
    matrix = np.asarray(confusions[condition.name], float)
    for k, name in enumerate(class_names):
      total = matrix[k].sum()
      shares = {
        f"called_{other}": matrix[k, j] / total if total else np.nan
        for j, other in enumerate(class_names)
      }
      rows.append(
        dict(
          test_crop=row.test_crop,
          test_qf=row.test_qf,
          test_first_qf=row.test_first_qf,
          test_resave=row.test_resave,
          test_chain=row.test_chain,
          class_name=name,
          recall=shares[f"called_{name}"],
          n_patches=int(total),
          balanced_accuracy=row.balanced_accuracy,
          **shares,
        )
      )
  return pd.DataFrame(rows)


def _pool_text(qualities):
  values = sorted(set(qualities))
  return f"QF {values[0]}" if len(values) == 1 else f"QF {values[0]}-{values[-1]}"


def swap_verdict(table, classes, profile, crop="random", unit=None):
  """What the compression swap shows, in plain words; `unit` names the
  images ("random crops", default: "<crop> crops")."""
  unit = unit or f"{crop} crops"
  stored, swapped, common = (_row(table, crop, resave=r) for r in ("none", "swap", "common"))
  if stored is None or common is None:
    return []
  lines = []
  a, c = float(stored["balanced_accuracy"]), float(common["balanced_accuracy"])
  if swapped is None:
    lines.append(
      f"All classes are stored with the same compression, so there is nothing to "
      f"swap; saving every image at QF {profile.common_qf} moves balanced accuracy "
      f"from {a:.2f} to {c:.2f} ({unit})."
    )
    return lines
  s = float(swapped["balanced_accuracy"])
  mine = classes[
    (classes["test_crop"] == crop)
    & (classes["test_first_qf"] == "none")
    & (classes["test_qf"] == "none")
  ]
  for k, name in enumerate(profile.class_names):
    if not profile.swap_qfs[k]:
      continue
    before = mine[(mine["test_resave"] == "none") & (mine["class_name"] == name)].iloc[0]
    after = mine[(mine["test_resave"] == "swap") & (mine["class_name"] == name)].iloc[0]
    others = [n for n in profile.class_names if n != name]
    wrong = max(others, key=lambda n: after[f"called_{n}"])
    like = f"the '{others[0]}' ones" if len(others) == 1 else "the other classes' files"
    how = (
      "saved as JPEG like " + like if profile.levels[k] > 100 else "re-saved at the QFs of " + like
    )
    lines.append(
      f"When '{name}' images are {how} ({_pool_text(profile.swap_qfs[k])}), "
      f"{100 * after[f'called_{wrong}']:.0f}% of them are called '{wrong}' (as "
      f"stored: {100 * before[f'called_{wrong}']:.0f}%; {unit})."
    )
  if a - s >= SWAP_DROP:
    lines.append(
      f"Balanced accuracy falls from {a:.2f} as stored to {s:.2f} under the swap "
      f"({c:.2f} with every image at QF {profile.common_qf}): the net reads how "
      "files were saved, not only the task."
    )
  else:
    lines.append(
      f"The swap moves balanced accuracy from {a:.2f} to {s:.2f} ({c:.2f} with "
      f"every image at QF {profile.common_qf}): no sign that the net reads how "
      "files were saved."
    )
  return lines


def verdict(table, sweeps, confidence, num_classes):
  """The report's findings in plain words, most important first."""
  lines = []
  aligned, random, realigned = (_row(table, c) for c in ("aligned", "random", "realigned"))
  a, r, g = (float(x["balanced_accuracy"]) for x in (aligned, random, realigned))
  if random["balanced_accuracy_high"] < aligned["balanced_accuracy_low"]:
    lines.append(
      f"Loses {a - r:.2f} when the crop is off the JPEG grid (aligned {a:.2f}, "
      f"random {r:.2f}); realigning the crop to the estimated grid recovers "
      f"{g - r:.2f} (realigned {g:.2f})."
    )
  else:
    lines.append(
      f"Does not depend on where the crop falls on the JPEG grid: aligned {a:.2f} "
      f"and random {r:.2f} are within each other's 95% intervals."
    )
  for crop in ("aligned", "random"):
    single = table[
      (table["test_crop"] == crop)
      & (table["test_first_qf"] == "none")
      & (table["test_qf"] != "none")
      & (table["test_resave"] == "none")
    ]
    by_qf = single.assign(q=single["test_qf"].astype(int)).sort_values("q")
    below = by_qf[by_qf["balanced_accuracy"] < FLOOR]["q"].tolist()
    stored = float(_row(table, crop)["balanced_accuracy"])
    if stored < FLOOR and len(below) == len(by_qf):
      lines.append(
        f"With {crop} crops, below {FLOOR} even as stored ({stored:.2f}) and at every QF tested."
      )
    elif not below:
      lines.append(
        f"With {crop} crops, stays at or above {FLOOR} down to QF "
        f"{by_qf['q'].min()} (lowest {by_qf['balanced_accuracy'].min():.2f})."
      )
    elif below == by_qf["q"].tolist()[: len(below)]:
      lines.append(
        f"With {crop} crops, below {FLOOR} at QF {max(below)} and under "
        f"({by_qf.iloc[0]['balanced_accuracy']:.2f} at QF {by_qf.iloc[0]['q']})."
      )
    else:
      lines.append(f"With {crop} crops, below {FLOOR} at QF {', '.join(map(str, below))}.")
  double = table[table["test_first_qf"] != "none"]
  worst = double.loc[double["balanced_accuracy"].idxmin()] if len(double) else None
  if worst is not None:
    lines.append(
      f"Double compression is hardest at QF {worst['test_first_qf']} then "
      f"{worst['test_qf']} with {worst['test_crop']} crops: "
      f"{worst['balanced_accuracy']:.2f}."
    )
  for period, table_of_phases in sweeps.items():
    summary = metrics.offset_summary(table_of_phases)
    lines.append(
      f"Over the {period}x{period} crop phases: {summary['aligned']:.2f} on the "
      f"grid, {summary['misaligned_mean']:.2f} on average off it; ASD "
      f"{summary['asd_percent']:.1f}%."
    )
  found = int((confidence["confidence"] >= grid.CONFIDENT).sum())
  lines.append(
    f"The JPEG grid was found in {found} of {len(confidence)} test images "
    f"(estimator confidence >= {grid.CONFIDENT}). Chance is {1 / num_classes:.2f}."
  )
  return lines


def _figure(paths):
  png = next(p for p in paths if p.endswith(".png"))
  with open(png, "rb") as f:
    data = base64.b64encode(f.read()).decode()
  return f'<img alt="{html.escape(os.path.basename(png))}" src="data:image/png;base64,{data}">'


def _table(frame, columns=None):
  return pages.table(frame[columns] if columns else frame)


PAGE = """{head}{verdict}
<p>Made by <code>{command}</code></p>
<p>Model: <code>{model}</code> ({form}; {classes} classes, {patch}-pixel patches),
SHA-256 <code id="fingerprint">{fingerprint}</code>.<br>
Input: {preprocessing}.<br>
Images: {source}: {n_images} test images, {patches} patches each, seed {seed}.
Intervals are 95%, by bootstrap over images.</p>
{sections}
</body></html>
"""


def _section(title, text, figure=None, table=None):
  return f"<h2>{html.escape(title)}</h2><p>{text}</p>" + (figure or "") + (table or "")


def command_line() -> str:
  """The command that is running, as a shell would take it back."""
  return " ".join(shlex.quote(a) for a in sys.argv)


def stored_profile(
  sources: Sequence, labels: Sequence[int], image_ids: Sequence, class_names, stream=None
) -> audit.CompressionProfile:
  """How the test images are stored, from their headers: the compression
  profile the swap draws from. `sources` are the files (paths, or their
  bytes), `labels` index `class_names`, `image_ids` name the images."""
  stored = audit.read_headers(
    pd.DataFrame(
      dict(
        source=list(sources),
        class_name=[class_names[k] for k in labels],
        split="test",
        group=[i.decode() if isinstance(i, bytes) else str(i) for i in image_ids],
      )
    ),
    stream=stream,
  )
  return audit.compression_profile(stored, class_names)


def load_images(
  model_path,
  images_dir,
  task,
  data_dir,
  class_names,
  patch_size,
  patches_per_image,
  seed,
  stream=None,
  preprocessing=None,
):
  """What a report measures: (classifier, the test images in memory
  (`in_memory`), their columns, the config their patches follow, the
  compression profile of their files)."""
  classifier = classifier_lib.load(model_path, class_names, patch_size, preprocessing)
  base = config_lib.make(
    task="folder",
    net=classifier.form,
    train_crop="random",
    patches_per_image=patches_per_image,
    seed=seed or 0,
  )
  source_task, config = _images(classifier, model_path, images_dir, task, data_dir, base)
  # A run's own seed unless one is given: its crops are then those of bin/evaluate.
  config = config_lib.replace(
    config, seed=config.schedule.seed if seed is None else seed, batch_size=64
  )
  memory_task, columns = in_memory(source_task, classifier.class_names)
  if not len(columns["encoded"]):
    raise ConfigError(f"no test images in {images_dir or source_task.name}")
  profile = stored_profile(
    columns["encoded"], columns["label"], columns["image_id"], classifier.class_names, stream
  )
  return classifier, memory_task, columns, config, profile


def make(
  model_path: str,
  out_dir: str,
  images_dir: str | None = None,
  task: str | None = None,
  data_dir: str | None = None,
  class_names: Sequence[str] | None = None,
  patch_size: int | None = None,
  patches_per_image: int | None = None,
  seed: int | None = None,
  qualities: Sequence[int | None] = QUALITIES,
  double_pairs: Sequence[tuple[int, int]] = DOUBLE_PAIRS,
  periods: Sequence[int] = (8, 16),
  resize_factors: Sequence[float] = RESIZE_FACTORS,
  resize_qualities: Sequence[int | None] = RESIZE_QUALITIES,
  test_chains: Sequence[str] = PROTOCOLS,
  command: str | None = None,
  stream: IO[str] | None = None,
  preprocessing: classifier_lib.Preprocessing | None = None,
) -> dict:
  """Measures everything of the module docstring and writes out_dir/report.html,
  conditions.csv, offsets_<period>.csv, displacement_<period>.csv,
  grid_estimates.csv, resize.csv, chain_draws.csv and summary.json. Returns
  the summary dict."""
  classifier, memory_task, columns, config, profile = load_images(
    model_path,
    images_dir,
    task,
    data_dir,
    class_names,
    patch_size,
    patches_per_image,
    seed,
    stream,
    preprocessing,
  )
  os.makedirs(out_dir, exist_ok=True)
  model = _Forward(classifier)
  smallest = min(
    int(min(tf.image.extract_jpeg_shape(e)[:2]))
    if tf.io.is_jpeg(e)
    else int(min(tf.shape(images.decode(e))[:2]))
    for e in columns["encoded"]
  )
  resizes, skipped = resize_grid(resize_factors, resize_qualities, smallest, memory_task.patch_size)
  extra, too_small = [], []
  for text in (chains_lib.parse(c).text for c in test_chains):
    largest = chains_lib.largest_output(chains_lib.parse(text))
    fits = largest is None or min(largest) >= memory_task.patch_size
    (extra if fits else too_small).append(text)
  chain_texts = list(dict.fromkeys([t for t in resizes["test_chain"] if t != "none"] + extra))
  measured = (
    conditions(qualities, double_pairs)
    + resave_conditions(profile)
    + [input_pipeline.Condition("random", chain=t) for t in chain_texts]
  )
  with progress.Progress(2 + len(periods), "robustness report", "passes", stream) as bar:
    patches = {}
    table, confusions = evaluation.evaluate(
      model,
      memory_task,
      config,
      conditions=measured,
      profile=profile,
      draws_path=os.path.join(out_dir, evaluation.DRAWS_FILE),
      keep=patches,
    )
    classes = per_class(table, confusions, measured, classifier.class_names)
    bar.update()
    confidence = grid_confidence(columns["encoded"]).assign(image_id=columns["image_id"])
    bar.update()
    sweeps = {}
    for period in periods:
      sweeps[period] = offsets.analyse(model, memory_task, config, period=period)
      bar.update()
  flips = stability_of_random_crops(patches, measured, classifier.class_names)
  table.to_csv(os.path.join(out_dir, "conditions.csv"), index=False)
  classes.to_csv(os.path.join(out_dir, "per_class.csv"), index=False)
  confidence.to_csv(os.path.join(out_dir, "grid_estimates.csv"), index=False)
  flips.to_csv(os.path.join(out_dir, "stability.csv"), index=False)
  panels = []
  for period, phases in sweeps.items():
    phases.to_csv(os.path.join(out_dir, f"offsets_{period}.csv"), index=False)
    metrics.displacement_curve(phases).to_csv(
      os.path.join(out_dir, f"displacement_{period}.csv"), index=False
    )
    panels.append(offsets.figure_panel(f"{period}x{period} phases", phases))
  chained = table["test_chain"] != "none"
  random_rows = table[
    (table["test_crop"] == "random")
    & (table["test_qf"] == "none")
    & (table["test_first_qf"] == "none")
    & (table["test_resave"] == "none")
  ]
  resize_rows = resizes.merge(random_rows, on="test_chain", how="left")
  resize_rows.to_csv(os.path.join(out_dir, "resize.csv"), index=False)
  protocol_rows = random_rows[random_rows["test_chain"].isin(extra)]
  classes = classes[classes["test_chain"] == "none"]
  at_chance = stability.at_chance(_row(table, "random"), classifier.num_classes)
  findings = at_chance or (
    swap_verdict(table[~chained], classes, profile)
    + verdict(table[~chained], sweeps, confidence, classifier.num_classes)
    + stability.verdict(flips)
    + resize_verdict(resize_rows, protocol_rows)
  )
  table = table[~chained]  # the sections below: the JPEG conditions
  stored_rows = table["test_resave"] == "none"
  quality_rows = table[
    (table["test_first_qf"] == "none")
    & stored_rows
    & table["test_crop"].isin(["aligned", "random"])
  ]
  double_rows = table[table["test_first_qf"] != "none"]
  grid_rows = table[(table["test_qf"] == "none") & (table["test_first_qf"] == "none") & stored_rows]
  swap_rows = table[
    (table["test_qf"] == "none")
    & (table["test_first_qf"] == "none")
    & table["test_crop"].isin(["aligned", "random"])
  ]
  shown = [
    "test_crop",
    "test_qf",
    "test_first_qf",
    "test_resave",
    "balanced_accuracy",
    "balanced_accuracy_low",
    "balanced_accuracy_high",
    "n_images",
    "n_patches",
  ]
  if classifier.num_classes == 2:
    shown += ["roc_auc", "average_precision"]
  figures = os.path.join(out_dir, "figures")
  os.makedirs(figures, exist_ok=True)
  recalls = classes.pivot_table(
    index=["test_crop", "test_qf", "test_first_qf", "test_resave", "balanced_accuracy"],
    columns="class_name",
    values="recall",
    sort=False,
  ).reset_index()
  recalls.columns = [c if c in table.columns else f"recall {c}" for c in recalls.columns]
  pools = ", ".join(
    f"{n}: {_pool_text(p)}" for n, p in zip(profile.class_names, profile.swap_qfs) if p
  )
  swap_text = (
    "Each test image of a less-compressed class saved whole, before the crop, at a QF "
    "drawn from the QFs the other classes' files are stored at "
    f"({pools or 'no class is less compressed: nothing to swap'}); 'common': every image "
    f"saved at QF {profile.common_qf}, the median stored QF. A net that reads how files "
    "were saved, not the task, changes its answers here."
  )
  if classifier.num_classes == 2:
    positive = positive_class(classifier.class_names)
    shift = classes[
      classes["test_qf"].eq("none")
      & classes["test_first_qf"].eq("none")
      & classes["test_crop"].isin(["aligned", "random"])
    ]
    shift = shift.pivot_table(
      index=["test_crop", "test_resave"],
      columns="class_name",
      values=f"called_{positive}",
      sort=False,
    ).reset_index()
    shift.columns = [
      c if c in ("test_crop", "test_resave") else f"'{c}' called '{positive}'"
      for c in shift.columns
    ]
    shift = shift.merge(
      swap_rows[["test_crop", "test_resave", "roc_auc"]], on=["test_crop", "test_resave"]
    )
    swap_text += (
      f" Score shift, as published tables give it: the share of each class called "
      f"'{positive}' (the positive class) at threshold 0.5, and ROC AUC (the same "
      f"whichever class is positive; average precision is of "
      f"'{classifier.class_names[1]}')."
    )
    swap_table = _table(swap_rows, shown) + _table(shift)
  else:
    swap_table = _table(swap_rows, shown)
  grid_view = resize_rows.pivot_table(
    index="resize_factor", columns="resize_qf", values="balanced_accuracy", sort=False
  ).reset_index()
  grid_view.columns = [
    "resize factor" if c == "resize_factor" else ("not saved" if c == "none" else f"then QF {c}")
    for c in grid_view.columns
  ]
  resize_text = (
    "Each test image resized whole by the factor (Pillow-exact bicubic, antialiased when "
    "shrinking), then saved at the QF or not saved again, before random crops are cut: "
    "what platforms and messengers do to a photo."
    + (
      f" Factors {', '.join(f'{f:g}' for f in skipped)} are left out: they would leave "
      f"the smallest test image ({smallest} px) smaller than a patch."
      if skipped
      else ""
    )
  )
  left_out = (
    f" Left out: {', '.join(too_small)}, whose images are smaller than the model's "
    f"{memory_task.patch_size}-pixel patches."
    if too_small
    else ""
  )
  protocol_text = (
    "Published test protocols, applied to every test image: "
    + "; ".join(
      f"<code>{html.escape(t)}</code> = <code>{html.escape(chains_lib.PRESETS.get(t, t))}</code>"
      for t in extra
    )
    + ". What each drew for each image is in chain_draws.csv, so that the same "
    "operations can be applied again." + left_out
  )
  sections = [
    _section(
      "Stability: verdicts that flip",
      "For each condition and true class, the share of test images whose verdict "
      "(their random crops' mean log-probability) differs from their verdict as "
      "stored, and the class most of them went to. Accuracy can hold while many "
      "verdicts change.",
      None,
      _table(flips),
    ),
    _section(
      "Resizing: accuracy against resize factor and QF",
      resize_text,
      _figure(
        plotting.accuracy_by_resize(
          resize_rows, os.path.join(figures, "resize"), 1 / classifier.num_classes
        )
      ),
      _table(grid_view),
    ),
    _section(
      "Processing chains and protocols",
      protocol_text,
      None,
      _table(protocol_rows, shown + ["test_chain"]),
    ),
    _section(
      "Compression swap: does the net read how files were saved?", swap_text, None, swap_table
    ),
    _section(
      "Accuracy on each class",
      "Recall (the share of each class's patches called "
      "right) under every condition, beside the balanced accuracy (their mean).",
      None,
      _table(recalls),
    ),
    _section(
      "Accuracy against JPEG quality",
      "Each test image is cut, then its patches saved at the test QF; "
      "aligned crops start on the 8x8 grid of the stored image, random crops "
      "anywhere.",
      _figure(
        plotting.accuracy_by_quality(
          quality_rows, os.path.join(figures, "quality"), 1 / classifier.num_classes
        )
      ),
      _table(quality_rows, shown),
    ),
    _section(
      "Grid position: random crops against realigned ones",
      f"Realigned crops are random crops moved onto the JPEG grid that "
      f"<code>tfjpeg.codec.grid</code> estimates from each image's pixels (kept where no "
      f"grid is found). The grid was found in "
      f"{int((confidence['confidence'] >= grid.CONFIDENT).sum())} of "
      f"{len(confidence)} images; median confidence "
      f"{confidence['confidence'].median():.3f}.",
      None,
      _table(grid_rows, shown),
    ),
    _section(
      "Per-offset map and displacement",
      "Every test image cut at every grid phase of the crop, the same content "
      "each time. ASD% is the mean relative drop of the true-class score over "
      "the misaligned diagonal shifts.",
      _figure(plotting.offset_figure(panels, os.path.join(figures, "offsets"))),
      _table(pd.DataFrame([metrics.offset_summary(t) for t in sweeps.values()])),
    ),
    _section(
      "Double compression",
      "The whole image saved at the first QF, then cropped, then the patch saved "
      "at the second QF: a photo re-saved after an edit.",
      _figure(plotting.double_compression_map(double_rows, os.path.join(figures, "double"))),
      _table(double_rows, shown),
    ),
  ]
  command = command or command_line()
  fingerprint = classifier.fingerprint()
  source = (
    f"folder {images_dir}" if images_dir else f"the test split of the {memory_task.name} task"
  )
  page = PAGE.format(
    head=pages.head(f"JPEG robustness of {os.path.basename(os.path.normpath(model_path))}"),
    verdict=pages.verdict(findings),
    command=html.escape(command),
    model=html.escape(os.path.abspath(model_path)),
    form=classifier.form,
    classes=classifier.num_classes,
    patch=classifier.patch_size,
    fingerprint=fingerprint,
    preprocessing=html.escape(classifier.preprocessing.describe(classifier.patch_size)),
    source=html.escape(source),
    n_images=len(columns["encoded"]),
    patches=memory_task.patches_per_image,
    seed=config.schedule.seed,
    sections="\n".join(sections),
  )
  with open(os.path.join(out_dir, "report.html"), "w") as f:
    f.write(page)
  summary = dict(
    model=os.path.abspath(model_path),
    fingerprint=fingerprint,
    command=command,
    images=len(columns["encoded"]),
    verdict=findings,
  )
  with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return summary


def across(report_dirs, out_dir):
  """Mean, standard deviation and count, over several reports (one model
  trained with several seeds), of every condition's metrics and of every
  per-offset sweep's summary. Writes out_dir/across_conditions.csv and
  across_offsets.csv; returns both tables."""
  tables, sweeps = [], []
  for number, folder in enumerate(report_dirs):
    tables.append(rundir.read_table(os.path.join(folder, "conditions.csv")).assign(seed=number))
    for period in (8, 16):
      path = os.path.join(folder, f"offsets_{period}.csv")
      if os.path.exists(path):
        sweeps.append(dict(seed=number, **metrics.offset_summary(pd.read_csv(path))))
  conditions = tables_lib.summarize(pd.concat(tables, ignore_index=True))
  offsets_table = pd.DataFrame(sweeps)
  if len(offsets_table):
    grouped = offsets_table.drop(columns="seed").groupby("period")
    offsets_table = grouped.agg(["mean", "std"])
    offsets_table.columns = [f"{m}_{'sd' if s == 'std' else s}" for m, s in offsets_table.columns]
    offsets_table = offsets_table.assign(n_seeds=grouped.size()).reset_index()
  os.makedirs(out_dir, exist_ok=True)
  conditions.to_csv(os.path.join(out_dir, "across_conditions.csv"), index=False)
  offsets_table.to_csv(os.path.join(out_dir, "across_offsets.csv"), index=False)
  return conditions, offsets_table
