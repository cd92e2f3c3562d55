"""The run configuration: one frozen, nested config, and the presets that make it.

    config = tfjpeg.config.make(task="cameras", net="hpf", train_qfs=(50,), epochs=6)
    config.jpeg.train_qfs, config.schedule.epochs      # each setting lives in one section
    tfjpeg.config.replace(config, epochs=10)           # changed by its flag name

A `Config` holds a few top-level settings (the net and its weights, a study's
labels) and five sections: `task` (what to learn from), `jpeg` (the training
side's JPEG conditions), `test` (the test conditions), `schedule` (the
training recipe) and `runtime` (where it runs). The task builders take
`config.task` and the pipeline takes `config.jpeg` as they are: nothing is
copied field by field.

Every setting has one flat name, the flag users know (`--task`, `--train_crop`,
`--test_qfs`, `--epochs`): `FIELDS` lists them with their section, type, help
and allowed values; the binaries generate their flags from it, `make` and
`replace` take these names, and `parse` reads a flag's text into a value,
refusing a wrong one with a `ConfigError` that names the flag.

Presets live in the repository's `configs/` (installed with the package as
`tfjpeg.presets`) as Python functions returning a `Config`. This module
imports no TensorFlow, so flags are checked before it starts.

May import: tfjpeg.core (the layer below); nothing imports TensorFlow here.
"""

import dataclasses
import importlib.util
import json
import os
import pathlib
import re
from collections.abc import Callable
from typing import Any

from tfjpeg.codec import chain_syntax
from tfjpeg.core.errors import ConfigError
from tfjpeg.core.errors import MissingError

# The vocabulary of settings, shared by the codec, the pipeline and the flags.
CROP_MODES = ("aligned", "random", "misaligned")
# Test-only crop: the random crop moved onto the JPEG grid estimated from the
# test image's own pixels (tfjpeg.codec.grid), kept where no grid is found.
REALIGNED = "realigned"
TEST_CROPS = CROP_MODES + (REALIGNED,)
GRID_CROPS = ("aligned", "misaligned")  # the crops placed against a grid of 8 or 16
RESAVES = ("none", "swap", "common")
CHROMAS = ("4:2:0", "4:4:4")
STRATEGIES = ("default", "mirrored", "multiworker")
# "schedule": the project's loop (fresh crops every epoch, learning-rate cut on
# a validation plateau, early stop, weights chosen by `select`); "baseline":
# the reference plain Keras loop of tfjpeg.train.baseline.
RECIPES = ("schedule", "baseline")
# Which epoch's weights are tested: the best validation loss (the paper's) or the last.
SELECTIONS = ("val_loss", "last")
# Shift invariance by construction (tfjpeg.models.antialias): none, BlurPool
# (Zhang 2019) or adaptive polyphase sampling (Chaman and Dokmanić 2021).
ANTIALIAS = ("none", "blur", "aps")
MAX_ANTIALIAS_FILTER = 16
MATCH_ALONE = (
  "match_compression sets every training image's compression itself: it cannot "
  "be combined with train_qfs, double_qfs or lattice_qf"
)


# The registered nets by name, with the smallest patch side each takes, and the
# registered tasks by name, with the patch side each cuts by default: what a
# run is checked against while its flags are parsed, before anything that
# imports TensorFlow loads or a run directory is written.
# tfjpeg.models.nets.NETS and tfjpeg.data.tasks.TASKS take these from here.
NET_MIN_PATCH = {
  "efficientnetb0": 32,
  "efficientnetb4": 32,
  "resnet50": 32,
  "xception": 71,
  "bondi": 64,
  "bayar": 64,
  "hpf": 64,
  "plain": 64,
  "minimal": 64,
}
TASK_PATCH = {
  "cameras": 64,
  "cameras_random_cfa": 64,
  "shapes": 64,
  "generated": 64,
  "generated_confounded": 64,
  "real_history": 64,
  "real_cameras": 64,
  "folder": 224,
  "vision": 512,
  "gan": 224,
  "imagenet": 224,
  "lsun": 224,
}


def _setting(default, help_text, flag=None, choices=None, kind=None, factory=False):
  """A dataclass field with what its flag needs: help, allowed values, and
  `kind` (how its text is read: "qf", "qfs", "optional_qfs", ...; default: by type)."""
  metadata = dict(help=help_text, flag=flag, choices=choices, kind=kind)
  return dataclasses.field(default=default, metadata=metadata)


