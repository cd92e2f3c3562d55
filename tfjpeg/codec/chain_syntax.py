"""Processing chains: what happens to a whole image before its patches are cut.

A photo reaches a detector cropped, resized, blurred and saved again by the
platforms it went through. A chain writes such a history down as whole-image
steps, in order, separated by `>`:

    resize:0.5>jpeg:75                  halve each side (bicubic), then save at QF 75
    crop:160..2048>resize:200x200/auto>jpeg:65..100      Corvi et al. 2023's test operations
    blur:0..3@0.5>jpeg:30..100@0.5      Wang et al. 2020's Blur+JPEG(0.5) augmentation

Each step is `name[:value][/kernel][@probability]`; a value is a number, a range
`lo..hi` (drawn uniformly: whole numbers for QFs and pixels, real numbers for
factors and sigmas) or a choice `a|b|c` (one drawn); `@p` applies the step to
a share p of the images (a coin per image). The steps:

- `jpeg:Q`: saved at QF Q (1..100) with the pipeline's chroma subsampling and
  decoded exactly (tfjpeg.codec.jpeg).
- `resize:F` (a factor, > 0) or `resize:HxW` (a size in pixels), then an
  optional `/kernel`: bilinear, bicubic (the default, as Pillow's), lanczos,
  box, hamming, or `auto` (Lanczos when shrinking, bicubic when enlarging:
  Corvi et al.'s). Pillow-exact (tfjpeg.codec.resample).
- `blur:S`: a Gaussian blur of sigma S as scipy's `gaussian_filter` blurs each
  channel (CNNDetection's blur); sigma 0 leaves the image alone.
- `crop:N` (a square side) or `crop:HxW`, at a random position; a side larger
  than the image is cut to it. `centre:N` or `centre:HxW`: the same at the
  centre (top-left at half the room, rounded down).
- `fit:N[/kernel]`: shrunk (never enlarged) so that its longer side is N, the
  other in proportion, rounded (what platforms do to large photos).
- `gray`: Pillow's `convert("L")` (ITU-R 601-2 luma, integer arithmetic),
  copied to three channels.
- `noise:S`: Gaussian noise of standard deviation S (a fraction of 255, as
  albumentations' `GaussNoise(std_range=...)`), drawn per pixel and channel,
  cut to whole levels towards zero and added, clipped to 0..255 (as
  albumentations adds noise to uint8 images).
- `rrc:N[/kernels]`: torchvision's `RandomResizedCrop` to an NxN square: a
  window of 0.5..1 of the area with aspect 0.9..1/0.9 (ten tries, then the
  centre, as torchvision), resized with Pillow by a kernel drawn from
  `kernels` (`bilinear|bicubic|lanczos` by default: AI-GenBench's).
- `none`: the empty chain (images as stored).

Names in `PRESETS` stand for published chains (`wang2020_blur_jpeg_0.5`,
`corvi2023`). Draws are stateless functions of the run's seed and the image,
so a second run applies the same operations to the same images.

This module parses and checks chains and imports no TensorFlow (flags are
checked before it starts); tfjpeg.codec.chain_ops applies them on the graph.
"""

import dataclasses
import decimal
import re
from typing import Any

from tfjpeg.core.errors import ConfigError

KERNELS = ("bilinear", "bicubic", "lanczos", "box", "hamming", "auto")
DEFAULT_KERNEL = "bicubic"  # Pillow's Image.resize default
STEPS = ("crop", "centre", "resize", "blur", "jpeg", "fit", "gray", "noise", "rrc")
# Steps computed on the whole image only (a patch's window cannot be worked
# out backwards: per-pixel noise drawn for the whole image, a crop whose
# place depends on ten tries).
WHOLE_ONLY = ("noise", "rrc")
# torchvision's RandomResizedCrop as AI-GenBench sets it: share of the area
# and aspect ratio of the window, and the kernels it draws from.
RRC_SCALE = (0.5, 1.0)
RRC_RATIO = (0.9, 1 / 0.9)
RRC_KERNELS = ("bilinear", "bicubic", "lanczos")

