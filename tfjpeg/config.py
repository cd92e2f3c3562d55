"""The run configuration: one frozen dataclass, built from a preset plus overrides.

Presets live in `configs/` as Python functions returning a `Config`; binaries
apply flag overrides with `override`, and the resolved config is written to
the run directory before training starts.
"""

import dataclasses
import importlib.util
import json
import os
from typing import Optional
from typing import Tuple

import configs
from tfjpeg.codec import crops
from tfjpeg.data import tasks
from tfjpeg.pipeline import input_pipeline

STRATEGIES = ("default", "mirrored", "multiworker")
# "schedule": the project's loop (fresh crops every epoch, learning-rate cut on
# a validation plateau, early stop, weights chosen by `select`); "baseline":
# the reference plain Keras loop of tfjpeg.train.baseline.
RECIPES = ("schedule", "baseline")
# Which epoch's weights are tested: the best validation loss (the paper's) or the last.
SELECTIONS = ("val_loss", "last")


@dataclasses.dataclass(frozen=True)
class Config:
  experiment: str = ""  # a study's label for the run: "alignment", "quality", ...
  variant: str = ""  # a study's name for the run's recipe, in tables and figures
  # What to learn.
  task: str = tasks.DEFAULT_TASK
  net: str = "hpf"
  weights: str = "none"  # imagenet | none | PATH
  data_dir: Optional[str] = None
  tfds_data_dir: Optional[str] = None
  patch_size: Optional[int] = None  # None: the task's default
  patches_per_image: Optional[int] = None
  test_fraction: float = 0.2  # of source images; the paper's 80/20
  validation_fraction: float = 0.15  # of the rest; the paper's 85/15
  synsets: Optional[Tuple[str, ...]] = None  # imagenet; None: DEFAULT_SYNSETS
  builtin_seed: int = 0  # built-in tasks: the generator's seed (new scenes for another)
  builtin_scenes: Optional[int] = None  # built-in tasks: scenes to generate (None: default)
  # The JPEG conditions of the study.
  lattice_qf: Optional[int] = None  # 100 in the alignment experiment
  lattice_cache: bool = True  # the lattice images computed once (tfjpeg.data.lattice)
  train_crop: str = "random"
  crop_grid: int = 8
  train_qfs: Tuple[int, ...] = ()
  aug_fraction: float = 0.5
  double_qfs: Tuple[int, ...] = ()  # first QFs of double-compression augmentation
  double_fraction: float = 0.5  # of training images, double-compressed
  test_crops: Tuple[str, ...] = ("aligned", "random")
  test_qfs: Tuple[Optional[int], ...] = (None,)
  test_first_qfs: Tuple[Optional[int], ...] = (None,)  # double compression: QF1 before crop
  offset_periods: Tuple[int, ...] = ()  # per-offset sweeps after testing (8 and/or 16)
  # Whole test images re-saved before the crop (tfjpeg.data.audit's compression
  # profile): "swap" (less-compressed classes saved like the others), "common"
  # (every image at one QF). Tested on each test crop, as stored otherwise.
  test_resaves: Tuple[str, ...] = ()
  # Training compression that carries no class information: lossless images
  # saved once as the JPEG files were, then every patch at a shared draw of
  # the dataset's own JPEG QFs (input_pipeline.PipelineConfig.match_qfs).
  match_compression: bool = False
  chroma: str = "4:2:0"
  # The paper's schedule.
  epochs: int = 100
  batch_size: int = 32
  learning_rate: float = 1e-3
  lr_patience: Optional[int] = 10  # None: a constant rate
  lr_factor: float = 0.1
  stop_patience: Optional[int] = 20  # None: no early stop
  recipe: str = "schedule"
  select: str = "val_loss"
  # Training patches mixed across images before batching; None: a whole epoch's,
  # up to input_pipeline.SHUFFLE_BYTES.
  shuffle_buffer: Optional[int] = 1024
  # After each epoch, batch-norm statistics re-estimated over this many
  # training batches (0: Keras's moving averages, as in the paper).
  precise_bn_batches: int = 0
  seed: int = 0
  split_seed: int = 0
  # Where and how it runs.
  strategy: str = "default"
  mixed_precision: bool = False
  steps_per_epoch: Optional[int] = None  # None: one pass over the training patches
  data_service: Optional[str] = None  # tf.data service dispatcher for the JPEG work

  def __post_init__(self):
    if self.train_crop not in crops.MODES:
      raise ValueError(f"train_crop must be one of {crops.MODES}, got {self.train_crop!r}")
    for crop in self.test_crops:
      input_pipeline.parse_test_crop(crop)
    input_pipeline.check_augmentation(self.train_qfs, self.aug_fraction, self.double_qfs,
                                      self.double_fraction)
    for resave in self.test_resaves:
      input_pipeline.Condition(resave=resave)  # refuses what does not exist, naming it
    if self.match_compression and (self.train_qfs or self.double_qfs or self.lattice_qf):
      raise ValueError(input_pipeline.MATCH_ALONE)
    if self.lattice_qf == 0:
      raise ValueError("lattice_qf 0: no lattice compression is None (--lattice_qf=none)")
    if self.recipe not in RECIPES:
      raise ValueError(f"recipe must be one of {RECIPES}, got {self.recipe!r}")
    if self.select not in SELECTIONS:
      raise ValueError(f"select must be one of {SELECTIONS}, got {self.select!r}")
    if self.strategy not in STRATEGIES:
      raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
    for qf in (tuple(self.train_qfs) + tuple(self.double_qfs)
               + tuple(q for q in self.test_qfs + self.test_first_qfs if q)
               + ((self.lattice_qf,) if self.lattice_qf else ())):
      if not 1 <= qf <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {qf}")

  def task_options(self):
    return tasks.TaskOptions(data_dir=self.data_dir, tfds_data_dir=self.tfds_data_dir,
                             patch_size=self.patch_size,
                             patches_per_image=self.patches_per_image,
                             split_seed=self.split_seed, test_fraction=self.test_fraction,
                             validation_fraction=self.validation_fraction,
                             synsets=self.synsets, builtin_seed=self.builtin_seed,
                             num_scenes=self.builtin_scenes)

  def pipeline(self, task, profile=None):
    """The pipeline's settings for `task`; `profile` (tfjpeg.data.audit's
    CompressionProfile of the task's files) supplies the QFs that
    `match_compression` and re-saving test conditions draw from."""
    compression = {}
    if profile is not None:
      compression = dict(swap_qfs=tuple(profile.swap_qfs), common_qf=profile.common_qf)
      if self.match_compression:
        if not profile.match_qfs:
          raise ValueError(f"match_compression: the {task.name} task has no JPEG files, so "
                           "compression carries no class information; train without it")
        compression["match_qfs"] = tuple(profile.match_qfs)
    elif self.match_compression:
      raise ValueError("match_compression needs the task's compression profile")
    return input_pipeline.PipelineConfig(
        patch_size=task.patch_size, patches_per_image=task.patches_per_image,
        # A task read from the lattice cache delivers its images compressed already.
        lattice_qf=None if task.lattice_qf == self.lattice_qf else self.lattice_qf,
        train_crop=self.train_crop, crop_grid=self.crop_grid,
        train_qfs=tuple(self.train_qfs), aug_fraction=self.aug_fraction,
        double_qfs=tuple(self.double_qfs), double_fraction=self.double_fraction,
        chroma=self.chroma,
        batch_size=self.batch_size, seed=self.seed, shuffle_buffer=self.shuffle_buffer,
        data_service=self.data_service, **compression)

  def conditions(self):
    """Test conditions; a test crop names its grid ('aligned16'), else 8."""
    test_crops = [input_pipeline.parse_test_crop(c) for c in self.test_crops]
    return ([input_pipeline.Condition(crop, q, f, grid) for crop, grid in test_crops
             for f in self.test_first_qfs for q in self.test_qfs]
            + [input_pipeline.Condition(crop, grid=grid, resave=r) for crop, grid in test_crops
               for r in self.test_resaves])

  def eval_pipeline(self, task, profile=None):
    """`pipeline` for test patches, which never depend on the training recipe
    (a run trained with `match_compression` is tested on its files as stored)."""
    return dataclasses.replace(self, match_compression=False).pipeline(task, profile)

  @property
  def train_qf_label(self):
    """How results.csv names the training augmentation: none, 50, 50+90, or
    double50+70>90 (double compression: QF1 50 or 70, then QF2 90)."""
    label = "+".join(str(q) for q in self.train_qfs) if self.train_qfs else "none"
    if self.match_compression:
      label = "matched"
    if self.double_qfs:
      label = "double" + "+".join(str(q) for q in self.double_qfs) + ">" + label
    return label

  def to_json(self):
    return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

  @classmethod
  def from_json(cls, text):
    values = json.loads(text)
    for key in ("train_qfs", "double_qfs", "test_crops", "test_qfs", "test_first_qfs",
                "offset_periods", "synsets", "test_resaves"):
      if values.get(key) is not None:
        values[key] = tuple(values[key])
    return cls(**values)


