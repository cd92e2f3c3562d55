"""Whole test images under test conditions: what a detector that takes files
is given.

    encoded bytes -> exact decode -> [a swap or common re-save] -> [a save at
    the test QF] -> [a processing chain] -> the processed image, and its file:
    the bytes as stored (nothing done), the last save's JPEG bytes (a
    condition ending in a save that applied), else lossless PNG
    -> [the model's input: resized or centre-cropped to its size]

`dataset` yields one element per image and condition, in image order, each
condition in turn. `bin/degrade` writes the files; the report feeds the
images (through the model's input step) to a model that takes whole images;
so the pixels a degraded file decodes to are the pixels the report measures.
A chain draws as in `input_pipeline.eval_dataset` for the same seed (from
the image id), so a chain condition draws alike for patches and for whole
images; a swap's QF is drawn from the image id too (eval_dataset draws it
from the image's place in its split).
"""

import dataclasses
from collections.abc import Callable
from collections.abc import Sequence

import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.codec import chain_ops
from tfjpeg.codec import chain_syntax
from tfjpeg.codec import crops
from tfjpeg.codec import images
from tfjpeg.codec import jpeg
from tfjpeg.core import seeds
from tfjpeg.pipeline import input_pipeline

# The fold-in of an image's chain seed a swap draws its QF from.
SWAP_FOLD = -3


@dataclasses.dataclass(frozen=True)
class FileCondition:
  """A test condition on whole images: a re-save ("swap", "common": see
  `input_pipeline.Condition`), a save at `qf`, or a processing `chain`; all
  defaults: as stored."""

  qf: int | None = None
  resave: str = "none"
  chain: str = "none"

  def __post_init__(self):
    object.__setattr__(self, "chain", chain_syntax.parse(self.chain).text)
    if self.resave not in config_lib.RESAVES:
      raise config_lib.ConfigError(
        f"resave must be one of {config_lib.RESAVES}, got {self.resave!r}"
      )
    if sum([bool(self.qf), self.resave != "none", self.chain != "none"]) > 1:
      raise config_lib.ConfigError("a file condition is one of a QF, a re-save or a chain")

  @property
  def name(self) -> str:
    """'stored', 'qf75', 'swap', 'common', or the chain's text."""
    if self.qf:
      return f"qf{self.qf}"
    if self.resave != "none":
      return self.resave
    return "stored" if self.chain == "none" else self.chain

  @property
  def stored(self) -> bool:
    return not self.qf and self.resave == "none" and self.chain == "none"

  def steps(self, resave_qf=None) -> list:
    """The whole-image steps: a given save for a QF or re-save, else the chain's."""
    if self.qf:
      return [chain_syntax.Step("jpeg", given=int(self.qf))]
    if self.resave != "none":
      return [chain_syntax.Step("jpeg", given=resave_qf)]
    return list(chain_syntax.parse(self.chain).steps)


# Steps that leave a part of the image: a JPEG source is then read window by
# window, only what the result needs (a crop of a camera photo decodes a
# fraction of it).
_CUTS = ("crop", "centre")


def _processed(encoded, decode, steps, seed, chroma, all_jpeg=False, windows_allowed=True):
  """`chain_ops.apply_and_encode` of the steps on the image, from the JPEG's
  windows where the chain starts with a cut and can be computed by windows
  (pixel-equal) and `windows_allowed` (not when the image is decoded
  already), else from the whole image `decode()` gives (decoded once per
  image, only where some condition needs it). `all_jpeg`: every source
  is a JPEG, known before the graph is built (a conditional on it in the
  graph costs a third of the throughput)."""
  windowed = steps and steps[0].name in _CUTS and chain_syntax.Chain(tuple(steps)).windowable
  if windows_allowed and windowed:

    def windows():
      return chain_ops.apply_and_encode(
        None,
        steps,
        seed,
        chroma,
        read=lambda offset, size: jpeg.decode_window(encoded, offset, size),
        image_size=tf.image.extract_jpeg_shape(encoded)[:2],
      )

    if all_jpeg:
      return windows()

    def whole():  # decoded in the branch: a JPEG read by windows is never decoded whole
      return chain_ops.apply_and_encode(images.decode(encoded), steps, seed, chroma)

    return tf.cond(tf.io.is_jpeg(encoded), windows, whole)
  return chain_ops.apply_and_encode(decode(), steps, seed, chroma)


def draw_width(conditions: Sequence[FileCondition]) -> int:
  """Columns of the widest chain's draws (`chain_syntax.draw_columns`)."""
  return max(
    [len(chain_syntax.draw_columns(chain_syntax.parse(c.chain))) for c in conditions], default=0
  )