def parse_factor(flag: str, text: str) -> float:
  """A resize factor from a flag's text: a number greater than 0."""
  try:
    value = float(text)
  except ValueError:
    value = 0.0
  if not value > 0:
    raise ConfigError(f"--{flag}: {text!r} is not a factor greater than 0")
  return value


def check_test_crop(text):
  """'aligned16' -> ('aligned', 16); 'misaligned' -> ('misaligned', 8)."""
  match = re.fullmatch(r"([a-z]+?)(8|16)?", str(text).strip())
  crop, grid = (match.group(1), int(match.group(2) or 8)) if match else (str(text), 8)
  if crop not in TEST_CROPS:
    raise ConfigError(
      f"test crop {text!r} is none of {', '.join(TEST_CROPS)} (aligned and "
      "misaligned may end in 16: aligned16)"
    )
  if grid != 8 and crop not in GRID_CROPS:
    raise ConfigError(
      f"test crop {text!r}: only {' and '.join(GRID_CROPS)} crops take a grid of 16"
    )
  return crop, grid


def _check_qf(name, qf):
  if isinstance(qf, bool) or not isinstance(qf, int) or not 1 <= qf <= 100:
    raise ConfigError(f"{name}: {qf!r} is not a JPEG quality in 1..100")


def _check_fraction(name, value, below_one=False):
  """A fraction in [0, 1], or in [0, 1) with `below_one` (a split's share:
  something must be left for training)."""
  if not (0.0 <= value < 1.0 if below_one else 0.0 <= value <= 1.0):
    raise ConfigError(f"{name}: {value} is not a fraction in {'[0, 1)' if below_one else '[0, 1]'}")


def _check_positive(name, value, allow_none=True):
  if value is None and allow_none:
    return
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ConfigError(f"{name}: {value!r} is not a positive whole number")


def _check_choice(name, value, choices):
  if value not in choices:
    raise ConfigError(f"{name}: {value!r} is none of {', '.join(map(str, choices))}")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
  """What to learn from: a registered task and the choices it leaves open."""

  name: str = _setting("cameras", "Task (bin/show_task lists them).", flag="task")
  data_dir: str | None = _setting(None, "Folder task root, or a TFDS task's manual directory.")
  tfds_data_dir: str | None = _setting(None, "Where TFDS keeps prepared datasets.")
  patch_size: int | None = _setting(None, "Patch side in pixels (none: the task's).")
  patches_per_image: int | None = _setting(None, "Patches cut from each image (none: the task's).")
  test_fraction: float = _setting(0.2, "Fraction of source images for testing (the paper's 80/20).")
  validation_fraction: float = _setting(
    0.15, "Fraction of the rest for validation (the paper's 85/15)."
  )
  split_seed: int = _setting(0, "Seed of the train/validation/test split.")
  synsets: tuple[str, ...] | None = _setting(
    None, "imagenet: the synsets to use (none: 16 built in)."
  )
  builtin_seed: int = _setting(0, "Built-in tasks: the generator's seed (new scenes for another).")
  builtin_scenes: int | None = _setting(
    None, "Built-in tasks: how many scenes or photos (none: the task's)."
  )
  image_size: int | None = _setting(
    None, "Built-in tasks: image side in pixels (none: the task's)."
  )

  def __post_init__(self):
    if not self.name:
      raise ConfigError("task: a task name is needed")
    for name in ("patch_size", "patches_per_image", "builtin_scenes", "image_size"):
      _check_positive(name, getattr(self, name))
    _check_fraction("test_fraction", self.test_fraction, below_one=True)
    _check_fraction("validation_fraction", self.validation_fraction, below_one=True)


