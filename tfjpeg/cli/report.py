"""A JPEG robustness report for any trained classifier: one HTML page and its tables.

    tfjpeg-report --model=runs/RUN --out=reports/RUN                # the run's own test split
    tfjpeg-report --model=detector.keras --class_names=real,fake --images=labelled/ --out=r
    tfjpeg-report --model=runs/RUN/export --task=real_history --out=r
    tfjpeg-report --across=r/seed0,r/seed1,r/seed2 --out=r       # mean and sd over seeds
    tfjpeg-report --model=runs/RUN --out=r --test_chains=corvi2023,'resize:0.5>jpeg:60..90'

    tfjpeg-report --model=detector.onnx --input=resize --mean=imagenet --std=imagenet \
        --class_names=real,fake --images=labelled/ --out=r     # a PyTorch detector, as ONNX
    tfjpeg-report --scores=scores.csv --degraded=degraded/ --out=r   # anyone's scores

(bin/report in a checkout.) The model is a run directory, its exported
SavedModel, any SavedModel or .keras file, or an ONNX file, mapping images to
class scores (class names and input size from its metadata, else from
--class_names and --patch_size; --input, --layout, --scale, --mean, --std and
--outputs say how it takes images and what it outputs). A model that takes
whole images (--input=resize or centre_crop) gets every condition applied to
the whole image (tfjpeg.analysis.file_report); --scores gives the same page
from the scores of bin/degrade's files. The images are a folder DIR/<class>/... (all
of it is tested) or a registered task's test split. OUT/report.html opens from
disk; OUT holds the tables as CSV.
"""

from absl import flags

from tfjpeg import cli

flags.DEFINE_string("model", None, "Run directory, SavedModel, .keras or .onnx file.")
flags.DEFINE_list(
  "across",
  None,
  "Instead of a model: report folders (one recipe, several "
  "seeds) whose mean, sd and count go to OUT/across_*.csv.",
)
flags.DEFINE_string(
  "scores",
  None,
  "Instead of a model: a CSV of anyone's scores of the files bin/degrade wrote "
  "(path, then score or prob_<class> columns); with --degraded.",
)
flags.DEFINE_string("degraded", None, "The folder bin/degrade wrote, that --scores scores.")
flags.DEFINE_bool(
  "grid_found",
  False,
  "With --scores: also map each degraded file's JPEG grid (bin/grid) and show, per "
  "condition, the share of images whose main grid is still found.",
)
cli.must_exist("scores", "degraded")
flags.register_validator(
  "model",
  lambda v: [bool(v), bool(flags.FLAGS.across), bool(flags.FLAGS.scores)].count(True) == 1,
  "give --model, --across=REPORT,REPORT,... or --scores=CSV --degraded=DIR",
)
flags.register_validator(
  "degraded",
  lambda v: bool(v) == bool(flags.FLAGS.scores),
  "--scores and --degraded go together",
)
flags.DEFINE_string("out", None, "Folder for report.html and its tables.", required=True)
flags.DEFINE_string("images", None, "Labelled images: DIR/<class>/... (all of them tested).")
cli.must_exist("model", "images")
flags.DEFINE_string(
  "task",
  None,
  "Or a registered task, whose test split is used (default for a run directory: its own task).",
)
flags.DEFINE_string("data_dir", None, "The task's data directory, if it needs one.")
flags.DEFINE_list("class_names", None, "For models without metadata: class names in output order.")
flags.DEFINE_integer("patch_size", None, "For models without a fixed input size.")
flags.DEFINE_integer("patches_per_image", None, "Patches per image from --images (default 1).")
flags.DEFINE_integer("seed", None, "Seed of the random crops (default: a run's own, else 0).")
flags.DEFINE_list(
  "test_qfs",
  None,
  "Test QFs of the quality curve; none = as stored (default: none,99,95,90,80,70,60,50).",
)
flags.DEFINE_list("offset_periods", ["8", "16"], "Per-offset sweeps: 8 and/or 16.")
flags.DEFINE_list(
  "resize_factors",
  None,
  "Factors of the resize x QF grid, 1 = as stored (default: 0.25,0.5,0.75,1,1.5,2).",
)
flags.DEFINE_list(
  "resize_qfs",
  None,
  "QFs resized images are then saved at, none = not saved again (default: none,90,75,50).",
)
cli.define_model_flags()
flags.DEFINE_list(
  "test_chains",
  None,
  "Processing chains or published protocols to put every test image through "
  "(tfjpeg.codec.chain_syntax; default: corvi2023).",
)


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.analysis import file_report  # pylint: disable=g-import-not-at-top
  from tfjpeg.analysis import report  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS
  if f.across:
    conditions, sweeps = report.across(f.across, f.out)
    columns = [
      "test_crop",
      "test_qf",
      "test_first_qf",
      "test_resave",
      "balanced_accuracy_mean",
      "balanced_accuracy_sd",
      "n_seeds",
    ]
    print(conditions[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(sweeps.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return
  if f.scores:
    summary = file_report.from_scores(f.scores, f.degraded, f.out, grid_found=f.grid_found)
  else:
    summary = file_report.make_any(
      f.model,
      f.out,
      preprocessing=cli.preprocessing(),
      patches_per_image=f.patches_per_image,
      periods=tuple(int(p) for p in f.offset_periods),
      images_dir=f.images,
      task=f.task,
      data_dir=f.data_dir,
      class_names=f.class_names,
      patch_size=f.patch_size,
      seed=f.seed,
      **cli.condition_grids(f.test_qfs, f.resize_factors, f.resize_qfs, f.test_chains),
    )
  for line in summary["verdict"]:
    print(line)
  print(f"wrote {f.out}/report.html")


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
