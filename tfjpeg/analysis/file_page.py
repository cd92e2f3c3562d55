"""The robustness report's page for a detector that takes whole images: the
conditions measured (`measure`), the verdict lines, and report.html with its
tables and figures (`write`), from the predictions `tfjpeg.analysis.file_report`
gathers from a model or from anyone's scores.
"""

import dataclasses
import html
import json
import os
from collections.abc import Sequence

import pandas as pd

from tfjpeg.analysis import evaluation
from tfjpeg.analysis import plotting
from tfjpeg.analysis import report
from tfjpeg.analysis import stability
from tfjpeg.codec import chain_syntax
from tfjpeg.core import metrics
from tfjpeg.core import pages
from tfjpeg.pipeline import whole_images
from tfjpeg.train import rundir

STORED = whole_images.FileCondition().name


def probability_columns(class_names: Sequence[str]) -> list[str]:
  """The columns of the predictions' class probabilities."""
  return [f"prob_{n}" for n in class_names]


def measure(predictions: pd.DataFrame, the_plan, class_names, input_name: str):
  """(table, confusions): a results row per condition (`evaluation.RESULT_COLUMNS`,
  test_crop naming how the detector took its input), and its confusion matrix."""
  columns = probability_columns(class_names)
  rows, confusions = [], {}
  for condition in the_plan.conditions:
    mine = predictions[predictions["condition"] == condition.name]
    probabilities = mine[columns].to_numpy(float)
    labels = mine["label"].to_numpy(int)
    rows.append(
      dict(
        task="folder",
        net=input_name,
        train_crop="none",
        train_qf="none",
        train_chain="none",
        test_crop=input_name,
        test_grid=8,
        test_qf=condition.qf or "none",
        test_first_qf="none",
        test_resave=condition.resave,
        test_chain=condition.chain,
        **metrics.condition_metrics(probabilities, labels, mine["image_id"].to_numpy()),
      )
    )
    confusions[condition.name] = metrics.confusion_matrix(
      labels, probabilities.argmax(-1), len(class_names)
    )
  return pd.DataFrame(rows, columns=evaluation.RESULT_COLUMNS), confusions


def quality_verdict(table: pd.DataFrame, input_name: str) -> list[str]:
  """Where balanced accuracy falls below `report.FLOOR` as files are saved at lower QFs."""
  rows = table[(table["test_resave"] == "none") & (table["test_chain"] == "none")]
  stored = rows[rows["test_qf"] == "none"]
  saved = rows[rows["test_qf"] != "none"]
  if not len(stored) or not len(saved):
    return []
  saved = saved.assign(q=saved["test_qf"].astype(int)).sort_values("q")
  below = saved[saved["balanced_accuracy"] < report.FLOOR]["q"].tolist()
  a = float(stored.iloc[0]["balanced_accuracy"])
  lowest = saved.iloc[0]
  if not below:
    return [
      f"Stays at or above {report.FLOOR} down to QF {int(lowest['q'])} "
      f"({float(lowest['balanced_accuracy']):.2f}; as stored {a:.2f}; {input_name} input)."
    ]
  return [
    f"Below {report.FLOOR} when files are saved at QF {', '.join(map(str, below))} "
    f"(as stored {a:.2f}; at QF {int(lowest['q'])}: {float(lowest['balanced_accuracy']):.2f}; "
    f"{input_name} input)."
  ]


PAGE = """{head}{verdict}
<p>Made by <code>{command}</code></p>
<p>{about}</p>
<p>Images: {source}: {n_images} test images, seed {seed}, each condition applied
to the whole image. Intervals are 95%, by bootstrap over images.</p>
{sections}
</body></html>
"""