@dataclasses.dataclass(frozen=True)
class JpegConfig:
  """The JPEG conditions of training: the lattice, crops and augmentation."""

  lattice_qf: int | None = _setting(
    None,
    "none | Q: compress whole images at Q first (100 in the alignment experiment).",
    kind="optional_qf",
  )
  lattice_cache: bool = _setting(
    True,
    "Keep the lattice images (whole images at "
    "--lattice_qf) as JPEG files in the cache, computed once.",
  )
  train_crop: str = _setting("random", "Training crops.", choices=CROP_MODES)
  crop_grid: int = _setting(
    8,
    "Grid of aligned crops: 8 (blocks), or 16: the chroma MCU of each image as cut "
    "(16x16 at 4:2:0, 8 high x 16 wide at 4:2:2, 16 x 8 at 4:4:0).",
    choices=(8, 16),
  )
  train_qfs: tuple[int, ...] = _setting((), "Augmentation QFs (none: no augmentation).", kind="qfs")
  aug_fraction: float = _setting(0.5, "Fraction of training patches compressed.")
  double_qfs: tuple[int, ...] = _setting(
    (),
    "Double-compression augmentation: images "
    "compressed whole at a Q1, cropped, then their "
    "patches at a --train_qfs.",
    kind="qfs",
  )
  double_fraction: float = _setting(0.5, "Fraction of training images double-compressed.")
  match_compression: bool = _setting(
    False,
    "Make compression carry no class information: "
    "lossless images saved once as the JPEG files were, then "
    "every training patch saved at a shared draw of the "
    "dataset's own JPEG QFs.",
  )
  chroma: str = _setting(
    "4:2:0", "Chroma subsampling of every JPEG the pipeline writes.", choices=CHROMAS
  )
  train_chain: str = _setting(
    "none",
    "A processing chain every training image goes through whole, before the crop "
    "(steps crop, resize, blur, jpeg with ranges and @probabilities: "
    "'resize:0.5..1.5>jpeg:65..100@0.5', or a preset: wang2020_blur_jpeg_0.5; "
    "none: no chain).",
    kind="chain",
  )

  def __post_init__(self):
    # Kept in canonical form, so that one chain has one name in tables.
    canonical = chain_syntax.parse(self.train_chain, "train_chain").text
    object.__setattr__(self, "train_chain", canonical)
    _check_choice("train_crop", self.train_crop, CROP_MODES)
    _check_choice("crop_grid", self.crop_grid, (8, 16))
    _check_choice("chroma", self.chroma, CHROMAS)
    if self.lattice_qf == 0:
      raise ConfigError(
        "lattice_qf: 0 is not a JPEG quality; no lattice compression is none (--lattice_qf=none)"
      )
    if self.lattice_qf is not None:
      _check_qf("lattice_qf", self.lattice_qf)
    for name in ("train_qfs", "double_qfs"):
      for qf in getattr(self, name):
        _check_qf(name, qf)
    _check_fraction("aug_fraction", self.aug_fraction)
    _check_fraction("double_fraction", self.double_fraction)
    if self.double_qfs and not self.train_qfs:
      raise ConfigError(
        "double-compression augmentation (double_qfs) needs train_qfs: "
        "the QFs its patches are saved at the second time"
      )
    if self.match_compression and (self.train_qfs or self.double_qfs or self.lattice_qf):
      raise ConfigError(MATCH_ALONE)

  @property
  def train_qf_label(self):
    """How results.csv names the training augmentation: none, 50, 50+90,
    matched, or double50+70>90 (double compression: QF1 50 or 70, then QF2 90)."""
    label = "+".join(str(q) for q in self.train_qfs) if self.train_qfs else "none"
    if self.match_compression:
      label = "matched"
    if self.double_qfs:
      label = "double" + "+".join(str(q) for q in self.double_qfs) + ">" + label
    return label