# The chroma subsampling of the presets' saves: libjpeg's, OpenCV's and
# Pillow's at every quality the protocols use.
PRESET_CHROMA = "4:2:0"
# Published chains, by name, with where their parameters come from.
PRESETS = {
  # Wang et al., CVPR 2020 (CNNDetection), the Blur+JPEG(0.5) model:
  # --blur_prob 0.5 --blur_sig 0.0,3.0 --jpg_prob 0.5 --jpg_qual 30,100
  # (sigma uniform in [0, 3]; QF uniform in 30..100; OpenCV or Pillow drawn,
  # which write the same file), on the whole image before the crop.
  "wang2020_blur_jpeg_0.5": "blur:0..3@0.5>jpeg:30..100@0.5",
  # The same with probability 0.1: the Blur+JPEG(0.1) model.
  "wang2020_blur_jpeg_0.1": "blur:0..3@0.1>jpeg:30..100@0.1",
  # Corvi et al., ICASSP 2023 (grip-unina/DMimageDetection csv_operations.py):
  # a square crop of 160..2048 pixels at a random place, resized to 200x200
  # with Pillow (Lanczos, its antialiasing filter, when the crop is larger;
  # bicubic when smaller), then a Pillow JPEG at a QF in 65..100.
  "corvi2023": "crop:160..2048>resize:200x200/auto>jpeg:65..100",
  # AI-GenBench (Pellegrini et al., 2025; its ai_genbench_pipeline.py,
  # mandatory_val_preprocessing) as its code runs: RandomCropIfLarge(1080) is
  # built with force_central_crop=True but never passes it on, so the crop of
  # a larger image is random; data_augment_cmp draws its QF from the list
  # [50, 101] (random.choice: 50 or 101, which libjpeg, under both OpenCV and
  # Pillow, clamps to 100); RandomGrayscale(0.1) on a PIL image; albumentations'
  # GaussNoise(std_range=(0.015, 0.075), p=0.3); RandomResizedCropVariable
  # (256..512 px, scale 0.5..1, ratio 0.9..1/0.9, bilinear, bicubic or Lanczos)
  # at p 0.25; the saves at p 0.5, 0.2 and 0.1.
  "aigenbench2025": (
    "crop:1080>gray@0.1>jpeg:50|100@0.5>noise:0.015..0.075@0.3>jpeg:50|100@0.2"
    ">rrc:256..512@0.25>jpeg:50|100@0.1"
  ),
  # The same as the paper and the code's comments describe it: a centre
  # crop to 1080 if larger, and QFs 50..100.
  "aigenbench2025_described": (
    "centre:1080>gray@0.1>jpeg:50..100@0.5>noise:0.015..0.075@0.3>jpeg:50..100@0.2"
    ">rrc:256..512@0.25>jpeg:50..100@0.1"
  ),
}


@dataclasses.dataclass(frozen=True)
class Value:
  """A step's value: `low` alone (fixed), `low..high` (uniform) or `choices`."""

  low: float = 0.0
  high: float | None = None  # a range's upper end
  choices: tuple = ()  # a choice's options (low unused)

  @property
  def fixed(self) -> bool:
    return self.high is None and not self.choices

  def text(self, whole: bool) -> str:
    show = (lambda v: str(int(v))) if whole else _number_text
    if self.choices:
      return "|".join(show(c) for c in self.choices)
    if self.high is not None:
      return f"{show(self.low)}..{show(self.high)}"
    return show(self.low)

  def bounds(self) -> tuple[float, float]:
    if self.choices:
      return min(self.choices), max(self.choices)
    return self.low, self.low if self.high is None else self.high


