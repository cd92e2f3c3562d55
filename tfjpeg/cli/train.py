"""Trains a net on a task under the study's JPEG conditions, then tests it.

    tfjpeg-train                                  # hpf on the built-in camera task
    tfjpeg-train --task=imagenet --net=xception --data_dir=/data/ILSVRC2012 --weights=imagenet
    tfjpeg-train --task=folder --data_dir=photos --patch_size=64 --train_crop=aligned

(bin/train in a checkout.) Settings come from --config (a preset name of
configs/, or a file), then from the flags given on the command line. The
defaults --help shows are the default preset's; another --config brings its
own. Running the same command again resumes the run in its --workdir.

Exit status: 0 done; 1 a one-line refusal (another process writes the run
directory, a checkpoint is unusable, a setting is wrong); 74 a file of the run
could not be written (a full disk, a read-only directory: free space and run
again); 75 stopped by SIGTERM (a scheduler's preemption: run again to resume).
"""

import dataclasses
import sys

from absl import flags

from tfjpeg import cli  # first: TensorFlow starts quietly
from tfjpeg import config as config_lib
from tfjpeg.core import runlock
from tfjpeg.experiments import run as run_lib
from tfjpeg.train import distribute
from tfjpeg.train import preemption
from tfjpeg.train import rundir

EXIT_WRITE_ERROR = 74  # EX_IOERR: a file of the run could not be written
_PRESET = config_lib.load_preset("default")


def _text(value):
  """A config value as a flag default: None -> "none", tuples -> lists."""
  if isinstance(value, tuple):
    return [_text(v) for v in value]
  return "none" if value is None else value


def _qfs(allow_none):
  return lambda values: config_lib.parse_qfs(",".join(values), allow_none=allow_none)


def _optional_int(text):
  return config_lib.parse_optional_ints(value=text)["value"]


# flag name -> (Config field, parse of the flag's value); a flag given on the
# command line overrides the preset, an absent one leaves it.
_FIELDS = {}


def _define(define, name, help_text, parse=None, **kwargs):
  default = _text(getattr(_PRESET, name))
  if "enum_values" in kwargs:
    define(name, default, kwargs.pop("enum_values"), help_text, **kwargs)
  else:
    define(name, default, help_text, **kwargs)
  _FIELDS[name] = parse or (lambda v: v)


flags.DEFINE_string("config", "default", "Preset: a name of configs/ or a file.")
flags.DEFINE_string("workdir", None, "Run directory (default: runs/<settings>).")
_define(flags.DEFINE_string, "task", "Task name (see tfjpeg.data.tasks).")
_define(flags.DEFINE_string, "net", "Net name (see tfjpeg.models.nets).")
_define(flags.DEFINE_string, "weights", "imagenet | none | PATH.")
_define(flags.DEFINE_string, "data_dir", "Folder task root, or a TFDS task's manual directory.",
        lambda v: None if v == "none" else v)
_define(flags.DEFINE_string, "tfds_data_dir", "Where TFDS keeps prepared datasets.",
        lambda v: None if v == "none" else v)
_define(flags.DEFINE_string, "patch_size", "Patch side in pixels (none: the task's).",
        _optional_int)
_define(flags.DEFINE_string, "patches_per_image", "Patches cut from each image (none: the "
        "task's).", _optional_int)
_define(flags.DEFINE_float, "test_fraction", "Fraction of source images for testing.")
_define(flags.DEFINE_float, "validation_fraction", "Fraction of the rest for validation.")
_define(flags.DEFINE_list, "synsets", "imagenet: the synsets to use (none: 16 built in).",
        lambda v: None if v == ["none"] else tuple(v))
_define(flags.DEFINE_enum, "train_crop", "Training crops.",
        enum_values=["aligned", "random", "misaligned"])
_define(flags.DEFINE_list, "test_crops", "Test crops: aligned, random, misaligned, realigned, "
        "aligned16, misaligned16.", tuple)
_define(flags.DEFINE_string, "lattice_qf", "none | Q: compress whole images at Q first.",
        _optional_int)
_define(flags.DEFINE_bool, "lattice_cache", "Keep the lattice images (whole images at "
        "--lattice_qf) as JPEG files in the cache, computed once, instead of every epoch.")
_define(flags.DEFINE_list, "train_qfs", "Augmentation QFs (none: no augmentation).",
        _qfs(allow_none=False))
_define(flags.DEFINE_float, "aug_fraction", "Fraction of training patches compressed.")
_define(flags.DEFINE_list, "double_qfs",
        "Double-compression augmentation: images compressed whole at a Q1, cropped, then "
        "their patches at a --train_qfs.", _qfs(allow_none=False))
