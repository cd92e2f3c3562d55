"""Verdict stability: how many images change their verdict under a condition.

A detector can keep its balanced accuracy under a re-save while calling a
fifth of the images the other way: accuracy hides what users see, verdicts
that flip when a file is re-saved or resized. `table` counts, per condition
and true class, the images whose verdict differs from their verdict as
stored; `verdict` says the worst of them in words. `at_chance` says when
there is nothing to be stable: a detector at chance as stored, whose lines
on robustness would only read noise as findings.
"""

import re

import numpy as np
import pandas as pd

from tfjpeg.core import metrics

COLUMNS = ("condition", "class_name", "n_images", "flipped", "flip_share", "flipped_to")


def image_verdicts(probabilities, labels, image_ids, conditions):
  """One row per (condition, image): its label and verdict, the argmax of
  the mean log-probability of its patches (one patch: its own argmax)."""
  means = metrics.per_image(np.asarray(probabilities, float), labels, image_ids, conditions)
  scores = means.drop(columns="label").to_numpy()
  return pd.DataFrame(
    dict(
      condition=means.index.get_level_values(0),
      image_id=means.index.get_level_values(1),
      label=means["label"].astype(int).to_numpy(),
      verdict=scores.argmax(-1),
    )
  )


def table(verdicts: pd.DataFrame, reference: str, class_names) -> pd.DataFrame:
  """Per condition (other than `reference`, the as-stored one) and true
  class: images compared, images whose verdict differs from their verdict
  under `reference`, their share, and the class most of them went to."""
  stored = verdicts[verdicts["condition"] == reference].set_index("image_id")["verdict"]
  rows = []
  for condition, group in verdicts[verdicts["condition"] != reference].groupby(
    "condition", sort=False
  ):
    group = group[group["image_id"].isin(stored.index)]
    before = stored.loc[group["image_id"]].to_numpy()
    changed = group["verdict"].to_numpy() != before
    for k, name in enumerate(class_names):
      mine = group["label"].to_numpy() == k
      flipped = changed & mine
      to = np.bincount(group["verdict"].to_numpy()[flipped], minlength=len(class_names))
      rows.append(
        dict(
          condition=condition,
          class_name=name,
          n_images=int(mine.sum()),
          flipped=int(flipped.sum()),
          flip_share=float(flipped.sum() / mine.sum()) if mine.sum() else float("nan"),
          flipped_to=class_names[int(to.argmax())] if flipped.any() else "",
        )
      )
  return pd.DataFrame(rows, columns=list(COLUMNS))


def describe(condition: str) -> str:
  """A condition's name in words: 'qf75' -> 'A JPEG re-save at QF 75'."""
  match = re.fullmatch(r"qf(\d+)", condition)
  if match:
    return f"A JPEG re-save at QF {match.group(1)}"
  match = re.fullmatch(r"qf(\d+)>qf(\d+)", condition)
  if match:
    return f"Saving at QF {match.group(1)}, cropping, then saving at QF {match.group(2)}"
  if condition == "swap":
    return "The compression swap"
  if condition == "common":
    return "Saving every image at one common QF"
  if re.fullmatch(r"jpeg:\d+", condition):
    return f"A JPEG re-save at QF {condition.split(':')[1]}"
  return f"Processing by {condition}"


def verdict(stability: pd.DataFrame, lines_wanted: int = 3) -> list[str]:
  """The conditions that flip the largest share of some class's verdicts,
  in words, worst first (at most `lines_wanted` conditions)."""
  shown = stability[(stability["flipped"] > 0) & stability["flip_share"].notna()]
  if not len(shown):
    if len(stability):
      return [
        "Stability: no condition changes the verdict of any image from its verdict as stored."
      ]
    return []
  worst = shown.sort_values("flip_share", ascending=False).drop_duplicates("condition")
  lines = []
  for row in worst.head(lines_wanted).itertuples():
    lines.append(
      f"Stability: {describe(row.condition)} flips {100 * row.flip_share:.0f}% of the "
      f"'{row.class_name}' images to '{row.flipped_to}' ({row.flipped} of {row.n_images}, "
      "against their verdicts as stored)."
    )
  return lines


# A detector whose balanced accuracy as stored is below chance plus this, its
# 95% interval holding chance, is at chance.
CHANCE_MARGIN = 0.1


def at_chance(stored_row, num_classes: int) -> list[str]:
  """One line when the detector is at chance as stored (`stored_row`: a
  results row with balanced_accuracy and its _low and _high): the page's
  only verdict, for no line below it would measure robustness. Else none."""
  chance = 1 / num_classes
  a = float(stored_row["balanced_accuracy"])
  low, high = (
    float(stored_row["balanced_accuracy_low"]),
    float(stored_row["balanced_accuracy_high"]),
  )
  if not (low <= chance <= high and a < chance + CHANCE_MARGIN):
    return []
  return [
    f"At chance as stored: balanced accuracy {a:.2f} (95% interval {low:.2f} to {high:.2f}) "
    f"holds chance, {chance:.2f}, so nothing on this page measures robustness: the "
    "conditions move a detector that has found nothing to lose."
  ]