def _number_text(value):
  """A number as the syntax reads it back exactly: the shortest decimal that
  is the same float, never in exponent form (1e-05 is written 0.00001)."""
  text = repr(float(value))
  if "e" in text or "E" in text:
    text = format(decimal.Decimal(text), "f")
  return text[:-2] if text.endswith(".0") else text


@dataclasses.dataclass(frozen=True)
class Step:
  """One whole-image step of a chain.

  `name` is one of `STEPS`. jpeg: `quality`; blur: `sigma`; resize: `factor`
  or `size` = (height, Value, width Value) and `kernel`; crop and centre:
  `size`; fit: `side` and `kernel`; noise: `std`; rrc: `side` and `kernel`
  (kernels separated by "|", one drawn per image); gray: nothing.
  `probability` is the share of images it is applied to. `given` is for the
  pipeline's own steps (a QF already drawn per image as a tensor, 0 for
  none: the lattice, a double compression's first save, the swap): it is
  never parsed."""

  name: str
  quality: Value | None = None
  sigma: Value | None = None
  factor: Value | None = None
  size: tuple[Value, Value] | None = None
  kernel: str = DEFAULT_KERNEL
  probability: float = 1.0
  side: Value | None = None  # fit: the longest side; rrc: the square's side
  std: Value | None = None  # noise, a fraction of 255
  given: Any = dataclasses.field(default=None, compare=False)
  # A jpeg step's own chroma subsampling (a preset's), else the run's.
  chroma: str | None = None

  def text(self) -> str:
    chance = "" if self.probability == 1.0 else f"@{_number_text(self.probability)}"
    if self.name == "gray":
      return f"gray{chance}"
    if self.name == "noise" and self.std is not None:
      return f"noise:{self.std.text(False)}{chance}"
    if self.name in ("fit", "rrc") and self.side is not None:
      default = DEFAULT_KERNEL if self.name == "fit" else "|".join(RRC_KERNELS)
      kernel = "" if self.kernel == default else f"/{self.kernel}"
      return f"{self.name}:{self.side.text(True)}{kernel}{chance}"
    if self.name == "jpeg":
      args = self.quality.text(True) if self.quality else "given"
    elif self.name == "blur" and self.sigma is not None:
      args = self.sigma.text(False)
    else:
      if self.size is not None:
        height, width = self.size
        args = (
          height.text(True)
          if self.name in ("crop", "centre") and height == width
          else (f"{height.text(True)}x{width.text(True)}")
        )
      elif self.factor is not None:
        args = self.factor.text(False)
      else:
        raise ValueError(f"a {self.name} step without a value")
      if self.name == "resize" and self.kernel != DEFAULT_KERNEL:
        args += f"/{self.kernel}"
    return f"{self.name}:{args}{chance}"


@dataclasses.dataclass(frozen=True)
class Chain:
  """An ordered chain of whole-image steps; `text` is its canonical spelling
  (a preset keeps its name)."""

  steps: tuple[Step, ...] = ()
  name: str | None = None  # a preset's name

  @property
  def text(self) -> str:
    if self.name:
      return self.name
    return ">".join(step.text() for step in self.steps) or "none"

  @property
  def resizes(self) -> bool:
    return any(step.name in ("resize", "fit", "rrc") for step in self.steps)

  @property
  def windowable(self) -> bool:
    """Whether a patch of the result can be computed from a window of the
    source (`chain_ops.apply_window`): no step of `WHOLE_ONLY`."""
    return not any(step.name in WHOLE_ONLY for step in self.steps)

  def __str__(self) -> str:
    return self.text


NONE = Chain()
_NUMBER = r"\d+(?:\.\d*)?|\.\d+"


