"""Runs a preset's grid of runs, resumably and in shards, and merges one table.

    tfjpeg-study --config=configs/mini.py
    tfjpeg-study --config=configs/alignment.py --shard=3/8 --data_dirs=vision=/data/VISION,...
    tfjpeg-study --config=configs/mini.py --seeds=0,1,2     # mean and sd over seeds

(bin/study in a checkout.) A finished run is skipped, a broken one resumed.
With --shard=i/n (1-based, as array jobs count) this machine takes runs i,
i+n, ...; run once more without --shard (everything is then skipped) to merge
all shards' runs.
"""

import os

from absl import flags

from tfjpeg import cli
from tfjpeg import config as config_lib

flags.DEFINE_string(
  "config", None, "Study preset: a name of configs/ or a file with get_study().", required=True
)
flags.register_validator(
  "config",
  lambda v: v is None or os.path.exists(config_lib.preset_path(v)),
  f"neither a file nor a preset of configs/ ({', '.join(config_lib.preset_names('get_study'))})",
)
flags.DEFINE_string("study_dir", None, "Where runs and the table go (default studies/<name>).")
flags.DEFINE_string("shard", "1/1", "i/n: this machine's share of the grid.")
flags.DEFINE_list("tasks", None, "Tasks of the grid (default: the preset's).")
flags.DEFINE_list("nets", None, "Nets of the grid (default: the preset's).")
flags.DEFINE_list("data_dirs", [], "task=directory pairs.")
flags.DEFINE_list(
  "seeds",
  None,
  "Repeat every run once per seed (e.g. 0,1,2); summary.csv "
  "then has mean and sd over seeds. Default: the preset's.",
)
flags.DEFINE_bool(
  "new_split_per_seed",
  True,
  "With --seeds, each seed also draws a new train/validation/test split.",
)


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.experiments import study  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS
  grid = {k: tuple(v) for k, v in dict(tasks=f.tasks, nets=f.nets).items() if v}
  preset = config_lib.load_preset(f.config, "get_study", **grid)
  preset = study.with_data_dirs(preset, dict(pair.split("=", 1) for pair in f.data_dirs))
  if f.seeds:
    preset = study.with_seeds(preset, f.seeds, f.new_split_per_seed)
  study_dir = f.study_dir or os.path.join("studies", preset.name)
  table = study.run(preset, study_dir, *study.parse_shard(f.shard))
  if table is not None:
    print(
      f"{len(table)} rows from {table['run'].nunique() if len(table) else 0} runs "
      f"in {study_dir}/table.csv and table.parquet"
    )


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
