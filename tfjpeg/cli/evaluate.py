"""Evaluates a trained run under any test conditions; adds rows to its results.csv.

    tfjpeg-evaluate --workdir=runs/RUN --test_crops=aligned,random --test_qfs=none,50,75
    tfjpeg-evaluate --workdir=runs/RUN --test_crops=random --test_qfs=90 --test_first_qfs=50
    tfjpeg-evaluate --workdir=runs/RUN --test_chains='resize:0.5>jpeg:75,corvi2023'
    tfjpeg-evaluate --workdir=runs/RUN --per_offset [--offset_periods=8,16]

(bin/evaluate in a checkout.) Test conditions default to the run's own.
--per_offset sweeps every grid phase of the test crop instead (offsets_*.csv,
displacement_*.csv, offsets_*.png and offsets_summary.csv in the run); add
--test_crops to evaluate conditions as well.
"""

from absl import flags

from tfjpeg import cli
from tfjpeg import config as config_lib

flags.DEFINE_string("workdir", None, "Run directory of tfjpeg-train.", required=True)
cli.must_exist("workdir")
flags.DEFINE_list("test_crops", None, "Test crops (default: the run's).")
flags.DEFINE_list("test_qfs", None, "Test QFs, none = uncompressed (default: the run's).")
flags.DEFINE_list(
  "test_first_qfs",
  None,
  "Double compression: whole image at each Q1 first, then crop, then each "
  "test QF; none = single (default: the run's).",
)
flags.DEFINE_list(
  "test_chains",
  None,
  "Processing chains every test image goes through whole before the crop "
  "('resize:0.5>jpeg:75', corvi2023; see tfjpeg.codec.chain_syntax); each a condition "
  "of its own beside the run's.",
)
flags.DEFINE_integer(
  "builtin_seed",
  None,
  "Built-in tasks: test (and --per_offset) on data generated with this "
  "seed instead (never seen in training); results go to "
  "WORKDIR/builtin_seed<N>/.",
)
flags.DEFINE_bool(
  "per_offset", False, "Accuracy at every grid phase of the test crop, and the displacement curve."
)
flags.DEFINE_list(
  "offset_periods",
  ["8"],
  "Phases swept per axis, per sweep: 8 (luma blocks) and/or 16 (4:2:0 chroma MCUs).",
)
flags.DEFINE_alias("offset_period", "offset_periods")


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.analysis import evaluation  # pylint: disable=g-import-not-at-top
  from tfjpeg.analysis import offsets  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS

  def qfs(values):
    return config_lib.parse("test_qfs", values) if values else None

  test_crops = tuple(f.test_crops) if f.test_crops else None
  test_chains = config_lib.parse("test_chains", f.test_chains) if f.test_chains else None
  if test_crops or test_chains or not f.per_offset:
    print(
      evaluation.evaluate_run(
        f.workdir,
        test_crops,
        qfs(f.test_qfs),
        qfs(f.test_first_qfs),
        f.builtin_seed,
        test_chains=test_chains,
      ).to_string(index=False)
    )
  if f.per_offset:
    for period in f.offset_periods:
      print(
        offsets.analyse_run(
          f.workdir, int(period), qfs(f.test_qfs), qfs(f.test_first_qfs), f.builtin_seed
        ).to_string(index=False)
      )


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