@dataclasses.dataclass(frozen=True)
class TestConfig:
  """The test conditions every run is scored under."""

  __test__ = False  # not a pytest test class, whatever its name
  crops: tuple[str, ...] = _setting(
    ("aligned", "random"),
    "Test crops: aligned, random, misaligned, realigned, aligned16, misaligned16.",
    flag="test_crops",
    kind="test_crops",
  )
  qfs: tuple[int | None, ...] = _setting(
    (None,), "Test QFs; none = as stored.", flag="test_qfs", kind="optional_qfs"
  )
  first_qfs: tuple[int | None, ...] = _setting(
    (None,),
    "Also test double compression: whole image at each Q1, then crop, then each "
    "--test_qfs; none = single.",
    flag="test_first_qfs",
    kind="optional_qfs",
  )
  resaves: tuple[str, ...] = _setting(
    (),
    "Also test whole images re-saved before the crop: "
    "swap (less-compressed classes saved at the QFs the "
    "others are stored at) and/or common (every image at the "
    "median stored QF).",
    flag="test_resaves",
    choices=RESAVES[1:],
  )
  offset_periods: tuple[int, ...] = _setting(
    (), "After testing, sweep every grid phase of the test crop: 8 and/or 16.", choices=(8, 16)
  )
  chains: tuple[str, ...] = _setting(
    (),
    "Also test whole images put through each processing chain before the crop "
    "('resize:0.5>jpeg:75', corvi2023; tfjpeg.codec.chain_syntax), comma-separated.",
    flag="test_chains",
    kind="chains",
  )

  def __post_init__(self):
    canonical = tuple(chain_syntax.parse(c, "test_chains").text for c in self.chains)
    object.__setattr__(self, "chains", canonical)
    for crop in self.crops:
      check_test_crop(crop)
    for name in ("qfs", "first_qfs"):
      for qf in getattr(self, name):
        if qf is not None:
          _check_qf(f"test_{name}", qf)
    for resave in self.resaves:
      _check_choice("test_resaves", resave, RESAVES[1:])
    for period in self.offset_periods:
      _check_choice("offset_periods", period, (8, 16))


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
  """The training recipe: the paper's schedule by default."""

  recipe: str = _setting(
    "schedule",
    "schedule: the project's loop; baseline: the reference plain Keras loop.",
    choices=RECIPES,
  )
  epochs: int = _setting(100, "Maximum epochs.")
  batch_size: int = _setting(32, "Batch size.")
  learning_rate: float = _setting(1e-3, "Adam's starting learning rate.")
  lr_patience: int | None = _setting(
    10, "none | N: cut the rate after N epochs without a better validation loss."
  )
  lr_factor: float = _setting(0.1, "What the rate is multiplied by at a cut.")
  stop_patience: int | None = _setting(
    20, "none | N: stop after N epochs without a better validation loss."
  )
  select: str = _setting(
    "val_loss",
    "Weights tested: best validation loss (the paper's) or the last epoch's.",
    choices=SELECTIONS,
  )
  # Training patches mixed across images before batching; None: a whole epoch's,
  # up to tfjpeg.pipeline.input_pipeline.SHUFFLE_BYTES.
  shuffle_buffer: int | None = _setting(
    1024, "none | N training patches shuffled together (none: a whole epoch's, up to 512 MB)."
  )
  # After each epoch, batch-norm statistics re-estimated over this many
  # training batches (0: Keras's moving averages, as in the paper).
  precise_bn_batches: int = _setting(
    0,
    "After each epoch, re-estimate batch-norm statistics "
    "over N training batches (0: moving averages).",
  )
  seed: int = _setting(0, "Seed of every random choice.")
  steps_per_epoch: int | None = _setting(None, "none | N: steps per epoch (none: one pass).")

  def __post_init__(self):
    _check_choice("recipe", self.recipe, RECIPES)
    _check_choice("select", self.select, SELECTIONS)
    for name in ("epochs", "batch_size"):
      _check_positive(name, getattr(self, name), allow_none=False)
    for name in ("lr_patience", "stop_patience", "shuffle_buffer", "steps_per_epoch"):
      _check_positive(name, getattr(self, name))
    if not self.learning_rate > 0:
      raise ConfigError(f"learning_rate: {self.learning_rate} is not positive")
    if self.precise_bn_batches < 0:
      raise ConfigError(f"precise_bn_batches: {self.precise_bn_batches} is negative")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
  """Where and how a run executes."""

  strategy: str = _setting("default", "tf.distribute strategy.", choices=STRATEGIES)
  mixed_precision: bool = _setting(False, "mixed_float16 (GPUs).")
  data_service: str | None = _setting(
    None, "tf.data service dispatcher (grpc://host:port) to run the pipeline on."
  )

  def __post_init__(self):
    _check_choice("strategy", self.strategy, STRATEGIES)


SECTIONS = {
  "task": TaskConfig,
  "jpeg": JpegConfig,
  "test": TestConfig,
  "schedule": ScheduleConfig,
  "runtime": RuntimeConfig,
}


