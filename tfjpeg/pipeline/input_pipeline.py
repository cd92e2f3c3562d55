"""The only place that builds tf.data pipelines.

    encoded bytes -> exact decode -> the whole-image chain: [lattice QF]
      -> [first save: a double compression's Q1, a swap or common re-save, the
         matched recipe's save of a lossless file] -> [a processing chain:
         crop, resize, blur, jpeg (tfjpeg.codec.chain_syntax)]
      -> crop (aligned | random | misaligned) x patches_per_image
       (a JPEG without lattice QF: only a window around each patch is decoded)
      -> training: JPEG augmentation   |   evaluation: the test condition's QF
      -> batch -> prefetch

Bytes stay encoded until decoded; every JPEG decode uses the accurate IDCT;
nothing is re-encoded unless the lattice QF, the augmentation or the test
condition asks for it. Every random choice is a stateless function of
(seed, epoch, image index, patch index), so runs are reproducible and resume
exactly.
"""

import dataclasses
import os
import socket
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Optional

import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.codec import chain_ops
from tfjpeg.codec import chain_syntax
from tfjpeg.codec import crops
from tfjpeg.codec import grid
from tfjpeg.codec import images
from tfjpeg.codec import jpeg
from tfjpeg.core import seeds

if TYPE_CHECKING:
  from tfjpeg.data import tasks


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """What the pipeline reads: the run's `jpeg` and `schedule` sections as they
  are, and what the task and its files fix (`for_run` makes one from a run's
  config; `of` from settings by flag name, for notebooks and benchmarks)."""

  jpeg: config_lib.JpegConfig = dataclasses.field(default_factory=config_lib.JpegConfig)
  # batch_size, seed and shuffle_buffer are read from here.
  schedule: config_lib.ScheduleConfig = dataclasses.field(default_factory=config_lib.ScheduleConfig)
  patch_size: int = 64  # the task's
  patches_per_image: int = 1  # the task's
  # The lattice QF still to apply: `jpeg.lattice_qf`, unless the task delivers
  # its images compressed at it already (tfjpeg.data.lattice's cache). The
  # pipeline reads this one, never `jpeg.lattice_qf`.
  lattice_qf: int | None = None
  data_service: str | None = None  # tf.data service dispatcher, e.g. grpc://host:5050
  # The run's name for its tf.data service jobs: every run on one dispatcher
  # needs its own, or runs with the same seed would split each other's epochs.
  service_job: str = "tfjpeg-train"
  # Compression made to carry no class information (`match_compression`): an
  # image read from a lossless file is first saved whole at a QF drawn from
  # `match_qfs` (the dataset's own JPEG QFs), as the JPEG files were once;
  # then every training patch, of every class, is saved at another draw.
  match_qfs: Sequence[int] = ()
  # The test conditions that re-save whole images (`Condition.resave`):
  # "swap" saves an image of class k at a QF drawn from `swap_qfs[k]` (empty:
  # left as stored); "common" saves every image at `common_qf`.
  swap_qfs: Sequence[Sequence[int]] = ()
  common_qf: int | None = None

  def __post_init__(self):
    if self.match_qfs and (self.jpeg.train_qfs or self.jpeg.double_qfs or self.lattice_qf):
      raise config_lib.ConfigError(config_lib.MATCH_ALONE)

  @classmethod
  def of(
    cls,
    patch_size=64,
    patches_per_image=1,
    lattice_qf=None,
    data_service=None,
    service_job="tfjpeg-train",
    match_qfs=(),
    swap_qfs=(),
    common_qf=None,
    **settings,
  ):
    """A pipeline from settings by flag name (`train_qfs=(50,)`, `batch_size=8`;
    see tfjpeg.config.FIELDS), the others at their defaults."""
    config = config_lib.make(lattice_qf=lattice_qf, **settings)
    return cls(
      jpeg=config.jpeg,
      schedule=config.schedule,
      patch_size=patch_size,
      patches_per_image=patches_per_image,
      lattice_qf=lattice_qf,
      data_service=data_service,
      service_job=service_job,
      match_qfs=tuple(match_qfs),
      swap_qfs=tuple(tuple(p) for p in swap_qfs),
      common_qf=common_qf,
    )

  @classmethod
  def for_run(cls, config, task, profile=None, training=True):
    """The pipeline of run `config` on `task`. `profile` (tfjpeg.data.audit's
    CompressionProfile of the task's files) supplies the QFs that
    `match_compression` and re-saving test conditions draw from; with
    `training` False, patches for testing, which never depend on the training
    recipe (a run trained with `match_compression` is tested on its files as
    stored)."""
    compression = {}
    match = config.jpeg.match_compression and training
    if profile is not None:
      compression = dict(
        swap_qfs=tuple(tuple(p) for p in profile.swap_qfs), common_qf=profile.common_qf
      )
      if match:
        if not profile.match_qfs:
          raise config_lib.ConfigError(
            f"match_compression: the {task.name} task has no JPEG files, so compression "
            "carries no class information; train without it"
          )
        compression["match_qfs"] = tuple(profile.match_qfs)
    elif match:
      raise ValueError("match_compression needs the task's compression profile")
    return cls(
      jpeg=config.jpeg,
      schedule=config.schedule,
      patch_size=task.patch_size,
      patches_per_image=task.patches_per_image,
      lattice_qf=(None if task.lattice_qf == config.jpeg.lattice_qf else config.jpeg.lattice_qf),
      data_service=config.runtime.data_service,
      **compression,
    )


