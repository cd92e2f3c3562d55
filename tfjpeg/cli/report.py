"""A JPEG robustness report for any trained classifier: one HTML page and its tables.

    tfjpeg-report --model=runs/RUN --out=reports/RUN                # the run's own test split
    tfjpeg-report --model=detector.keras --class_names=real,fake --images=labelled/ --out=r
    tfjpeg-report --model=runs/RUN/export --task=real_history --out=r

(bin/report in a checkout.) The model is a run directory, its exported
SavedModel, or any SavedModel or .keras file mapping uint8 RGB patches to
class probabilities (class names and patch size from its metadata, else from
--class_names and --patch_size). The images are a folder DIR/<class>/... (all
of it is tested) or a registered task's test split. OUT/report.html opens from
disk; OUT holds the tables as CSV.
"""

from absl import flags

from tfjpeg import cli  # first: TensorFlow starts quietly
from tfjpeg import config as config_lib
from tfjpeg import report

flags.DEFINE_string("model", None, "Run directory, SavedModel or .keras file.", required=True)
flags.DEFINE_string("out", None, "Folder for report.html and its tables.", required=True)
flags.DEFINE_string("images", None, "Labelled images: DIR/<class>/... (all of them tested).")
flags.DEFINE_string("task", None, "Or a registered task, whose test split is used (default "
                    "for a run directory: its own task).")
flags.DEFINE_string("data_dir", None, "The task's data directory, if it needs one.")
flags.DEFINE_list("class_names", None, "For models without metadata: class names in output "
                  "order.")
flags.DEFINE_integer("patch_size", None, "For models without a fixed input size.")
flags.DEFINE_integer("patches_per_image", None, "Patches per image from --images (default 1).")
flags.DEFINE_integer("seed", None, "Seed of the random crops (default: a run's own, else 0).")
flags.DEFINE_list("test_qfs", [str(q or "none") for q in report.QUALITIES],
                  "Test QFs of the quality curve; none = as stored.")
flags.DEFINE_list("offset_periods", ["8", "16"], "Per-offset sweeps: 8 and/or 16.")


def main(argv):
  del argv
  f = flags.FLAGS
  summary = report.make(f.model, f.out, f.images, f.task, f.data_dir, f.class_names,
                        f.patch_size, f.patches_per_image, f.seed,
                        config_lib.parse_qfs(",".join(f.test_qfs)),
                        periods=tuple(int(p) for p in f.offset_periods))
  for line in summary["verdict"]:
    print(line)
  print(f"wrote {f.out}/report.html")


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