@dataclasses.dataclass(frozen=True)
class Config:
  """A run: the net and five sections. Build one with `make`, change it with `replace`."""

  net: str = _setting("hpf", "Net (bin/train --net=... ; tfjpeg.models.nets.NETS).")
  weights: str = _setting("none", "imagenet | none | PATH of a weights file.")
  antialias: str = _setting(
    "none",
    "Downsampling that cannot see the grid: none; blur (each strided layer at stride 1, "
    "a binomial blur, then subsampling: Zhang 2019); aps (adaptive polyphase sampling, "
    "each image's component of largest norm: Chaman and Dokmanic 2021; circular padding "
    "in the compact nets, exactly invariant to circular shifts).",
    choices=ANTIALIAS,
  )
  antialias_filter: int = _setting(
    4, "--antialias=blur: taps of the binomial blur (Zhang's default 4: [1, 3, 3, 1])."
  )
  experiment: str = _setting("", "A study's label for the run: alignment, quality, ...")
  variant: str = _setting("", "A study's name for the run's recipe, in tables and figures.")
  task: TaskConfig = dataclasses.field(default_factory=TaskConfig)
  jpeg: JpegConfig = dataclasses.field(default_factory=JpegConfig)
  test: TestConfig = dataclasses.field(default_factory=TestConfig)
  schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
  runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

  def __post_init__(self):
    if not self.net:
      raise ConfigError("net: a net name is needed")
    _check_choice("antialias", self.antialias, ANTIALIAS)
    filter_size = self.antialias_filter
    if (
      isinstance(filter_size, bool)
      or not isinstance(filter_size, int)
      or not (1 <= filter_size <= MAX_ANTIALIAS_FILTER)
    ):
      raise ConfigError(
        f"antialias_filter: {filter_size!r} is not a whole number in 1..{MAX_ANTIALIAS_FILTER}"
      )
    for name, section in SECTIONS.items():
      if not isinstance(getattr(self, name), section):
        raise ConfigError(
          f"{name}: expected a {section.__name__}, got {type(getattr(self, name)).__name__}"
        )

  @property
  def train_qf_label(self):
    return self.jpeg.train_qf_label

  def flat(self) -> dict:
    """{flag name: value} of every setting, in the order of `FLAT_ORDER` (the
    columns of a study's table)."""
    values = {field.flag: field.get(self) for field in FIELDS}
    return {flag: values[flag] for flag in FLAT_ORDER}

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "Config":
    """A config from its JSON: this version's nested form, or the flat form
    runs wrote before the sections (read by flag name)."""
    values = json.loads(text)
    if not isinstance(values, dict):
      raise ConfigError("a config's JSON must be an object")
    if isinstance(values.get("task"), dict):
      flat = {k: v for k, v in values.items() if k not in SECTIONS}
      for name in SECTIONS:
        for key, value in values.get(name, {}).items():
          flat[_BY_ATTRIBUTE[(name, key)].flag if (name, key) in _BY_ATTRIBUTE else key] = value
      values = flat
    return make(**{k: _from_json_value(k, v) for k, v in values.items()})


@dataclasses.dataclass(frozen=True)
class Field:
  """One setting: its flag name, where it lives, its type and its help."""

  flag: str
  section: str | None  # None: a top-level setting of Config
  attribute: str
  kind: str  # str, int, float, bool, optional_int, optional_str, qf..., strs, ints
  help: str
  choices: tuple | None = None
  default: Any = None

  def get(self, config):
    holder = getattr(config, self.section) if self.section else config
    return getattr(holder, self.attribute)


_KINDS = {
  str: "str",
  int: "int",
  float: "float",
  bool: "bool",
  int | None: "optional_int",
  str | None: "optional_str",
  tuple[str, ...]: "strs",
  tuple[int, ...]: "ints",
  tuple[str, ...] | None: "optional_strs",
}


def _kind(field):
  return field.metadata.get("kind") or _KINDS[field.type]


def _fields():
  found = []
  for section, cls in [(None, Config)] + list(SECTIONS.items()):
    for field in dataclasses.fields(cls):
      if section is None and field.name in SECTIONS:
        continue
      found.append(
        Field(
          flag=field.metadata.get("flag") or field.name,
          section=section,
          attribute=field.name,
          kind=_kind(field),
          help=field.metadata.get("help", ""),
          choices=field.metadata.get("choices"),
          default=field.default,
        )
      )
  return tuple(found)