def conditions(test):
  """The test conditions of a run's `test` section (tfjpeg.config.TestConfig);
  a test crop names its grid ('aligned16'), else 8."""
  test_crops = [config_lib.check_test_crop(c) for c in test.crops]
  return (
    [
      Condition(crop, q, f, grid)
      for crop, grid in test_crops
      for f in test.first_qfs
      for q in test.qfs
    ]
    + [Condition(crop, grid=grid, resave=r) for crop, grid in test_crops for r in test.resaves]
    + [Condition(crop, grid=grid, chain=c) for crop, grid in test_crops for c in test.chains]
  )


# The most memory an automatic shuffle buffer may hold: a whole epoch of
# 64-pixel patches of a few thousand images, or 680 patches of 512 pixels.
SHUFFLE_BYTES = 512 * 2**20


def shuffle_buffer_size(config, num_images):
  """`config.schedule.shuffle_buffer`, or when None every patch of an epoch of
  `num_images` images, up to SHUFFLE_BYTES: with many patches per image a
  small buffer fills each batch from a few images, which slows learning."""
  if config.schedule.shuffle_buffer:
    return config.schedule.shuffle_buffer
  patches = max(1, num_images * config.patches_per_image)
  return max(config.schedule.batch_size, min(patches, SHUFFLE_BYTES // (3 * config.patch_size**2)))


REALIGNED = config_lib.REALIGNED

# The functions tf.data traces are written for the graph (tf.cond, tf.where,
# Python branches on Python values only): autograph's rewriting of them and
# of everything they call would only cost time, a third of a small run's.
_graph_as_written = tf.autograph.experimental.do_not_convert


@dataclasses.dataclass(frozen=True)
class Condition:
  """A test condition: how test patches are cut and compressed.

  With `first_qf`, a double compression: the whole test image is compressed at
  `first_qf`, the patch cut by `crop` (so `random` puts it at a random offset
  from that grid), then saved again at `qf`.
  """

  crop: str = "aligned"
  qf: int | None = None  # None: left as read
  first_qf: int | None = None  # None: a single compression (or none)
  # The grid `aligned` and `misaligned` crops are placed against: 8 (JPEG
  # blocks) or 16: the chroma MCU of the image as cut (16x16 at 4:2:0, 16 wide
  # x 8 high at 4:2:2: `chroma_grid`), whatever grid the net was trained on.
  grid: int = 8
  # "swap": each image of a less-compressed class saved whole, before the
  # crop, at a QF drawn from the other classes' stored QFs, so that all
  # classes look alike; "common": every image saved at one common QF
  # (`PipelineConfig.swap_qfs`, `common_qf`). "none": as stored.
  resave: str = "none"
  # A processing chain (tfjpeg.codec.chain_syntax) every test image goes through
  # whole before the crop: "resize:0.5>jpeg:75", "corvi2023". "none": as stored.
  chain: str = "none"

  def __post_init__(self):
    object.__setattr__(self, "chain", chain_syntax.parse(self.chain).text)
    if self.chain != "none" and (self.first_qf or self.resave != "none"):
      raise config_lib.ConfigError(
        "a chain test condition is its own whole-image processing: it takes no first_qf or resave"
      )
    if self.crop not in config_lib.TEST_CROPS:
      raise config_lib.ConfigError(
        f"test crop must be one of {config_lib.TEST_CROPS}, got {self.crop!r}"
      )
    if self.resave not in config_lib.RESAVES:
      raise config_lib.ConfigError(
        f"resave must be one of {config_lib.RESAVES}, got {self.resave!r}"
      )
    if self.resave != "none" and self.first_qf:
      raise config_lib.ConfigError(
        "a re-saved test image (swap, common) is its own first compression: it takes no first_qf"
      )
    grid_crop = self.crop in config_lib.GRID_CROPS
    if self.grid not in (8, 16) or (self.grid != 8 and not grid_crop):
      raise config_lib.ConfigError(
        f"{self.crop} test crops take grid 8{' or 16' * grid_crop}, got {self.grid}"
      )

  @property
  def name(self):
    first = f"_first{self.first_qf}" if self.first_qf else ""
    resave = "" if self.resave == "none" else f"_{self.resave}"
    chain = "" if self.chain == "none" else f"_chain-{config_lib.file_name(self.chain)}"
    return f"{self.spelling}_qf{self.qf or 'none'}{first}{resave}{chain}"

  @property
  def spelling(self):
    """How flags and tables name the crop: 'aligned', 'aligned16', 'random'."""
    return self.crop + (str(self.grid) if self.grid != 8 else "")


class ImagesSeen:
  """The images a pipeline delivered, by id. A pipeline given one skips an
  image whose decode fails at run time (a file changed on disk since it was
  probed) instead of stopping, and the caller names the images missing from
  `ids`: errors are never ignored without someone reporting them."""

  def __init__(self):
    self._ids, self._lock = set(), threading.Lock()

  def add(self, image_id):
    with self._lock:
      self._ids.add(image_id.numpy().decode())
    return True

  @property
  def ids(self):
    with self._lock:
      return set(self._ids)


def _skip_and_record(dataset, seen):
  """Per-image elements: failures skipped and survivors recorded in `seen` (if given)."""
  if seen is None:
    return dataset

  @_graph_as_written
  def record(element):
    done = tf.py_function(seen.add, [element["image_id"][0]], Tout=tf.bool)
    with tf.control_dependencies([done]):
      return {k: tf.identity(v) for k, v in element.items()}

  return dataset.ignore_errors(log_warning=True).map(record)


def whole_image(element, lattice_qf=None, chroma="4:2:0", first_qf=None, chain=None, seed=None):
  """Decodes `element["encoded"]` whole and puts it through the whole-image
  chain, the one place where whole images are processed before the crop:
  the lattice QF (`lattice_qf`), then `first_qf` (an int, or an int32 tensor
  with 0 for none: a double compression's first save, a swap or common
  re-save, the matched recipe's save of a lossless file), then the steps of
  `chain` (a tfjpeg.codec.chain_syntax.Chain, drawn from `seed`).

  Returns:
    (image, record): `tfjpeg.codec.chain_ops.apply`'s record, whose draws hold
    the lattice and first save too (an applied flag and a QF each, before
    the chain's own).
  """
  steps = []
  if lattice_qf:
    steps.append(chain_syntax.Step("jpeg", given=int(lattice_qf)))
  if first_qf is not None:
    steps.append(chain_syntax.Step("jpeg", given=first_qf))
  if chain is not None:
    steps += list(chain.steps)
  image = images.decode(element["encoded"])
  if seed is None:
    seed = tf.zeros([2], tf.int64)  # no step draws: the chain is empty
  return chain_ops.apply(image, steps, seed, chroma)


def decode_element(element, lattice_qf=None, chroma="4:2:0", first_qf=None):
  """`whole_image`'s image: the whole image at `lattice_qf`, then `first_qf`."""
  return whole_image(element, lattice_qf, chroma, first_qf)[0]


def cut_patches(
  element, config, modes, image_seed, first_qf=None, chain=None, small_ok=False, chain_seed=None
):
  """`patches_per_image` crops of one encoded image for each of `modes`: a crop
  mode (placed against `config.jpeg.crop_grid`) or a (crop mode, grid) pair.

  `first_qf` (an int, or an int32 tensor with 0 for none) compresses the whole
  decoded image before it is cut: the first save of a double compression.
  `chain` (tfjpeg.codec.chain_syntax.Chain) processes it whole after that.

  A JPEG source without a lattice QF is decoded window by window around each
  patch (`jpeg.decode_crop`, pixel-equal to a full decode) when that costs less
  than one whole decode (`jpeg.windowed_decode_pays`: a few small patches of a
  large photo); anything else is decoded whole, once. Offsets depend only on
  (image size, mode, seed, patch index), so both paths cut the same patches.

  Returns:
    {each of `modes`: {"image": [n, P, P, 3], "offset": [n, 2], "label", "image_id",
    "patch_index", and with a chain "draws": [n, D]}}.
  """
  size, n = config.patch_size, config.patches_per_image
  out = {}
  for key, cut in patch_sources(
    element, config, modes, image_seed, first_qf, chain, small_ok, chain_seed
  ).items():
    source, positions = cut.pop("source"), cut.pop("position")
    patches = _for_each_patch(
      lambda p, source=source: crops.crop_at(source, size, p), positions, [size, size, 3]
    )
    out[key] = dict(cut, image=tf.ensure_shape(patches, [n, size, size, 3]))
  return out


def _for_each_patch(function, values, shape, dtype=tf.uint8):
  """`function` of each of `values`, stacked: traced once and looped at run
  time (traced once per patch, ten patches' offsets, windows and crops took
  most of the seconds a pipeline spends being built, once an epoch)."""
  return tf.map_fn(function, values, fn_output_signature=tf.TensorSpec(shape, dtype))


# A crop grid of 16 names the chroma grid: the MCU of the image as it is cut.
CHROMA_GRID = 16
# The fold-in of an image's seed its processing chain draws from (patches use
# 0, 1, ...; the first save -1, offsets -2, a swap -3).
CHAIN_FOLD = -4


def image_chain_seed(seed, image_id):
  """The seed a processing chain draws from for the image `image_id` of a
  run (or an epoch) seeded with `seed`: a function of the two alone, so that
  what a chain draws does not depend on where the image falls in its split
  (a TFDS task reads it in another order than a folder) or on what the
  pipeline does before the chain (a lattice QF, cached or not, a double
  compression's first save)."""
  image = tf.strings.to_hash_bucket_fast(image_id, 2**62)  # a fingerprint: stable
  return seeds.for_example(seeds.for_example(seed, CHAIN_FOLD), image)


def chroma_grid(encoded, config, first_qf=None, chain=None):
  """(height, width) of the MCU of an image as it is cut: the pipeline's
  chroma's once it is saved whole (lattice QF, first QF; `first_qf` an int,
  or an int32 tensor with 0 for none; a processing chain), else the file's
  own (8 high x 16 wide at 4:2:2, 16 x 8 at 4:4:0); 16x16 for a file that is
  not a JPEG."""
  period = jpeg.grid_period(config.jpeg.chroma)
  saved = tf.constant([period, period], tf.int32)
  if config.lattice_qf or isinstance(first_qf, int) or (chain is not None and chain.steps):
    return saved
  own = jpeg.mcu_size(encoded)
  own = tf.where(own > 0, own, CHROMA_GRID)
  return own if first_qf is None else tf.where(first_qf > 0, saved, own)


def patch_sources(
  element, config, modes, image_seed, first_qf=None, chain=None, small_ok=False, chain_seed=None
):
  """What `cut_patches` cuts its patches from, before it cuts them: for each
  of `modes`, {"source": an image, "position": [n, 2], "offset": [n, 2],
  "label", "image_id", "patch_index"}, patch k being
  `source[position[k]:][:P, :P]`. The source is the whole decoded image
  (positions = offsets) or the windows around the patches, one below the
  other (positions (k P, 0)): the training pipeline cuts each patch once, when
  it is needed, instead of stacking them and taking them apart again (two
  copies of every patch, a tenth of its time on camera originals).

  With a `chain` (non-empty), the image goes through it whole first (drawn
  from `chain_seed`, else from `image_seed` folded with -4), each mode's entry carries its draws
  ("draws", [n, D]), and aligned crops follow the grid of the chain's last
  compression (a crop after it moves the grid). With `small_ok`, an image
  the chain leaves smaller than a patch gives blank patches and "valid"
  False (a test condition then leaves the image out) instead of an error."""
  chain = chain if chain is not None and chain.steps else None
  if chain_seed is None:
    chain_seed = seeds.for_example(image_seed, CHAIN_FOLD)
  encoded, size, n = element["encoded"], config.patch_size, config.patches_per_image
  keys, modes = (
    list(modes),
    [m if isinstance(m, tuple) else (m, config.jpeg.crop_grid) for m in modes],
  )

  def offsets_for(image_size, mode, image=None, origin=None):
    mode, crop_grid = mode
    base_mode = "random" if mode == REALIGNED else mode
    if crop_grid == CHROMA_GRID and base_mode != "random":
      crop_grid = chroma_grid(encoded, config, first_qf, chain)
    # A grid that a chain's crop moved: offsets counted from its origin.
    shift = origin if origin is not None and base_mode != "random" else None
    offsets = _for_each_patch(
      lambda k: crops.choose_offset(
        image_size if shift is None else image_size - shift,
        size,
        base_mode,
        crop_grid,
        tf.random.experimental.stateless_fold_in(image_seed, k),
      ),
      tf.range(n),
      [2],
      tf.int32,
    )
    if shift is not None:
      offsets = offsets + shift
    if mode == REALIGNED:
      origin, confidence = grid.estimate(image)
      realigned = _for_each_patch(
        lambda o: grid.realign(o, origin, image_size, (size, size)), offsets, [2], tf.int32
      )
      offsets = tf.where(confidence >= grid.CONFIDENT, realigned, offsets)
    return offsets

  stacked = tf.constant([[k * size, 0] for k in range(n)], tf.int32)

  def windowed(offsets):
    def windows(o):
      patches = _for_each_patch(lambda p: jpeg.decode_crop(encoded, p, (size, size)), o, window)
      return tf.reshape(patches, [n * size, size, 3])  # one below the other

    window = [size, size, 3]
    return [(windows(o), stacked, o) for o in offsets]

  draws = None
  valid = tf.constant(True)

  def whole(offsets=None):
    nonlocal draws
    image, record = whole_image(
      element,
      config.lattice_qf,
      config.jpeg.chroma,
      first_qf,
      chain,
      None if chain is None else chain_seed,
    )
    origin = None
    if chain is not None:
      draws = record["draws"][-len(chain_syntax.draw_columns(chain)) :]
      origin = record["grid_origin"]
      if small_ok:
        # A test image the chain made smaller than a patch: a blank stand-in,
        # marked not valid, so that this condition alone loses the image.
        nonlocal valid
        valid = tf.reduce_all(tf.shape(image)[:2] >= size)
        image = tf.cond(valid, lambda: image, lambda: tf.zeros([size, size, 3], tf.uint8))
    if offsets is None:
      offsets = [offsets_for(tf.shape(image)[:2], mode, image, origin) for mode in modes]
    return [(image, o, o) for o in offsets]

  def from_jpeg():
    # A JPEG's size is in its header: the offsets are drawn once, for either path.
    image_size = tf.image.extract_jpeg_shape(encoded)[:2]
    offsets = [offsets_for(image_size, mode) for mode in modes]
    pays = jpeg.windowed_decode_pays(image_size, tf.concat(offsets, 0), (size, size))
    return tf.cond(pays, lambda: windowed(offsets), lambda: whole(offsets))

  def chain_windows():
    # Only what each patch needs of the source and of every step: the plan
    # from the JPEG's header, offsets on the chain's result, then a window
    # chain per patch (pixel-equal to the whole image's).
    planned, record = chain_ops.plan(tf.image.extract_jpeg_shape(encoded)[:2], chain, chain_seed)
    offsets = [offsets_for(record["size"], mode, origin=record["grid_origin"]) for mode in modes]

    def patch_at(offset):
      return chain_ops.apply_window(
        lambda o, s: jpeg.decode_window(encoded, o, s),
        planned,
        offset,
        (size, size),
        config.jpeg.chroma,
      )

    cut = [
      (tf.reshape(_for_each_patch(patch_at, o, [size, size, 3]), [n * size, size, 3]), stacked, o)
      for o in offsets
    ]
    return cut, record["draws"][-len(chain_syntax.draw_columns(chain)) :], tf.constant(True)

  def whole_with_draws():
    cut = whole()
    return cut, draws, valid

  needs_whole = REALIGNED in [m for m, _ in modes]  # the grid is estimated from all of it
  windowed_chain = chain is not None and chain.windowable
  if windowed_chain and not (config.lattice_qf or needs_whole or first_qf is not None):
    pays = tf.cond(
      tf.io.is_jpeg(encoded),
      lambda: _chain_windows_pay(encoded, n, size, chain, chain_seed),
      lambda: tf.constant(False),
    )
    cut, draws, valid = tf.cond(pays, chain_windows, whole_with_draws)
  elif config.lattice_qf or needs_whole or first_qf is not None or chain is not None:
    cut = whole()
  else:
    cut = tf.cond(tf.io.is_jpeg(encoded), from_jpeg, whole)
  common = dict(
    label=tf.fill([n], element["label"]),
    image_id=tf.fill([n], element["image_id"]),
    patch_index=tf.range(n, dtype=tf.int32),
  )
  if draws is not None:
    common["draws"] = tf.tile(draws[None], [n, 1])
  if small_ok:
    common["valid"] = tf.fill([n], valid)
  return {
    key: dict(common, source=source, position=positions, offset=offsets)
    for key, (source, positions, offsets) in zip(keys, cut)
  }


def _chain_windows_pay(encoded, count, size, chain, chain_seed):
  """Whether `count` patches of `size` through a chain cost less window by
  window than on the whole image: while their windows (a patch with a
  margin on each side, counted generously at twice its side) cover less
  than half the photo, and the chain leaves it at least a patch wide."""
  shape = tf.image.extract_jpeg_shape(encoded)[:2]
  _, record = chain_ops.plan(shape, chain, chain_seed)
  image_size = tf.cast(shape, tf.float32)
  small = count * float(2 * size) ** 2 < 0.5 * image_size[0] * image_size[1]
  return tf.logical_and(small, tf.reduce_all(record["size"] >= size))


def _cut_when_needed(dataset, size):
  """Per-patch elements of per-image `patch_sources` elements, each patch cut
  from its source as it is read (one copy, where stacking and unbatching took
  three)."""

  @_graph_as_written
  def cut(source, patch):
    image = crops.crop_at(source, size, patch.pop("position"))
    return dict(patch, image=tf.ensure_shape(image, [size, size, 3]))

  @_graph_as_written
  def patches(element):
    element = dict(element)
    source = element.pop("source")
    return tf.data.Dataset.from_tensor_slices(element).map(lambda p: cut(source, p))

  return dataset.flat_map(patches)


def _per_image(dataset, config, mode, epoch_seed, seen=None):
  train_chain = chain_syntax.parse(config.jpeg.train_chain)

  @_graph_as_written
  def per_image(index, element):
    image_seed = seeds.for_example(epoch_seed, index)
    first_qf = None
    if config.jpeg.double_qfs:  # fold-in -1: patches use 0, 1, ...
      first_qf = jpeg.draw_quality(
        config.jpeg.double_qfs, config.jpeg.double_fraction, seeds.for_example(image_seed, -1)
      )
    elif config.match_qfs:  # a lossless file gets the first save a JPEG file had
      lossless = tf.cast(tf.logical_not(is_lossy(element["encoded"])), tf.float32)
      first_qf = jpeg.draw_quality(config.match_qfs, lossless, seeds.for_example(image_seed, -1))
    patches = patch_sources(
      element,
      config,
      [mode],
      image_seed,
      first_qf,
      train_chain,
      chain_seed=image_chain_seed(epoch_seed, element["image_id"]),
    )[mode]
    patches.pop("draws", None)
    patches["first_qf"] = tf.fill(
      [config.patches_per_image], tf.constant(0) if first_qf is None else first_qf
    )
    if not _train_qualities(config):  # else the augmentation sets it, patch by patch
      patches["qf"] = tf.zeros([config.patches_per_image], tf.int32)
    return patches

  dataset = dataset.enumerate().map(
    per_image, num_parallel_calls=_image_parallelism(), deterministic=True
  )
  return _cut_when_needed(_skip_and_record(dataset, seen), config.patch_size)


def _image_parallelism():
  """Images decoded at once: twice the cores. Images leave in order, so a
  photo that decodes fast must wait for a larger one before it; with only as
  many in flight as cores (AUTOTUNE's most), a core then idles (a tenth of the
  time on camera originals of mixed sizes). The cores this process may use,
  not the machine's (containers, batch schedulers)."""
  return 2 * len(os.sched_getaffinity(0))


def _train_qualities(config):
  """The QFs training patches are saved at (none: patches as decoded)."""
  return list(config.jpeg.train_qfs or config.match_qfs)


def is_lossy(encoded):
  """Whether encoded image bytes are JPEG or lossy WebP (its 'VP8 ' chunk)."""
  webp = tf.logical_and(
    tf.equal(tf.strings.substr(encoded, 0, 4), b"RIFF"),
    tf.equal(tf.strings.substr(encoded, 12, 4), b"VP8 "),
  )
  return tf.logical_or(tf.io.is_jpeg(encoded), webp)


def service_job_name(config, epoch):
  return f"{config.service_job}-seed{config.schedule.seed}-epoch{epoch}"


def train_dataset(
  task: "tasks.Task",
  config: PipelineConfig,
  epoch: int,
  splits: Sequence[str] = ("train",),
  seen: Optional["ImagesSeen"] = None,
) -> tf.data.Dataset:
  """One epoch of training batches; epoch `e` is the same whenever it is built.

  `splits` lists the task's splits it draws images from (the reference
  baseline also trains on the validation images). With `seen` (an
  `ImagesSeen`), an image that fails to decode is skipped and the others are
  recorded (not with a tf.data service, whose workers cannot record).
  """
  epoch_seed = seeds.for_example(config.schedule.seed, epoch)
  data_seed, crop_seed, aug_seed, shuffle_seed = seeds.split(epoch_seed, 4)
  images = task.images(splits[0], shuffle_seed=data_seed)
  for split in splits[1:]:
    images = images.concatenate(task.images(split, shuffle_seed=data_seed))
  dataset = _per_image(
    images, config, config.jpeg.train_crop, crop_seed, None if config.data_service else seen
  )
  qualities = _train_qualities(config)

  @_graph_as_written
  def augment(index, element):
    # A double-compressed image's patches are always saved again; the rest
    # with probability aug_fraction; with match_qfs every patch.
    fraction = tf.where(
      element["first_qf"] > 0, 1.0, 1.0 if config.match_qfs else config.jpeg.aug_fraction
    )
    element["image"], element["qf"] = jpeg.random_compress(
      element["image"],
      qualities,
      fraction,
      seeds.for_example(aug_seed, index),
      config.jpeg.chroma,
    )
    return element

  if qualities:  # a map over every patch costs a tenth of the pipeline's time: only if needed
    dataset = dataset.enumerate().map(
      augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
  # Mix patches of different images within a batch; seeded, so reproducible.
  buffer = shuffle_buffer_size(config, sum(task.num_images[s] for s in splits))
  dataset = dataset.shuffle(buffer, seed=seeds.to_int(shuffle_seed))
  dataset = dataset.batch(config.schedule.batch_size)
  if config.data_service:
    # Workers run everything above (reading, decoding, JPEG) and split the
    # images between them (each read once); this host only receives batches.
    # With one worker the epoch equals the local one; with several, patch
    # positions are still seeded but depend on how images fall to workers.
    dataset = dataset.apply(
      tf.data.experimental.service.distribute(
        processing_mode="distributed_epoch",
        service=config.data_service,
        job_name=service_job_name(config, epoch),
      )
    )
  return dataset.prefetch(tf.data.AUTOTUNE)


def eval_dataset(
  task: "tasks.Task",
  split: str,
  conditions: Sequence["Condition"],
  config: PipelineConfig,
  seen: Optional["ImagesSeen"] = None,
) -> tf.data.Dataset:
  """Batches of `split` under every test condition, each image read and decoded once.

  Each element carries `condition`, the index of its condition in `conditions`.
  With chain conditions, each also carries `draws` ([D], padded with zeros:
  what its condition's chain drew for its image, `chain_syntax.draw_columns`) and
  `valid` (False where the chain left the image smaller than a patch: a blank
  stand-in, which the evaluation leaves out of that condition alone).
  With `seen`, an image that fails to decode is skipped and the others recorded.
  Crops depend only on (seed, image, crop mode), so every run, and every
  combination of conditions, cuts the same test patches (a double compression
  cuts them at the same places too).
  """
  conditions = list(conditions)
  # Conditions sharing a first save share one decoded (and once-compressed) image.
  firsts = sorted({_first_save(c) for c in conditions})
  eval_seed = seeds.for_example(config.schedule.seed, -1)  # independent of training epochs
  if any(c.resave == "swap" for c in conditions) and not config.swap_qfs:
    raise ValueError("a swap test condition needs the classes' stored QFs (swap_qfs)")
  if any(c.resave == "common" for c in conditions) and not config.common_qf:
    raise ValueError("a common-QF test condition needs common_qf")

  chain_of = {_first_save(c): chain_syntax.parse(c.chain) for c in conditions if c.chain != "none"}
  draw_width = max([len(chain_syntax.draw_columns(c)) for c in chain_of.values()], default=0)

  def first_qf_of(first, element, image_seed):
    """The first save of `first` (a QF, 0, "swap" or "common") for one image."""
    if first in chain_of:
      return None
    if first == "swap":
      return swap_quality(config.swap_qfs, element["label"], seeds.for_example(image_seed, -3))
    if first == "common":
      return int(config.common_qf)
    return int(first) or None

  @_graph_as_written
  def per_image(index, element):
    image_seed = seeds.for_example(eval_seed, index)
    cuts = {
      first: cut_patches(
        element,
        config,
        sorted({(c.crop, c.grid) for c in conditions if _first_save(c) == first}),
        image_seed,
        first_qf_of(first, element, image_seed),
        chain_of.get(first),
        small_ok=first in chain_of,
        chain_seed=image_chain_seed(eval_seed, element["image_id"]),
      )
      for first in firsts
    }
    outputs = []
    for number, condition in enumerate(conditions):
      patches = dict(cuts[_first_save(condition)][(condition.crop, condition.grid)])
      if condition.qf:
        patches["image"] = tf.map_fn(
          lambda p, q=int(condition.qf): jpeg.compress(p, q, config.jpeg.chroma), patches["image"]
        )
      patches["qf"] = tf.fill([config.patches_per_image], condition.qf or 0)
      patches["first_qf"] = tf.fill([config.patches_per_image], condition.first_qf or 0)
      patches["condition"] = tf.fill([config.patches_per_image], number)
      if chain_of:
        draws = patches.pop("draws", tf.zeros([config.patches_per_image, 0], tf.float64))
        patches["draws"] = tf.pad(draws, [[0, 0], [0, draw_width - tf.shape(draws)[1]]])
        patches.setdefault("valid", tf.fill([config.patches_per_image], True))
      outputs.append(patches)
    return {k: tf.concat([o[k] for o in outputs], 0) for k in outputs[0]}

  return _per_image_batches(task, split, per_image, config, seen)


def _first_save(condition):
  """What a condition does to the whole image before the crop: its first QF
  (0: nothing), its re-save ("swap", "common") or its chain; sortable as text."""
  if condition.chain != "none":
    return f"chain:{condition.chain}"
  return condition.resave if condition.resave != "none" else f"{condition.first_qf or 0:03d}"


def swap_quality(swap_qfs, label, seed):
  """The QF a swap condition saves an image of class `label` at: a stateless
  draw from `swap_qfs[label]`, 0 (left as stored) where that pool is empty."""
  longest = max(1, max(len(p) for p in swap_qfs))
  table = tf.constant([list(p) + [0] * (longest - len(p)) for p in swap_qfs], tf.int32)
  sizes = tf.constant([len(p) for p in swap_qfs], tf.int32)
  size = tf.gather(sizes, label)
  pick = tf.cast(tf.random.stateless_uniform([], seed) * tf.cast(size, tf.float32), tf.int32)
  return tf.where(size > 0, tf.gather(table[label], tf.minimum(pick, tf.maximum(size - 1, 0))), 0)


def offset_dataset(task, split, config, period=8, qf=None, first_qf=None, seen=None):
  """Batches of `split` with each image cut at every grid phase, for per-offset analysis.

  Each image gets one base position, a multiple of 16 so that the unshifted
  patch keeps both the 8x8 luma blocks and the 16x16 chroma MCUs of 4:2:0 JPEG
  intact; then (period + 1)^2 patches at base + (dy, dx), dy, dx in
  0..`period`. Phases are against the grid of the image as decoded (the
  lattice QF's if there is one, else the file's own, which starts at the
  top-left), and the same content is seen at every phase, so any accuracy
  change comes from the phase alone. `qf` and `first_qf` compress as in
  `Condition`. Elements carry `phase` = (dy, dx) and `mcu`, the chroma MCU of
  the image as cut (`chroma_grid`: 8 high x 16 wide for a 4:2:2 camera
  file). With `seen`, an image that fails to decode is skipped and the others
  recorded.
  """
  if period < 1:
    raise ValueError(f"offset period must be positive, got {period}")
  size = config.patch_size
  phases = tf.constant([(dy, dx) for dy in range(period + 1) for dx in range(period + 1)], tf.int32)
  count = (period + 1) ** 2
  offset_seed = seeds.for_example(config.schedule.seed, -2)

  @_graph_as_written
  def per_image(index, element):
    image = decode_element(
      element, config.lattice_qf, config.jpeg.chroma, int(first_qf) if first_qf else None
    )
    image_size = tf.shape(image)[:2]
    check = tf.debugging.Assert(
      tf.reduce_all(image_size >= size + period),
      [
        "per-offset analysis shifts each patch by up to",
        period,
        "pixels: it needs images of at least patch size +",
        period,
        "but image",
        element["image_id"],
        "is",
        image_size,
      ],
    )
    with tf.control_dependencies([check]):
      base = crops.choose_offset(
        image_size - period, size, "aligned", max(16, period), seeds.for_example(offset_seed, index)
      )
    offsets = base + phases
    # 81 or 289 crops: traced once.
    patches = _for_each_patch(lambda o: crops.crop_at(image, size, o), offsets, [size, size, 3])
    if qf:
      patches = tf.map_fn(lambda p: jpeg.compress(p, int(qf), config.jpeg.chroma), patches)
    mcu = chroma_grid(element["encoded"], config, int(first_qf) if first_qf else None)
    return dict(
      image=patches,
      offset=offsets,
      phase=phases,
      mcu=tf.tile(mcu[None], [count, 1]),
      label=tf.fill([count], element["label"]),
      image_id=tf.fill([count], element["image_id"]),
    )

  return _per_image_batches(task, split, per_image, config, seen)


def _per_image_batches(task, split, per_image, config, seen):
  """Batches of the patches `per_image(index, element)` cuts from each image of
  `split`, in order; failures skipped and recorded in `seen` (if given)."""
  dataset = (
    task.images(split)
    .enumerate()
    .map(per_image, num_parallel_calls=_image_parallelism(), deterministic=True)
  )
  dataset = _skip_and_record(dataset, seen)
  return dataset.unbatch().batch(config.schedule.batch_size).prefetch(tf.data.AUTOTUNE)


def to_inputs(dataset):
  """(patch, label) pairs, as Keras `fit` wants them."""
  return dataset.map(
    _graph_as_written(lambda e: (e["image"], e["label"])), num_parallel_calls=tf.data.AUTOTUNE
  )


def free_port():
  """A port no one listens on now, for a server started next."""
  with socket.socket() as probe:
    probe.bind(("", 0))
    return probe.getsockname()[1]


def serve(role, port=0, dispatcher=None, worker_address="localhost", log=print):
  """Runs a tf.data service dispatcher or worker until the process is stopped.
  Prints the address it serves on first ("dispatcher grpc://host:port" or
  "worker host:port"), for the scripts that start it."""
  service = tf.data.experimental.service
  port = port or free_port()
  if role == "dispatcher":
    server = service.DispatchServer(service.DispatcherConfig(port=port))
    log(f"dispatcher {server.target}")
  elif role == "worker":
    server = service.WorkerServer(
      service.WorkerConfig(
        dispatcher_address=dispatcher.removeprefix("grpc://"),
        port=port,
        worker_address=f"{worker_address}:{port}",
      )
    )
    log(f"worker {worker_address}:{port}")
  else:
    raise ValueError(f"role must be dispatcher or worker, got {role!r}")
  server.join()
