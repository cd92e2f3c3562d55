"""Exports a trained run as a SavedModel (patch and encoded-bytes signatures)
or as an ONNX file, from the run directory alone: no dataset is read.

    tfjpeg-export --workdir=runs/cameras_hpf_random_qfnone_seed0 [--out=DIR]
    tfjpeg-export --workdir=runs/RUN --format=onnx [--out=FILE.onnx]

(bin/export in a checkout.)
"""

from absl import flags

from tfjpeg import cli

flags.DEFINE_string("workdir", None, "Run directory of tfjpeg-train.", required=True)
cli.must_exist("workdir")
flags.DEFINE_string(
  "out", None, "SavedModel directory or ONNX file (default: WORKDIR/export, WORKDIR/model.onnx)."
)
flags.DEFINE_enum(
  "format",
  "savedmodel",
  ["savedmodel", "onnx"],
  "savedmodel, or onnx: float32 0..255 NHWC patches in, probabilities out, with the "
  "run's class names, patch size and config in its metadata.",
)


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.serving import export  # pylint: disable=g-import-not-at-top

  del argv
  print(export.export_run(flags.FLAGS.workdir, flags.FLAGS.out, flags.FLAGS.format))


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