FIELDS = _fields()
BY_FLAG = {field.flag: field for field in FIELDS}
# The order of settings as columns (that of the flat config before sections,
# then settings added since), so that study tables keep their layout.
_OLD_ORDER = (
  "experiment variant task net weights data_dir tfds_data_dir patch_size patches_per_image "
  "test_fraction validation_fraction synsets builtin_seed builtin_scenes lattice_qf "
  "lattice_cache train_crop crop_grid train_qfs aug_fraction double_qfs double_fraction "
  "test_crops test_qfs test_first_qfs offset_periods test_resaves match_compression chroma "
  "epochs batch_size learning_rate lr_patience lr_factor stop_patience recipe select "
  "shuffle_buffer precise_bn_batches seed split_seed strategy mixed_precision "
  "steps_per_epoch data_service"
).split()
FLAT_ORDER = tuple(_OLD_ORDER) + tuple(f.flag for f in FIELDS if f.flag not in _OLD_ORDER)
_BY_ATTRIBUTE = {(field.section, field.attribute): field for field in FIELDS}
assert len(BY_FLAG) == len(FIELDS), "two settings share a flag name"


def check_runnable(config: Config) -> None:
  """Refuses, in one line, a config no run can start from: an unregistered
  net or task, or a patch smaller than the net takes. Checked while flags are
  parsed and again when a run starts, before anything is written (a config
  that only labels a model, as the robustness report's does, need not be
  runnable)."""
  if config.net not in NET_MIN_PATCH:
    raise ConfigError(
      f"--net: {config.net!r} is no registered net ({', '.join(sorted(NET_MIN_PATCH))})"
    )
  if config.task.name not in TASK_PATCH:
    raise ConfigError(
      f"--task: {config.task.name!r} is no registered task ({', '.join(sorted(TASK_PATCH))})"
    )
  patch = config.task.patch_size or TASK_PATCH[config.task.name]
  given = "--patch_size" if config.task.patch_size else f"the {config.task.name} task's patch"
  if patch < NET_MIN_PATCH[config.net]:
    raise ConfigError(
      f"--net: {config.net} needs patches of at least {NET_MIN_PATCH[config.net]} pixels, "
      f"but {given} is {patch}"
    )
  for flag, texts in (
    ("train_chain", (config.jpeg.train_chain,)),
    ("test_chains", config.test.chains),
  ):
    for text in texts:
      largest = chain_syntax.largest_output(chain_syntax.parse(text))
      if largest is not None and min(largest) < patch:
        raise ConfigError(
          f"--{flag}: {text} leaves images of at most {largest[0]}x{largest[1]} pixels, "
          f"smaller than {given} ({patch}): give a smaller --patch_size or drop it"
        )


def _from_json_value(flag, value):
  if isinstance(value, list):
    return tuple(value)
  return value


def make(**settings: Any) -> Config:
  """A Config from settings by flag name (`task="cameras"`, `epochs=6`); the
  others keep their defaults."""
  return replace(Config(), **settings)


def replace(config: Config, **settings: Any) -> Config:
  """`config` with settings, by flag name, changed; an unknown name is refused."""
  unknown = sorted(set(settings) - set(BY_FLAG))
  if unknown:
    raise ConfigError(f"no such setting: {', '.join(unknown)}")
  top: dict[str, Any] = {}
  sections: dict[str, dict[str, Any]] = {}
  for flag, value in settings.items():
    field = BY_FLAG[flag]
    if isinstance(value, list):
      value = tuple(value)
    if field.section is None:
      top[field.attribute] = value
    else:
      sections.setdefault(field.section, {})[field.attribute] = value
  for name, changes in sections.items():
    top[name] = dataclasses.replace(getattr(config, name), **changes)
  return dataclasses.replace(config, **top)


def override(config: Config, **changes) -> Config:
  """`config` with the non-None `changes` applied (flags left unset change nothing)."""
  return replace(config, **{k: v for k, v in changes.items() if v is not None})


def differences(saved_config: Config, config: Config) -> list:
  """Flag names of the settings in which two configs differ, sorted."""
  saved_values, values = saved_config.flat(), config.flat()
  return sorted(k for k in values if saved_values[k] != values[k])


# Reading a flag's text (also what `--config` files may not need: they build
# values directly).


