"""Trains a net on a task under the study's JPEG conditions, then tests it.

    tfjpeg-train                                  # hpf on the built-in camera task
    tfjpeg-train --task=imagenet --net=xception --data_dir=/data/ILSVRC2012 --weights=imagenet
    tfjpeg-train --task=folder --data_dir=photos --patch_size=64 --train_crop=aligned

(bin/train in a checkout.) Settings come from --config (a preset name of
configs/, or a file), then from the flags given on the command line. Every
setting of tfjpeg.config is a flag of its name; --help shows the default
preset's values, `--config=X --help` those of preset X. Running the same
command again resumes the run in its --workdir.

Exit status: 0 done; 1 a one-line refusal (another process writes the run
directory, a checkpoint is unusable, a setting is wrong); 74 a file of the run
could not be written (a full disk, a read-only directory: free space and run
again); 75 stopped by SIGTERM (a scheduler's preemption: run again to resume).
"""

import sys

from absl import flags

from tfjpeg import cli
from tfjpeg import config as config_lib

EXIT_WRITE_ERROR = 74  # EX_IOERR: a file of the run could not be written

flags.DEFINE_string(
  "config",
  "default",
  f"Preset: a name of configs/ ({', '.join(config_lib.preset_names())}) or a file.",
)
flags.DEFINE_string("workdir", None, "Run directory (default: runs/<settings>).")
cli.define_config_flags(config_lib.load_preset("default"), __name__)
flags.DEFINE_integer("cpu_devices", None, "Split the CPU into N logical devices.")
flags.DEFINE_bool(
  "break_lock",
  False,
  "Take over a run directory whose lock is held from "
  "another host (a process there that is gone); on this host a dead "
  "holder's lock is taken over anyway.",
)
# The spellings before flags were named after the config fields they set.
flags.DEFINE_alias("train_qf", "train_qfs")
flags.DEFINE_alias("double_qf", "double_qfs")


def main(argv):
  del argv
  f = flags.FLAGS
  config = cli.config_from_flags(f)
  config_lib.check_runnable(config)  # net, task, patch: before TensorFlow starts
  # The library after the checks: TensorFlow starts only for a valid command.
  from tfjpeg.experiments import run as run_lib  # pylint: disable=g-import-not-at-top
  from tfjpeg.train import distribute  # pylint: disable=g-import-not-at-top
  from tfjpeg.train import preemption  # pylint: disable=g-import-not-at-top
  from tfjpeg.train import rundir  # pylint: disable=g-import-not-at-top

  if f.cpu_devices:
    distribute.configure_cpu_devices(f.cpu_devices)
  try:
    run_lib.train_and_evaluate(
      config, f.workdir or config_lib.default_workdir(config), break_lock=f.break_lock
    )
  except preemption.Preempted as e:
    cli.exit_now(f"train: {e}", preemption.EXIT_PREEMPTED)
  except rundir.WriteError as e:
    # At once: h5py, left holding a half-written file, can crash the interpreter's
    # teardown (a segmentation fault after pages of tracebacks).
    cli.exit_now(f"train: {e}", EXIT_WRITE_ERROR)
  except OSError as e:  # any other file the run writes (its lock, figures, summaries)
    if e.errno not in rundir.WRITE_ERRNOS:
      raise
    cli.exit_now(f"train: {rundir.write_error(e.filename or f.workdir, e)}", EXIT_WRITE_ERROR)


def run():
  cli.show_preset_defaults(sys.argv)
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