def _value(text, what, whole, low=None, high=None, above=None):
  """A Value from `text` ("75", "30..100", "50|70|90"), checked: whole numbers
  if `whole`, within [low, high], greater than `above`."""

  def number(part):
    part = part.strip()
    if not re.fullmatch(_NUMBER, part) or (whole and not part.isdigit()):
      kind = "a whole number" if whole else "a number"
      raise ConfigError(f"{what}: {part!r} is not {kind}")
    value = int(part) if whole else float(part)
    if high is not None and low is not None and not low <= value <= high:
      raise ConfigError(f"{what}: {part} is outside {low}..{high}")
    if low is not None and value < low:
      raise ConfigError(f"{what}: {part} is below {low}")
    if above is not None and value <= above:
      raise ConfigError(f"{what}: {part} must be greater than {above}")
    return value

  if "|" in text:
    return Value(choices=tuple(number(p) for p in text.split("|")))
  if ".." in text:
    lo, _, hi = text.partition("..")
    lo_value, hi_value = number(lo), number(hi)
    if hi_value < lo_value:
      raise ConfigError(f"{what}: the range {text} runs backwards")
    return Value(lo_value, hi_value)
  return Value(number(text))


def _size(text, what, step):
  """(height, width) Values of 'N' (a square, crop only) or 'HxW'."""
  parts = text.split("x")
  if len(parts) == 1 and step in ("crop", "centre"):
    side = _value(parts[0], what, whole=True, low=1)
    return side, side
  if len(parts) != 2:
    raise ConfigError(f"{what}: {text!r} is not a size HxW")
  return tuple(_value(p, what, whole=True, low=1) for p in parts)


def _step(text, where):
  body, at, chance = text.partition("@")
  name, _, args = body.partition(":")
  name, args = name.strip(), args.strip()
  what = f"{where}step {text.strip()!r}"
  probability = 1.0
  if at and not chance.strip():
    raise ConfigError(f"{what}: '@' needs a probability (@0.5)")
  if chance:
    probability = _value(chance, what + " probability", whole=False, low=0, high=1).low
  if name not in STEPS:
    raise ConfigError(f"{what}: unknown step {name!r} (steps: {', '.join(STEPS)}, or none)")
  if name == "gray":
    if args:
      raise ConfigError(f"{what}: gray takes no value")
    return Step("gray", probability=probability)
  if not args:
    raise ConfigError(f"{what}: {name} needs a value ({name}:...)")
  if name == "jpeg":
    return Step("jpeg", quality=_value(args, what, True, 1, 100), probability=probability)
  if name == "blur":
    return Step("blur", sigma=_value(args, what, False, low=0), probability=probability)
  if name == "noise":
    return Step("noise", std=_value(args, what, False, low=0, high=1), probability=probability)
  first, *rest = [a.strip() for a in args.split("/")]
  if name in ("crop", "centre"):
    if rest:
      raise ConfigError(f"{what}: {name} takes one size ({name}:N or {name}:HxW)")
    return Step(name, size=_size(first, what, name), probability=probability)
  if name == "rrc":
    kernels = rest[0].split("|") if rest else list(RRC_KERNELS)
    if (
      len(rest) > 1
      or any(k not in RRC_KERNELS for k in kernels)
      or len(set(kernels)) < len(kernels)
    ):
      raise ConfigError(f"{what}: rrc takes a side, then /kernels, some of {'|'.join(RRC_KERNELS)}")
    side = _value(first, what, whole=True, low=1)
    return Step("rrc", side=side, kernel="|".join(kernels), probability=probability)
  if name == "fit":
    if len(rest) > 1 or (rest and rest[0] not in KERNELS[:-1]):
      raise ConfigError(
        f"{what}: fit takes a longest side, then /kernel, one of {', '.join(KERNELS[:-1])}"
      )
    if "|" in first or ".." in first:
      raise ConfigError(f"{what}: fit takes one longest side")
    side = _value(first, what, whole=True, low=1)
    return Step(
      "fit", side=side, kernel=rest[0] if rest else DEFAULT_KERNEL, probability=probability
    )
  if len(rest) > 1 or (rest and rest[0] not in KERNELS):
    raise ConfigError(
      f"{what}: resize takes a factor or HxW, then /kernel, one of {', '.join(KERNELS)}"
    )
  kernel = rest[0] if rest else DEFAULT_KERNEL
  if "x" in first:
    return Step("resize", size=_size(first, what, "resize"), kernel=kernel, probability=probability)
  factor = _value(first, what, whole=False, above=0)
  if factor.bounds()[0] <= 0:
    raise ConfigError(f"{what}: a resize factor must be greater than 0")
  return Step("resize", factor=factor, kernel=kernel, probability=probability)