def _int(flag, text):
  try:
    return int(str(text).strip())
  except ValueError:
    raise ConfigError(f"--{flag}: {text!r} is not a whole number") from None


def _qf(flag, text):
  try:
    value = int(str(text).strip())
  except ValueError:
    raise ConfigError(f"--{flag}: {text!r} is not a JPEG quality in 1..100") from None
  if not 1 <= value <= 100:
    raise ConfigError(f"--{flag}: {text!r} is not a JPEG quality in 1..100")
  return value


def _is_none(text):
  return str(text).strip().lower() in ("none", "auto", "")


def _parts(text):
  """The items of a list flag; "none" alone is the empty list."""
  if isinstance(text, (list, tuple)):
    parts = [str(p).strip() for p in text if str(p).strip()]
  else:
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
  return [] if [p.lower() for p in parts] == ["none"] else parts


def _list(text):
  """The items of a list flag, "none" kept (test QFs: "none" is a condition)."""
  if isinstance(text, (list, tuple)):
    return [str(p).strip() for p in text if str(p).strip()]
  return [p.strip() for p in str(text).split(",") if p.strip()]


def _bool(flag, text):
  value = str(text).strip().lower()
  if value in ("true", "t", "1", "yes"):
    return True
  if value in ("false", "f", "0", "no"):
    return False
  raise ConfigError(f"--{flag}: {text!r} is not true or false")


_READERS: dict[str, Callable] = {
  "str": lambda flag, text: str(text),
  "int": _int,
  "float": lambda flag, text: _float(flag, text),
  "bool": _bool,
  "optional_int": lambda flag, text: None if _is_none(text) else _int(flag, text),
  "optional_str": lambda flag, text: None if _is_none(text) else str(text),
  "optional_qf": lambda flag, text: None if _is_none(text) else _qf(flag, text),
  # Training QFs: "none" is no augmentation (an empty list).
  "qfs": lambda flag, text: tuple(_qf(flag, p) for p in _parts(text) if not _is_none(p)),
  # Test QFs: "none" is a condition of its own (as stored).
  "optional_qfs": lambda flag, text: tuple(
    None if _is_none(p) else _qf(flag, p) for p in _list(text)
  ),
  "strs": lambda flag, text: tuple(_parts(text)),
  "ints": lambda flag, text: tuple(_int(flag, p) for p in _parts(text)),
  "optional_strs": lambda flag, text: tuple(_parts(text)) or None,
  "test_crops": lambda flag, text: tuple(_test_crop(flag, p) for p in _parts(text)),
  "chain": lambda flag, text: chain_syntax.parse(text, flag).text,
  "chains": lambda flag, text: tuple(chain_syntax.parse(p, flag).text for p in _parts(text)),
}


def _float(flag, text):
  try:
    return float(str(text).strip())
  except ValueError:
    raise ConfigError(f"--{flag}: {text!r} is not a number") from None


def _test_crop(flag, text):
  try:
    check_test_crop(text)
  except ConfigError as e:
    raise ConfigError(f"--{flag}: {e}") from None
  return text


def parse(flag: str, text) -> Any:
  """The value of setting `flag` written as `text` (a flag's text, or a list
  for list flags), checked against its allowed values; `ConfigError` names the
  flag and what is wrong."""
  field = BY_FLAG[flag]
  value = _READERS[field.kind](flag, text)
  if field.choices is not None:
    for item in value if isinstance(value, tuple) else (value,):
      if item not in field.choices:
        raise ConfigError(f"--{flag}: {item!r} is none of {', '.join(map(str, field.choices))}")
  return value


def as_text(value) -> str:
  """A setting's value as its flag writes it: None -> "none", tuples -> "a,b"."""
  if isinstance(value, tuple):
    return ",".join(as_text(v) for v in value) or "none"
  if value is None:
    return "none"
  return str(value).lower() if isinstance(value, bool) else str(value)


