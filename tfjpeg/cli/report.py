"""A JPEG robustness report for any trained classifier: one HTML page and its tables.

    tfjpeg-report --model=runs/RUN --out=reports/RUN                # the run's own test split
    tfjpeg-report --model=detector.keras --class_names=real,fake --images=labelled/ --out=r
    tfjpeg-report --model=runs/RUN/export --task=real_history --out=r
    tfjpeg-report --across=r/seed0,r/seed1,r/seed2 --out=r       # mean and sd over seeds
    tfjpeg-report --model=runs/RUN --out=r --test_chains=corvi2023,'resize:0.5>jpeg:60..90'

(bin/report in a checkout.) The model is a run directory, its exported
SavedModel, or any SavedModel or .keras file mapping uint8 RGB patches to
class probabilities (class names and patch size from its metadata, else from
--class_names and --patch_size). The images are a folder DIR/<class>/... (all
of it is tested) or a registered task's test split. OUT/report.html opens from
disk; OUT holds the tables as CSV.
"""

from absl import flags

from tfjpeg import cli
from tfjpeg import config as config_lib

flags.DEFINE_string("model", None, "Run directory, SavedModel or .keras file.")
flags.DEFINE_list(
  "across",
  None,
  "Instead of a model: report folders (one recipe, several "
  "seeds) whose mean, sd and count go to OUT/across_*.csv.",
)
flags.register_validator(
  "model",
  lambda v: bool(v) != bool(flags.FLAGS.across),
  "give --model, or --across=REPORT,REPORT,...",
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
flags.DEFINE_list(
  "test_chains",
  None,
  "Processing chains or published protocols to put every test image through "
  "(tfjpeg.codec.chain_syntax; default: corvi2023).",
)


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
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
  summary = report.make(
    f.model,
    f.out,
    f.images,
    f.task,
    f.data_dir,
    f.class_names,
    f.patch_size,
    f.patches_per_image,
    f.seed,
    (config_lib.parse("test_qfs", f.test_qfs) if f.test_qfs else report.QUALITIES),
    periods=tuple(int(p) for p in f.offset_periods),
    resize_factors=(
      tuple(_factor(v) for v in f.resize_factors) if f.resize_factors else report.RESIZE_FACTORS
    ),
    resize_qualities=(
      config_lib.parse("test_qfs", f.resize_qfs) if f.resize_qfs else report.RESIZE_QUALITIES
    ),
    test_chains=(
      config_lib.parse("test_chains", f.test_chains) if f.test_chains else report.PROTOCOLS
    ),
  )
  for line in summary["verdict"]:
    print(line)
  print(f"wrote {f.out}/report.html")


def _factor(text):
  try:
    value = float(text)
  except ValueError:
    value = 0.0
  if not value > 0:
    raise config_lib.ConfigError(f"--resize_factors: {text!r} is not a factor greater than 0")
  return value


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