# The default recipe (configs/default.py, configs/real.py), for the small
# datasets a CPU trains on: batch-norm statistics re-estimated over training
# batches after every epoch (their moving averages swung real-photo accuracy
# by 0.2 between epochs), a fixed number of epochs at a constant rate, the
# last epoch's weights (on a handful of validation images the paper's rule
# chose first-epoch weights and cut the rate early), and every patch of an
# epoch shuffled together (a small buffer fills a batch from a few images).
DEFAULT_RECIPE = dict(epochs=6, batch_size=32, select="last", lr_patience=None,
                      stop_patience=None, shuffle_buffer=None, precise_bn_batches=64)
# The paper's rule shortened for a CPU (the built-in studies configs/mini.py
# and configs/grid.py, and the real-photo study's "paper-rule" recipe).
PAPER_RULE_ON_CPU = dict(epochs=6, batch_size=32, lr_patience=2, stop_patience=4)

# The reference baseline (tfjpeg.train.baseline): what a researcher writes outside
# the project, run beside the default recipe by configs/real.py.
BASELINE_RECIPE = dict(recipe="baseline", net="minimal", epochs=6, batch_size=64)


def override(config, **changes):
  """`config` with the non-None `changes` applied (flags left unset change nothing)."""
  return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


def parse_optional_ints(**texts):
  """Flags that take a number or none/auto: {'lr_patience': 'none'} ->
  {'lr_patience': None}, '4' -> 4; flags left unset (None) are left out.
  "none" is the one spelling of "no compression" (None in Config, "none" in
  tables) for `lattice_qf` too."""
  values = {}
  for name, text in texts.items():
    if text is not None:
      values[name] = None if str(text).strip().lower() in ("none", "auto") else int(text)
  return values