def write(
  out_dir: str,
  predictions: pd.DataFrame,
  draws: pd.DataFrame,
  the_plan,
  class_names: Sequence[str],
  input_name: str,
  about: str,
  source: str,
  seed: int,
  command: str,
  title: str,
  extra_summary: dict | None = None,
  grids: pd.DataFrame | None = None,
) -> dict:
  """Measures `predictions` and writes the page and its tables to `out_dir`
  (report.html, conditions.csv, per_class.csv, resize.csv, stability.csv,
  chain_draws.csv, predictions.csv, summary.json; with `grids`, a table of
  each condition's share of images whose JPEG grid is still found,
  grid_found.csv). Returns the summary (its "verdict": the page's lines;
  "findings": every line measured)."""
  class_names = list(class_names)
  os.makedirs(out_dir, exist_ok=True)
  table, confusions = measure(predictions, the_plan, class_names, input_name)
  classes = report.per_class(table, confusions, the_plan.conditions, class_names)
  verdicts = stability.image_verdicts(
    predictions[probability_columns(class_names)].to_numpy(float),
    predictions["label"].to_numpy(int),
    predictions["image_id"].to_numpy(),
    predictions["condition"].to_numpy(),
  )
  flips = stability.table(verdicts, STORED, class_names)
  profile = dataclasses.replace(the_plan.profile, class_names=tuple(class_names))
  chained = table["test_chain"] != "none"
  grid_rows = the_plan.resize_grid.merge(
    table[(table["test_qf"] == "none") & (table["test_resave"] == "none")],
    on="test_chain",
    how="left",
  )
  protocol_rows = table[table["test_chain"].isin(the_plan.protocols)]
  classes_plain = classes[classes["test_chain"] == "none"]
  stored = table[(table["test_qf"] == "none") & (table["test_resave"] == "none") & ~chained]
  at_chance = stability.at_chance(stored.iloc[0], len(class_names)) if len(stored) else []
  measured = (
    quality_verdict(table[~chained], input_name)
    + report.swap_verdict(
      table[~chained], classes_plain, profile, crop=input_name, unit="whole images"
    )
    + stability.verdict(flips)
    + report.resize_verdict(grid_rows, protocol_rows)
  )
  findings = at_chance or measured  # at chance as stored: the one line the page gives
  table.to_csv(os.path.join(out_dir, "conditions.csv"), index=False)
  classes.to_csv(os.path.join(out_dir, "per_class.csv"), index=False)
  grid_rows.to_csv(os.path.join(out_dir, "resize.csv"), index=False)
  flips.to_csv(os.path.join(out_dir, "stability.csv"), index=False)
  predictions.to_csv(os.path.join(out_dir, "predictions.csv"), index=False)
  rundir.write_atomically(os.path.join(out_dir, evaluation.DRAWS_FILE), draws.to_csv(index=False))
  shown = [
    "test_qf",
    "test_resave",
    "test_chain",
    "balanced_accuracy",
    "balanced_accuracy_low",
    "balanced_accuracy_high",
    "n_images",
  ]
  if len(class_names) == 2:
    shown += ["roc_auc", "roc_auc_low", "roc_auc_high", "average_precision"]
  figures = os.path.join(out_dir, "figures")
  os.makedirs(figures, exist_ok=True)
  quality_rows = table[~chained & (table["test_resave"] == "none")]
  recalls = classes.pivot_table(
    index=["test_qf", "test_resave", "test_chain", "balanced_accuracy"],
    columns="class_name",
    values="recall",
    sort=False,
  ).reset_index()
  recalls.columns = [c if c in table.columns else f"recall {c}" for c in recalls.columns]
  grid_view = grid_rows.pivot_table(
    index="resize_factor", columns="resize_qf", values="balanced_accuracy", sort=False
  ).reset_index()
  grid_view.columns = [
    "resize factor" if c == "resize_factor" else ("not saved" if c == "none" else f"then QF {c}")
    for c in grid_view.columns
  ]
  swap_rows = table[~chained & (table["test_qf"] == "none")]
  chance = 1 / len(class_names)
  sections = [
    report._section(
      "Accuracy against JPEG quality",
      "Each test image saved whole at the test QF (the run's chroma subsampling), "
      "then given to the detector as it takes its input.",
      report._figure(
        plotting.accuracy_by_quality(quality_rows, os.path.join(figures, "quality"), chance)
      ),
      report._table(quality_rows, shown),
    ),
    report._section(
      "Stability: verdicts that flip",
      "For each condition and true class, the share of images whose verdict differs "
      "from their verdict as stored, and the class most of them went to. Accuracy can "
      "hold while many verdicts change. The counts: "
      '<a href="stability.csv">stability.csv</a>.',
      report._figure(plotting.stability_heatmap(flips, os.path.join(figures, "stability")))
      if len(flips)
      else None,
    ),
    report._section(
      "Compression swap: does the detector read how files were saved?",
      "'swap': each image of a less-compressed class saved at a QF drawn from the QFs "
      "the other classes' files are stored at; 'common': every image saved at "
      f"QF {the_plan.common_qf}, the median stored QF.",
      None,
      report._table(swap_rows, shown),
    ),
    report._section(
      "Accuracy on each class",
      "Recall (the share of each class's images called right) under every condition.",
      None,
      report._table(recalls),
    ),
    report._section(
      "Resizing: accuracy against resize factor and QF",
      "Each test image resized whole by the factor (Pillow-exact bicubic, antialiased "
      "when shrinking), then saved at the QF or not saved again.",
      report._figure(
        plotting.accuracy_by_resize(grid_rows, os.path.join(figures, "resize"), chance)
      ),
      report._table(grid_view),
    ),
    report._section(
      "Processing chains and protocols",
      "Published test protocols, applied to every test image: "
      + "; ".join(
        f"<code>{html.escape(t)}</code> = "
        f"<code>{html.escape(chain_syntax.PRESETS.get(t, t))}</code>"
        for t in the_plan.protocols
      )
      + ". What each drew for each image is in chain_draws.csv.",
      None,
      report._table(protocol_rows, shown),
    ),
  ]
  if grids is not None:
    grids.to_csv(os.path.join(out_dir, "grid_found.csv"), index=False)
    sections.append(
      report._section(
        "Is the JPEG grid still there?",
        "Each file's local grid map (bin/grid): the share of images per condition whose "
        "main JPEG grid is still found. A resize or a re-save off the grid erases the "
        "grid a forensic detector may read; a re-save on the grid keeps one.",
        None,
        report._table(grids),
      )
    )
  n_images = int(predictions[predictions["condition"] == STORED]["image_id"].nunique())
  page = PAGE.format(
    head=pages.head(title),
    verdict=pages.verdict(findings),
    command=html.escape(command),
    about=about,
    source=html.escape(source),
    n_images=n_images,
    seed=seed,
    sections="\n".join(sections),
  )
  with open(os.path.join(out_dir, "report.html"), "w") as f:
    f.write(page)
  # "findings": every line measured, also those a detector at chance does not get.
  summary = dict(
    command=command, images=n_images, verdict=findings, findings=measured, **(extra_summary or {})
  )
  with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return summary
