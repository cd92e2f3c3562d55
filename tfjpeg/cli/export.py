"""Exports a trained run as a SavedModel (patch and encoded-bytes signatures),
from the run directory alone: no dataset is read.

    tfjpeg-export --workdir=runs/cameras_hpf_random_qfnone_seed0 [--out=DIR]

(bin/export in a checkout.)
"""

from absl import flags

from tfjpeg import cli  # first: TensorFlow starts quietly
from tfjpeg.serving import export

flags.DEFINE_string("workdir", None, "Run directory of tfjpeg-train.", required=True)
flags.DEFINE_string("out", None, "SavedModel directory (default: WORKDIR/export).")


def main(argv):
  del argv
  print(export.export_run(flags.FLAGS.workdir, flags.FLAGS.out))


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