def parse(text: str | Chain | None, flag: str = "") -> Chain:
  """A Chain from its text (or a preset's name); "none", "" and None are the
  empty chain. A malformed chain is a ConfigError naming `flag`, the step and
  what is wrong, in one line.

  Examples:
    >>> tfjpeg.codec.chain_syntax.parse("resize:0.5/lanczos>jpeg:75").text
    'resize:0.5/lanczos>jpeg:75'
    >>> tfjpeg.codec.chain_syntax.parse("corvi2023").steps[0].name
    'crop'
  """
  if isinstance(text, Chain):
    return text
  text = "" if text is None else str(text).strip()
  if text.lower() in ("", "none"):
    return NONE
  if text in PRESETS:
    # A protocol saves as its source does: 4:2:0, whatever the run's chroma.
    steps = tuple(
      dataclasses.replace(s, chroma=PRESET_CHROMA) if s.name == "jpeg" else s
      for s in parse(PRESETS[text], flag).steps
    )
    return Chain(steps, name=text)
  where = f"--{flag}: chain {text!r}, " if flag else f"chain {text!r}: "
  return Chain(tuple(_step(part, where) for part in text.split(">")))


def largest_output(chain: Chain) -> tuple[int, int] | None:
  """The largest (height, width) an image can have after `chain`, when the
  chain bounds it (a resize to HxW, or a crop that always applies, after the
  last resize by a factor); None when it depends on the image."""
  bound: tuple[int, int] | None = None
  for step in chain.steps:
    if step.name == "resize" and step.size is not None and step.probability == 1.0:
      bound = (int(step.size[0].bounds()[1]), int(step.size[1].bounds()[1]))
    elif step.name == "rrc" and step.side is not None and step.probability == 1.0:
      bound = (int(step.side.bounds()[1]),) * 2
    elif step.name in ("resize", "rrc"):
      bound = None
    elif step.name == "fit" and step.side is not None and step.probability == 1.0:
      side = int(step.side.bounds()[1])
      bound = (side, side) if bound is None else (min(bound[0], side), min(bound[1], side))
    elif step.name in ("crop", "centre") and step.size is not None and step.probability == 1.0:
      cut = (int(step.size[0].bounds()[1]), int(step.size[1].bounds()[1]))
      bound = cut if bound is None else (min(bound[0], cut[0]), min(bound[1], cut[1]))
  return bound


def draw_columns(chain: Chain) -> list[str]:
  """Names of what `tfjpeg.codec.chain_ops.apply` records of each image's draws,
  in order: per step, whether it was applied, then its values (jpeg: qf;
  blur: sigma; resize and fit: height, width; crop and centre: y, x,
  height, width; gray: nothing; noise: std; rrc: y, x, height, width of the
  window, side, and kernel, the index of the kernel drawn among the step's)."""
  values = {"jpeg": ("qf",), "blur": ("sigma",), "resize": ("height", "width")}
  values["crop"] = values["centre"] = ("y", "x", "height", "width")
  values.update(fit=("height", "width"), gray=(), noise=("std",))
  values["rrc"] = ("y", "x", "height", "width", "side", "kernel")
  columns = []
  for number, step in enumerate(chain.steps):
    prefix = f"{number}_{step.name}"
    columns += [f"{prefix}_applied"] + [f"{prefix}_{v}" for v in values[step.name]]
  return columns