def parse_qfs(text, allow_none=True):
  """'none,50,90' -> (None, 50, 90); 'none' -> () for training QFs."""
  values = []
  for part in str(text).split(","):
    part = part.strip().lower()
    if not part:
      continue
    if part == "none":
      if allow_none:
        values.append(None)
      continue
    values.append(int(part))
  return tuple(values)


def preset_path(name_or_path):
  """A preset file: a path as given, or the name of one of configs/ ("default",
  "real"), which is installed with the package."""
  if os.path.exists(name_or_path) or os.sep in name_or_path or name_or_path.endswith(".py"):
    return name_or_path
  return os.path.join(os.path.dirname(configs.__file__), f"{name_or_path}.py")


def load_preset(name_or_path, function="get_config", **kwargs):
  """Runs `function(**kwargs)` of a preset, a file such as configs/default.py
  or its name ("default")."""
  path = preset_path(name_or_path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path} does not exist")
  spec = importlib.util.spec_from_file_location(f"tfjpeg_preset_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, function):
    raise ValueError(f"{path} defines no {function}()")
  return getattr(module, function)(**kwargs)


def default_workdir(config):
  """A workdir named by the settings, so the same command resumes the same run."""
  lattice = f"_lattice{config.lattice_qf}" if config.lattice_qf else ""
  return os.path.join("runs", f"{config.task}_{config.net}_{config.train_crop}{lattice}"
                              f"_qf{config.train_qf_label}_seed{config.seed}")


def saved(workdir):
  """The config a run directory was trained with (its config.json)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} is not a run directory (no config.json)")
  with open(path) as f:
    return Config.from_json(f.read())


def differences(saved_config, config):
  """Names of the fields in which two configs differ, sorted."""
  return sorted(k for k in dataclasses.asdict(config)
                if getattr(saved_config, k) != getattr(config, k))