_define(flags.DEFINE_float, "double_fraction", "Fraction of training images double-compressed.")
_define(flags.DEFINE_list, "test_qfs", "Test QFs; none = uncompressed.", _qfs(allow_none=True))
_define(flags.DEFINE_list, "test_first_qfs",
        "Also test double compression: whole image at each Q1, then crop, then each "
        "--test_qfs; none = single.", _qfs(allow_none=True))
_define(flags.DEFINE_list, "test_resaves",
        "Also test whole images re-saved before the crop: swap (less-compressed classes "
        "saved at the QFs the others are stored at) and/or common (every image at the median "
        "stored QF).", tuple)
_define(flags.DEFINE_bool, "match_compression",
        "Make compression carry no class information: lossless images saved once as the "
        "JPEG files were, then every training patch saved at a shared draw of the dataset's "
        "own JPEG QFs.")
_define(flags.DEFINE_list, "offset_periods",
        "After testing, sweep every grid phase of the test crop: 8 and/or 16.",
        lambda v: tuple(int(p) for p in v))
_define(flags.DEFINE_integer, "builtin_seed", "Built-in tasks: the generator's seed.")
_define(flags.DEFINE_string, "builtin_scenes", "Built-in tasks: how many scenes or photos "
        "(none: the task's).", _optional_int)
_define(flags.DEFINE_integer, "crop_grid", "Grid of aligned crops: 8, or 16 for 4:2:0 chroma.")
_define(flags.DEFINE_integer, "epochs", "Maximum epochs.")
_define(flags.DEFINE_enum, "recipe", "schedule: the project's loop; baseline: the reference "
        "plain Keras loop.", enum_values=list(config_lib.RECIPES))
_define(flags.DEFINE_enum, "select", "Weights tested: best validation loss (the paper's) or "
        "the last epoch's.", enum_values=list(config_lib.SELECTIONS))
_define(flags.DEFINE_float, "learning_rate", "Adam's starting learning rate.")
_define(flags.DEFINE_string, "lr_patience", "none | N: cut the rate after N epochs without a "
        "better validation loss.", _optional_int)
_define(flags.DEFINE_string, "stop_patience", "none | N: stop after N epochs without a better "
        "validation loss.", _optional_int)
_define(flags.DEFINE_string, "shuffle_buffer", "none | N training patches shuffled together "
        "(none: a whole epoch's, up to 512 MB).", _optional_int)
_define(flags.DEFINE_integer, "precise_bn_batches", "After each epoch, re-estimate batch-norm "
        "statistics over N training batches (0: moving averages).")
_define(flags.DEFINE_integer, "batch_size", "Batch size.")
_define(flags.DEFINE_string, "steps_per_epoch", "none | N: steps per epoch (none: one pass).",
        _optional_int)
_define(flags.DEFINE_integer, "seed", "Seed of every random choice.")
_define(flags.DEFINE_integer, "split_seed", "Seed of the train/validation/test split.")
_define(flags.DEFINE_enum, "strategy", "tf.distribute strategy.",
        enum_values=list(config_lib.STRATEGIES))
_define(flags.DEFINE_bool, "mixed_precision", "mixed_float16 (GPUs).")
_define(flags.DEFINE_string, "data_service",
        "tf.data service dispatcher (grpc://host:port) to run the pipeline on.",
        lambda v: None if v == "none" else v)
flags.DEFINE_integer("cpu_devices", None, "Split the CPU into N logical devices.")
flags.DEFINE_bool("break_lock", False, "Take over a run directory whose lock is held from "
                  "another host (a process there that is gone); on this host a dead "
                  "holder's lock is taken over anyway.")
# The spellings before flags were named after the config fields they set.
flags.DEFINE_alias("train_qf", "train_qfs")
flags.DEFINE_alias("double_qf", "double_qfs")


def given_config(flag_values=flags.FLAGS):
  """The --config preset with the flags given on the command line applied."""
  preset = config_lib.load_preset(flag_values.config)
  return dataclasses.replace(preset, **{name: parse(flag_values[name].value)
                                        for name, parse in _FIELDS.items()
                                        if flag_values[name].present})


def main(argv):
  del argv
  f = flags.FLAGS
  if f.cpu_devices:
    distribute.configure_cpu_devices(f.cpu_devices)
  config = given_config(f)
  try:
    run_lib.train_and_evaluate(config, f.workdir or config_lib.default_workdir(config),
                                break_lock=f.break_lock)
  except (runlock.RunLockedError, rundir.UnusableError) as e:
    sys.exit(f"train: {e}")
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
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
