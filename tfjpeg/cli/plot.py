"""Figures as PNG and PDF: the paper's, from a study table alone; or per-offset
maps and displacement curves, from the offsets_*.csv of tfjpeg-evaluate --per_offset.

    tfjpeg-plot --table=studies/mini/table.csv [--out_dir=DIR] [--metric=balanced_accuracy]
    tfjpeg-plot --offsets=RUN_A/offsets_qfnone.csv,RUN_B/offsets_qfnone.csv \
        --labels="train aligned,train random" --out=docs/offsets

(bin/plot in a checkout.)
"""

from absl import flags

from tfjpeg import cli

flags.DEFINE_string("table", None, "table.csv or table.parquet of tfjpeg-study.")
flags.DEFINE_string("out_dir", None, "Where study figures go (default: beside the table).")
flags.DEFINE_string("metric", "balanced_accuracy", "Column to plot.")
flags.DEFINE_list("offsets", None, "offsets_*.csv files of tfjpeg-evaluate --per_offset.")
cli.must_exist("table", "offsets")
flags.DEFINE_list("labels", None, "A label for each --offsets file (default: its run).")
flags.DEFINE_string(
  "out", None, "Output path without extension for --offsets (default: beside the first file)."
)
flags.register_validator("table", lambda v: v or flags.FLAGS.offsets, "give --table or --offsets")


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.analysis import offsets  # pylint: disable=g-import-not-at-top
  from tfjpeg.experiments import study  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS
  paths = []
  if f.table:
    paths += study.figures(f.table, f.out_dir, f.metric)
  if f.offsets:
    paths += offsets.figure_from_files(f.offsets, f.labels, f.out, f.metric)
  for path in paths:
    print(path)


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
