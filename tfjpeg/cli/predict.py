"""Predicts the class of image files with a trained model.

    tfjpeg-predict --model=runs/RUN photos/ more.jpg --out=predictions.csv
    tfjpeg-predict --model=runs/RUN/export labelled/ --patches=random --num_patches=16
    tfjpeg-predict --model=detector.keras --class_names=real,fake --patch_size=224 labelled/
    tfjpeg-predict --model=detector.onnx --input=resize degraded/ --runner=beam   # on Apache Beam

(bin/predict in a checkout.) The model is a run directory, its exported
SavedModel, any SavedModel or .keras file, or an ONNX file (class names and
input size from flags when it carries none; --input, --layout, --scale,
--mean, --std, --outputs: how it takes images, as in tfjpeg-report). A model
taking whole images (--input=resize or centre_crop) scores each file once. A
folder holding class-named subfolders (labelled/<class>/...) is scored:
balanced accuracy, and ROC AUC and average precision for two-class models.
"""

from absl import app
from absl import flags

from tfjpeg import cli

flags.DEFINE_string(
  "model", None, "Run directory, SavedModel, .keras or .onnx file.", required=True
)
cli.must_exist("model")
flags.DEFINE_string("out", "predictions.csv", "CSV with one row per file.")
flags.DEFINE_enum(
  "patches",
  "grid",
  ["grid", "realigned", "random"],
  "Patch placement: tiled from the top-left, tiled from the estimated JPEG grid, or random.",
)
flags.DEFINE_integer("num_patches", 8, "Patches per image with --patches=random.")
flags.DEFINE_string("patch_scores", None, "Also write every patch's scores to this CSV.")
flags.DEFINE_integer("seed", 0, "Seed of random placement.")
flags.DEFINE_list("class_names", None, "For models without metadata: class names in output order.")
flags.DEFINE_integer("patch_size", None, "For models without a fixed input size.")
cli.define_model_flags()
cli.define_runner_flags("the scoring")


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.serving import predict  # pylint: disable=g-import-not-at-top

  if len(argv) < 2:
    raise app.UsageError("name at least one image file or folder")
  f = flags.FLAGS
  summary = predict.run(
    f.model,
    argv[1:],
    f.out,
    f.patches,
    f.num_patches,
    f.patch_scores,
    f.seed,
    class_names=f.class_names,
    patch_size=f.patch_size,
    preprocessing=cli.preprocessing(),
    runner=f.runner,
    beam_options=f.beam_options,
  )
  print(f"wrote {f.out}")
  for key, value in summary.items():
    print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