# The default recipe (configs/default.py, configs/real.py), for the small
# datasets a CPU trains on: batch-norm statistics re-estimated over training
# batches after every epoch (their moving averages swung real-photo accuracy
# by 0.2 between epochs), a fixed number of epochs at a constant rate, the
# last epoch's weights (on a handful of validation images the paper's rule
# chose first-epoch weights and cut the rate early), and every patch of an
# epoch shuffled together (a small buffer fills a batch from a few images).
DEFAULT_RECIPE = dict(
  epochs=6,
  batch_size=32,
  select="last",
  lr_patience=None,
  stop_patience=None,
  shuffle_buffer=None,
  precise_bn_batches=64,
)
# The paper's rule shortened for a CPU (the built-in studies configs/mini.py
# and configs/grid.py, and the real-photo study's "paper-rule" recipe).
PAPER_RULE_ON_CPU = dict(epochs=6, batch_size=32, lr_patience=2, stop_patience=4)

# The reference baseline (tfjpeg.train.baseline): what a researcher writes outside
# the project, run beside the default recipe by configs/real.py.
BASELINE_RECIPE = dict(recipe="baseline", net="minimal", epochs=6, batch_size=64)


def presets_dir() -> pathlib.Path:
  """The presets: the checkout's configs/ when this package runs from one,
  else the copy installed with it (tfjpeg/presets)."""
  checkout = pathlib.Path(__file__).resolve().parents[1] / "configs"
  if (checkout / "default.py").exists():
    return checkout
  return pathlib.Path(__file__).resolve().parent / "presets"


def preset_path(name_or_path: str) -> str:
  """A preset file: a path as given, or the name of one of configs/ ("default",
  "real")."""
  if os.path.exists(name_or_path) or os.sep in name_or_path or name_or_path.endswith(".py"):
    return name_or_path
  return str(presets_dir() / f"{name_or_path}.py")


def preset_names(function: str = "get_config") -> list:
  """The presets that define `function` (get_config: one run, for bin/train;
  get_study: a grid, for bin/study), read as text: nothing is imported."""
  return sorted(p.stem for p in presets_dir().glob("*.py") if f"def {function}(" in p.read_text())


def load_preset(name_or_path: str, function: str = "get_config", **kwargs: Any) -> Any:
  """Runs `function(**kwargs)` of a preset, a file such as configs/default.py
  or its name ("default"); a missing file or function is a ConfigError."""
  path = preset_path(name_or_path)
  if not os.path.exists(path):
    known = ", ".join(preset_names(function))
    raise ConfigError(f"--config: {name_or_path!r} is neither a file nor a preset ({known})")
  spec = importlib.util.spec_from_file_location(f"tfjpeg_preset_{abs(hash(path))}", path)
  if spec is None or spec.loader is None:
    raise ConfigError(f"--config: {path} cannot be loaded as Python")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, function):
    raise ConfigError(f"--config: {path} defines no {function}()")
  return getattr(module, function)(**kwargs)


def default_workdir(config: Config) -> str:
  """A workdir named by the settings, so the same command resumes the same run."""
  lattice = f"_lattice{config.jpeg.lattice_qf}" if config.jpeg.lattice_qf else ""
  train_chain = config.jpeg.train_chain
  chain = "" if train_chain == "none" else f"_chain-{file_name(train_chain)}"
  antialias = {"none": "", "blur": f"-blur{config.antialias_filter}", "aps": "-aps"}
  return os.path.join(
    "runs",
    f"{config.task.name}_{config.net}{antialias[config.antialias]}_{config.jpeg.train_crop}"
    f"{lattice}_qf{config.train_qf_label}{chain}_seed{config.schedule.seed}",
  )


# How a chain's marks are written in file names: each its own, so that two
# chains never share a name ('blur:1|2' and 'blur:1@2' differ).
_FILE_MARKS = {">": "_", ":": "", "|": "or", "@": "p", "/": "-", "x": "x"}


def file_name(text: str) -> str:
  """`text` (a chain, say) as a file name: resize:0.5>jpeg:75 -> resize0.5_jpeg75;
  any other character but letters, digits, '.', '_' and '-' becomes '-'."""
  out = "".join(_FILE_MARKS.get(c, c) for c in text)
  return re.sub(r"[^A-Za-z0-9._-]", "-", out)


def saved(workdir: str) -> Config:
  """The config a run directory was trained with (its config.json); one that
  cannot be read is a ConfigError naming the file."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise MissingError(f"{workdir} is not a run directory (no config.json)")
  try:
    with open(path) as f:
      return Config.from_json(f.read())
  except (ValueError, TypeError) as e:
    raise ConfigError(f"{path} cannot be read as a run's config ({e})") from e