def image_function(
  conditions: Sequence[FileCondition],
  seed: int,
  chroma: str = "4:2:0",
  swap_qfs: Sequence[Sequence[int]] = (),
  common_qf: int | None = None,
  model_input: tuple[str, int, str] | None = None,
  files: bool = False,
  pixels: bool = True,
  all_jpeg: bool = False,
) -> Callable[[dict], tuple]:
  """The work `dataset` maps over each image, as a function of one element
  ({"encoded", "label", "image_id"}, and "image" where the caller decoded it
  already): a tuple of one dict per condition, `dataset`'s elements. Traced
  once (`tf.function`), it is what `bin/degrade` runs on each image on any
  runner."""
  conditions = list(conditions)
  if any(c.resave == "swap" for c in conditions) and not swap_qfs:
    raise ValueError("a swap condition needs the classes' stored QFs (swap_qfs)")
  if any(c.resave == "common" for c in conditions) and not common_qf:
    raise ValueError("a common-QF condition needs common_qf")
  eval_seed = seeds.for_example(seed, -1)  # eval_dataset's
  width = draw_width(conditions)

  @tf.autograph.experimental.do_not_convert
  def per_image(element):
    chain_seed = input_pipeline.image_chain_seed(eval_seed, element["image_id"])
    given = element.get("image")  # decoded by the caller: never decoded again, nor by windows
    decoded: list[tf.Tensor] = [] if given is None else [given]

    def decode():  # the whole image, decoded by the first condition needing it
      if not decoded:
        decoded.append(images.decode(element["encoded"]))
      return decoded[0]

    out = []
    for number, condition in enumerate(conditions):
      resave_qf = None
      if condition.resave == "swap":
        resave_qf = input_pipeline.swap_quality(
          swap_qfs, element["label"], seeds.for_example(chain_seed, SWAP_FOLD)
        )
      elif condition.resave == "common" and common_qf is not None:
        resave_qf = int(common_qf)
      steps = condition.steps(resave_qf)
      if condition.stored:
        image = decode() if pixels or model_input is not None else None
        draws, data, as_stored = tf.zeros([0], tf.float64), element["encoded"], tf.constant(True)
      else:
        image, record, data = _processed(
          element["encoded"], decode, steps, chain_seed, chroma, all_jpeg, given is None
        )
        # Nothing applied (coins that all fell against, a swap that leaves
        # the image as stored): the file as stored, not a re-encoding of it.
        as_stored = tf.logical_not(record["changed"])
        draws = record["draws"]
        if condition.chain == "none":  # the pipeline's own save: no chain draws
          draws = tf.zeros([0], tf.float64)
      if condition.chain != "none":  # the QF a save of the chain drew
        qf = tf.where(record["changed"], record["quality"], 0)
      else:
        qf = condition.qf or (resave_qf if resave_qf is not None else 0)
      item = dict(
        condition=tf.constant(number),
        label=element["label"],
        image_id=element["image_id"],
        draws=tf.pad(draws, [[0, width - tf.shape(draws)[0]]]),
        qf=tf.cast(qf, tf.int32),
        as_stored=as_stored,
      )
      if files and condition.stored:
        item["data"] = data
      elif files:
        # The bytes as stored; else the last save's; else lossless PNG of the pixels.
        item["data"] = tf.cond(
          as_stored,
          lambda: element["encoded"],
          lambda d=data, i=image: tf.cond(
            tf.strings.length(d) > 0, lambda: d, lambda: tf.io.encode_png(i)
          ),
        )
      if model_input is not None:
        mode, size, kernel = model_input
        image = crops.model_input(image, mode, size, kernel)
      if pixels:
        item["image"] = image
      out.append(item)
    return tuple(out)

  return per_image


def dataset(
  images_dataset: tf.data.Dataset,
  conditions: Sequence[FileCondition],
  seed: int,
  chroma: str = "4:2:0",
  swap_qfs: Sequence[Sequence[int]] = (),
  common_qf: int | None = None,
  model_input: tuple[str, int, str] | None = None,
  files: bool = False,
  seen: input_pipeline.ImagesSeen | None = None,
  pixels: bool = True,
  all_jpeg: bool = False,
) -> tf.data.Dataset:
  """Every image of `images_dataset` ({"encoded", "label", "image_id"}) under
  every condition, one element each: {"image", "condition" (index),
  "label", "image_id", "draws" ([D] padded with zeros), "qf" (the QF of
  its last save: test QF, swap or common, or the one a chain drew; 0
  none), "as_stored" (nothing was done to the image)}; with
  `files`, also "data": the file (`module docstring`); with `model_input`
  (mode, size, kernel: `crops.model_input`), the images as the model takes
  them; without `pixels`, no "image" (files only: nothing is decoded that
  the files do not need). `seed` is the run's: draws are `eval_dataset`'s.
  With `seen`, an image that fails to decode is skipped and the others
  recorded. `all_jpeg` says every image is a JPEG (`images.sniff_format`): a faster graph."""
  per_image = image_function(
    conditions, seed, chroma, swap_qfs, common_qf, model_input, files, pixels, all_jpeg
  )
  mapped = images_dataset.map(per_image, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if seen is not None:

    def record(*items):
      done = tf.py_function(seen.add, [items[0]["image_id"]], Tout=tf.bool)
      with tf.control_dependencies([done]):
        return tuple({k: tf.identity(v) for k, v in item.items()} for item in items)

    mapped = mapped.ignore_errors(log_warning=True).map(record)

  def flat(*items):
    dataset = tf.data.Dataset.from_tensors(items[0])
    for item in items[1:]:
      dataset = dataset.concatenate(tf.data.Dataset.from_tensors(item))
    return dataset

  return mapped.flat_map(flat)
