"""Applying a processing chain (tfjpeg.codec.chain_syntax) to a whole image, on the graph.

    image, record = apply(image, chain_syntax.parse("resize:0.5>jpeg:75"), seed)

`plan` draws everything a chain does to an image from its size alone (sizes,
places, sigmas, QFs); `apply` carries the plan out on the whole image, and
`apply_window` on only the part of the source a patch of the result needs:
each step's window is worked out backwards from the patch (a resize reads the
rows and columns under its taps, a blur its radius around, a JPEG save whole
MCUs and one more around them), then the steps run forwards on the windows.
Both give the same pixels (tests/test_chains.py); a small patch of a large
photo costs a fraction of the whole image's work.

`record` says what was drawn (`chain_syntax.draw_columns` names its entries) and
where the grid of the last compression lies in the result: after a JPEG it
starts at the top-left pixel; a later crop moves it (aligned patches then
follow it, `record["grid_origin"]`); a later resize leaves no grid, and the
origin goes back to (0, 0), where a later save would put it.

Every step runs eagerly, under `tf.function` and inside `Dataset.map`; every
draw is a stateless function of `seed` and the step's place in the chain.
"""

import math
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfjpeg.codec import chain_syntax
from tfjpeg.codec import jpeg
from tfjpeg.codec import resample
from tfjpeg.core import seeds

TensorLike = Any

# Grid origins are kept modulo the largest MCU (16), which holds the 8x8 grid.
_GRID = 16


def _coin(step, seed):
  if step.probability >= 1.0:
    return tf.constant(True)
  return tf.random.stateless_uniform([], seed, dtype=tf.float32) < step.probability


def draw(value: chain_syntax.Value, seed: TensorLike, whole: bool) -> tf.Tensor:
  """A draw of `value`: itself when fixed, uniform in its range (whole
  numbers: each equally likely), or one of its choices."""
  if value.choices:
    pick = tf.random.stateless_uniform(
      [], seed, minval=0, maxval=len(value.choices), dtype=tf.int32
    )
    out = tf.gather(tf.constant(value.choices, tf.float64), pick)
  elif value.high is None:
    out = tf.constant(value.low, tf.float64)
  elif whole:
    out = tf.cast(
      tf.random.stateless_uniform(
        [], seed, minval=int(value.low), maxval=int(value.high) + 1, dtype=tf.int32
      ),
      tf.float64,
    )
  else:
    unit = tf.random.stateless_uniform([], seed, dtype=tf.float64)
    out = value.low + unit * (value.high - value.low)
  return out


def _resize_size(image_size, step, seed):
  """The size a resize step draws for an image of `image_size`."""
  if step.size is not None:
    height_seed, width_seed = seeds.split(seed, 2)
    return tf.stack(
      [
        tf.cast(draw(step.size[0], height_seed, True), tf.int32),
        tf.cast(draw(step.size[1], width_seed, True), tf.int32),
      ]
    )
  return resample.scaled_size(image_size, draw(step.factor, seed, False))


def _crop_window(image_size, step, seed):
  """(offset, size) of a crop step's window: a square's side drawn in its
  range cut to the image's smaller side, or a drawn HxW cut to the image;
  the position uniform over the places it fits."""
  side_seed, width_seed, y_seed, x_seed = seeds.split(seed, 4)
  height, width = step.size
  if height == width and height.high is not None:
    smallest = tf.reduce_min(image_size)
    low = tf.minimum(int(height.low), smallest)
    high = tf.maximum(tf.minimum(int(height.high), smallest), low)
    side = tf.random.stateless_uniform([], side_seed, minval=low, maxval=high + 1, dtype=tf.int32)
    size = tf.stack([side, side])
  elif height == width:
    side = tf.cast(draw(height, side_seed, True), tf.int32)
    size = tf.stack([side, side])
  else:
    size = tf.stack(
      [
        tf.cast(draw(height, side_seed, True), tf.int32),
        tf.cast(draw(width, width_seed, True), tf.int32),
      ]
    )
  size = tf.minimum(size, image_size)
  room = image_size - size + 1
  y = tf.random.stateless_uniform([], y_seed, minval=0, maxval=room[0], dtype=tf.int32)
  x = tf.random.stateless_uniform([], x_seed, minval=0, maxval=room[1], dtype=tf.int32)
  return tf.stack([y, x]), size


def _centre_window(image_size, step):
  """(offset, size) of a centre step's window: its size cut to the image,
  its top-left at half the room on each axis, rounded down."""
  size = tf.minimum(tf.stack([int(step.size[0].low), int(step.size[1].low)]), image_size)
  return (image_size - size) // 2, size


_TRIES = 10  # torchvision's RandomResizedCrop tries ten windows, then takes the centre


def _rrc_window(image_size, seed):
  """(offset, size) of torchvision's `RandomResizedCrop.get_params` window
  (AI-GenBench's scale and ratio, `chain_syntax.RRC_SCALE`, `RRC_RATIO`):
  ten tries of an area share and a log-uniform aspect, the first that fits
  placed uniformly; else the centre, its aspect clamped to the ratio range."""
  area_seed, ratio_seed, y_seed, x_seed = seeds.split(seed, 4)
  height, width = tf.cast(image_size[0], tf.float64), tf.cast(image_size[1], tf.float64)
  low, high = chain_syntax.RRC_SCALE
  log_low, log_high = (math.log(r) for r in chain_syntax.RRC_RATIO)
  area = height * width * tf.random.stateless_uniform([_TRIES], area_seed, low, high, tf.float64)
  aspect = tf.exp(tf.random.stateless_uniform([_TRIES], ratio_seed, log_low, log_high, tf.float64))
  w = tf.round(tf.sqrt(area * aspect))  # Python's round: half to even, as tf.round
  h = tf.round(tf.sqrt(area / aspect))
  fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
  first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
  ratio_low, ratio_high = chain_syntax.RRC_RATIO
  in_ratio = width / height
  fallback_w = tf.where(in_ratio > ratio_high, tf.round(height * ratio_high), width)
  fallback_h = tf.where(in_ratio < ratio_low, tf.round(width / ratio_low), height)
  found = tf.reduce_any(fits)
  size = tf.cast(
    tf.where(found, tf.stack([h[first], w[first]]), tf.stack([fallback_h, fallback_w])), tf.int32
  )
  room = tf.cast(image_size, tf.int32) - size + 1
  y = tf.random.stateless_uniform(
    [], y_seed, minval=0, maxval=tf.maximum(room[0], 1), dtype=tf.int32
  )
  x = tf.random.stateless_uniform(
    [], x_seed, minval=0, maxval=tf.maximum(room[1], 1), dtype=tf.int32
  )
  offset = tf.where(found, tf.stack([y, x]), (tf.cast(image_size, tf.int32) - size) // 2)
  return offset, size


def _fitted_size(image_size, side):
  """The size `fit:side` shrinks `image_size` to: the longer side `side`, the
  other in proportion, rounded half up (at least 1)."""
  longest = tf.cast(tf.reduce_max(image_size), tf.float64)
  scaled = tf.floor(tf.cast(image_size, tf.float64) * side / longest + 0.5)
  return tf.maximum(tf.cast(scaled, tf.int32), 1)


def _gray(image):
  """Pillow's `convert("L")` (ITU-R 601-2 luma in 16-bit fixed point),
  copied to three channels."""
  rgb = tf.cast(image, tf.int32)
  luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) // 65536
  return tf.tile(tf.cast(luma, tf.uint8)[..., None], [1, 1, 3])


def _noisy(image, std, seed):
  """`image` plus Gaussian noise of `std` x 255 per pixel and channel, as
  albumentations adds it to uint8 images (albucore's `add`): the noise cut
  to whole levels towards zero, then the sum clipped to 0..255."""
  noise = tf.random.stateless_normal(tf.shape(image), seed, dtype=tf.float32)
  levels = tf.math.floor(tf.abs(noise * tf.cast(std * 255.0, tf.float32))) * tf.sign(noise)
  noisy = tf.cast(image, tf.float32) + levels
  return tf.cast(tf.clip_by_value(noisy, 0.0, 255.0), tf.uint8)


def _kernels(step):
  """The kernels a resize step may use: Corvi et al.'s `auto` is Pillow's
  antialiasing Lanczos to shrink, bicubic to enlarge."""
  return ("lanczos", "bicubic") if step.kernel == "auto" else (step.kernel, step.kernel)


def _whole_only(step):
  return ValueError(
    f"a {step.name} step is computed on the whole image only: no window of it "
    "(chain_syntax.Chain.windowable)"
  )


def _where(applied, yes, no):
  """tf.where(applied, yes, no), without the op where `applied` is known."""
  known = tf.get_static_value(applied)
  if known is not None:
    return tf.convert_to_tensor(yes if known else no)
  return tf.where(applied, yes, no)


def plan(
  image_size: TensorLike,
  chain: chain_syntax.Chain | str | Sequence[chain_syntax.Step],
  seed: TensorLike,
  grid_origin: TensorLike | None = None,
) -> tuple[list[dict], dict]:
  """Everything `chain` draws for an image of `image_size` (height, width),
  without its pixels: one dict per step (its `step`, whether it is
  `applied`, the sizes `before` and `after` it, and what it drew), and the
  record `apply` returns. `chain` is a Chain, its text, or a list of steps.
  The chain's own step k (counting from 0, the pipeline's saves with `given`
  left out) draws from `seeds.for_example(seed, k)`: what a chain draws does
  not change with what the pipeline puts before it. `grid_origin` is where the grid of the
  image's last compression lies before the chain (its top-left pixel by
  default)."""
  if isinstance(chain, str):
    chain = chain_syntax.parse(chain)
  steps = chain.steps if isinstance(chain, chain_syntax.Chain) else tuple(chain)
  size = tf.cast(tf.convert_to_tensor(image_size)[:2], tf.int32)
  origin = tf.zeros([2], tf.int32) if grid_origin is None else tf.cast(grid_origin, tf.int32)
  zero = tf.zeros([2], tf.int32)
  planned, draws, applied_flags = [], [], []
  saved = tf.constant(0, tf.int32)  # the QF of the last save that applied
  number = 0  # the step's place among the steps that draw
  for step in steps:
    entry = dict(step=step, before=size)
    if step.given is None:
      coin_seed, value_seed = seeds.split(seeds.for_example(seed, number), 2)
      number += 1
    if step.name == "jpeg" and step.given is not None:
      # The pipeline's own saves (lattice, first save, swap): drawn by it.
      quality = tf.cast(step.given, tf.int32)
      applied = quality > 0
      entry.update(applied=applied, quality=quality)
      values = [quality]
      origin = _where(applied, zero, origin)
      saved = _where(applied, quality, saved)
    else:
      applied = _coin(step, coin_seed)
      if step.name == "jpeg" and step.quality is not None:
        quality = _where(applied, tf.cast(draw(step.quality, value_seed, True), tf.int32), 0)
        entry.update(quality=quality)
        values = [quality]
        origin = _where(applied, zero, origin)
        saved = _where(applied, quality, saved)
      elif step.name == "blur" and step.sigma is not None:
        sigma = step.sigma.low if step.sigma.fixed else draw(step.sigma, value_seed, False)
        entry.update(sigma=sigma)
        values = [_where(applied, tf.cast(sigma, tf.float64), tf.constant(0.0, tf.float64))]
      elif step.name == "resize":
        resized = _resize_size(size, step, value_seed)
        entry.update(size=resized, shrinks=tf.reduce_any(resized < size))
        values = [resized[0], resized[1]]
        size = _where(applied, resized, size)
        origin = _where(applied, zero, origin)  # no grid survives; a save starts one at 0
      elif step.name == "fit" and step.side is not None:
        fitted = _fitted_size(size, float(step.side.low))
        applied = tf.logical_and(applied, tf.reduce_max(size) > int(step.side.low))
        entry.update(size=fitted, shrinks=tf.constant(True))
        values = [fitted[0], fitted[1]]
        size = _where(applied, fitted, size)
        origin = _where(applied, zero, origin)
      elif step.name == "gray":
        values = []
      elif step.name == "noise" and step.std is not None:
        std_seed, field_seed = seeds.split(value_seed, 2)
        std = tf.cast(
          step.std.low if step.std.fixed else draw(step.std, std_seed, False), tf.float64
        )
        entry.update(std=std, field_seed=field_seed)
        values = [std]
      elif step.name == "rrc" and step.side is not None:
        side_seed, kernel_seed, window_seed = seeds.split(value_seed, 3)
        side = tf.cast(draw(step.side, side_seed, True), tf.int32)
        kernel = tf.random.stateless_uniform(
          [], kernel_seed, minval=0, maxval=len(step.kernel.split("|")), dtype=tf.int32
        )
        offset, cut = _rrc_window(size, window_seed)
        entry.update(offset=offset, window=cut, side=side, kernel=kernel)
        values = [offset[0], offset[1], cut[0], cut[1], side, kernel]
        size = _where(applied, tf.stack([side, side]), size)
        origin = _where(applied, zero, origin)
      else:  # crop, centre
        if step.name == "centre":
          offset, cut = _centre_window(size, step)
        else:
          offset, cut = _crop_window(size, step, value_seed)
        entry.update(offset=offset, size=cut)
        values = [offset[0], offset[1], cut[0], cut[1]]
        # A crop the size of the image leaves it as it was.
        entry.update(changes=tf.logical_and(applied, tf.reduce_any(cut < size)))
        size = _where(applied, cut, size)
        origin = _where(applied, (origin - offset) % _GRID, origin)
      entry.update(applied=applied)
    entry.update(after=size)
    planned.append(entry)
    applied_flags.append(tf.convert_to_tensor(entry.get("changes", entry["applied"])))
    draws += [tf.cast(applied, tf.float64)] + [
      _where(applied, tf.cast(v, tf.float64), tf.constant(0.0, tf.float64)) for v in values
    ]
  record = dict(
    draws=tf.stack(draws) if draws else tf.zeros([0], tf.float64),
    grid_origin=origin,
    size=size,
    quality=saved,
    # Whether any step changed the image: else the result is the image as it came.
    changed=tf.reduce_any(tf.stack(applied_flags)) if applied_flags else tf.constant(False),
  )
  return planned, record


def apply(
  image: TensorLike,
  chain: chain_syntax.Chain | str | Sequence[chain_syntax.Step],
  seed: TensorLike,
  chroma: str = "4:2:0",
  grid_origin: TensorLike | None = None,
) -> tuple[tf.Tensor, dict]:
  """`image` (uint8 HxWx3) put through the steps of `chain`, in order.

  `chain` is a Chain, its text (`"resize:0.5>jpeg:75"`, a preset's name) or a
  list of steps. Step k draws from `seeds.for_example(seed, k)` (k counts
  the chain's own steps, see `plan`). A jpeg step with `given`
  (the pipeline's own: a lattice QF, a double compression's first save, a
  swap) saves at that QF, a Python int or an int32 tensor with 0 for none.

  Returns:
    (image, record): record["draws"] is a float64 vector, one entry per name
    of `chain_syntax.draw_columns`; record["grid_origin"] the (y, x) of the last
    compression's grid in the result, modulo 16 (from `grid_origin`, the
    top-left pixel by default, where no step sets it); record["size"] its
    size; record["quality"] the QF of the last JPEG save that applied (0
    none).

  Examples:
    >>> image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)
    >>> chain = tfjpeg.codec.chain_syntax.parse("resize:0.5>jpeg:75")
    >>> out, record = tfjpeg.codec.chain_ops.apply(image, chain, seed=(0, 1))
    >>> out.shape, [float(v) for v in record["draws"]]
    (TensorShape([32, 48, 3]), [1.0, 32.0, 48.0, 1.0, 75.0])
  """
  image = tf.convert_to_tensor(image)
  planned, record = plan(tf.shape(image)[:2], chain, seed, grid_origin)
  origin = tf.zeros([2], tf.int32)
  for entry in planned:  # the whole image is each step's window and box
    image = _window(image, origin, entry, origin, entry["after"], chroma, whole=True)
  image.set_shape([None, None, 3])
  return image, record


def apply_and_encode(
  image: TensorLike | None,
  chain: chain_syntax.Chain | str | Sequence[chain_syntax.Step],
  seed: TensorLike,
  chroma: str = "4:2:0",
  read: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
  image_size: TensorLike | None = None,
) -> tuple[tf.Tensor, dict, tf.Tensor]:
  """`apply`, and the file the result is as saved: when the chain ends in a
  JPEG save that applied, that save's bytes (which decode, with the accurate
  IDCT, to the result), else an empty string (the result was not saved last).

  Instead of `image`, `read(offset, size)` and `image_size` give the source
  window by window (a JPEG's `decode_window` and header): only the part of
  the source the result needs is read (`apply_window`), a crop of a large
  photo without decoding all of it.

  Returns:
    (image, record, data): `apply`'s two, and the bytes.
  """
  steps = chain.steps if isinstance(chain, chain_syntax.Chain) else chain
  if isinstance(steps, str):
    steps = chain_syntax.parse(steps).steps
  steps = tuple(steps)
  if image is not None:
    image = tf.convert_to_tensor(image)
    image_size = tf.shape(image)[:2]
  planned, record = plan(image_size, steps, seed)
  saves_last = bool(planned) and planned[-1]["step"].name == "jpeg"
  before_save = planned[:-1] if saves_last else planned
  origin = tf.zeros([2], tf.int32)
  if image is None:
    if read is None:
      raise ValueError("apply_and_encode takes an image, or read and image_size")
    size = before_save[-1]["after"] if before_save else tf.cast(image_size, tf.int32)
    image = apply_window(read, before_save, origin, size, chroma)
  else:
    for entry in before_save:
      image = _window(image, origin, entry, origin, entry["after"], chroma, whole=True)
  data = tf.constant("")
  if saves_last:
    last = planned[-1]
    step = last["step"]
    quality = step.given if isinstance(step.given, int) else last["quality"]
    saved_chroma = step.chroma or chroma
    before = image

    def save():
      encoded = jpeg.encode(before, quality, saved_chroma)
      return jpeg.decode(encoded), encoded

    image, data = _when(last["applied"], save, lambda: (before, tf.constant("")))
  image.set_shape([None, None, 3])
  return image, record, data


def _input_box(entry, offset, box):
  """The part of step `entry`'s input that the `box` at `offset` of its
  output is computed from: (offset, size)."""
  step, applied = entry["step"], entry["applied"]
  if step.name == "jpeg":
    grown = jpeg.compress_input_box(entry["before"], offset, box)
    return tuple(tf.where(applied, g, v) for g, v in zip(grown, (offset, box)))
  if step.name == "blur":
    radius = tf.where(applied, resample.blur_radius(entry["sigma"]), 0)
    low = tf.maximum(offset - radius, 0)
    high = tf.minimum(offset + box + radius, entry["before"])
    return low, high - low
  if step.name in ("gray",):
    return offset, box
  if step.name in chain_syntax.WHOLE_ONLY:
    raise _whole_only(step)
  if step.name in ("resize", "fit"):
    shrink, grow = _kernels(step)

    def reads(kernel):
      return resample.resize_input_box(entry["before"], entry["size"], kernel, offset, box)

    def needed():
      if shrink == grow:
        return reads(shrink)
      return tf.cond(entry["shrinks"], lambda: reads(shrink), lambda: reads(grow))

    # Not applied: the box is in the unresized image, which the drawn size's
    # coefficients do not describe.
    return tf.cond(applied, needed, lambda: (offset, box))
  return tf.where(applied, offset + entry["offset"], offset), box


def _when(applied, then, otherwise):
  """`then()` where the step applies, else `otherwise()`; without a
  conditional where that is known when the graph is built (probability 1)."""
  known = tf.get_static_value(applied)
  if known is not None:
    return then() if known else otherwise()
  return tf.cond(applied, then, otherwise)


def _window(window, window_offset, entry, offset, box, chroma, whole=False):
  """The `box` at `offset` of step `entry`'s output, from `window` (its input
  at `window_offset`, as `_input_box` asked). `whole`: the window is the
  step's whole input and the box its whole output (`apply`), nothing to cut."""
  step, applied = entry["step"], entry["applied"]
  local = offset - window_offset

  def cut(image, at):
    return image if whole else image[at[0] :][: box[0]][:, at[1] :][:, : box[1]]

  def kept():  # the step left the image alone: the box is the window's
    return cut(window, local)

  if step.name == "jpeg":
    # A static QF (the lattice's) keeps the static-quality op it always had.
    quality = step.given if isinstance(step.given, int) else entry["quality"]
    chroma = step.chroma or chroma  # a preset's own, else the run's
    if tf.get_static_value(applied) is not None and tf.get_static_value(applied):
      # Always applied: the QF drawn is in 1..100, no conditional on it.
      return cut(jpeg.compress(window, quality, chroma), local)
    return _when(
      applied,
      lambda: jpeg.compress_window(window, window_offset, quality, chroma, offset, box),
      kept,
    )
  if step.name == "blur":
    sigma = entry["sigma"]
    blurred = lambda: resample.blur_window(  # noqa: E731
      window, window_offset, entry["before"], sigma, offset, box
    )
    return _when(applied, blurred, kept)
  if step.name == "gray":
    return _when(applied, lambda: cut(_gray(window), local), kept)
  if step.name == "noise":
    if not whole:
      raise _whole_only(step)
    return _when(applied, lambda: _noisy(window, entry["std"], entry["field_seed"]), kept)
  if step.name == "rrc":
    if not whole:
      raise _whole_only(step)

    def resized_crop():
      (y, x), (h, w) = tf.unstack(entry["offset"]), tf.unstack(entry["window"])
      part = window[y : y + h, x : x + w]
      side = tf.stack([entry["side"], entry["side"]])
      branches = [lambda k=k: resample.resize(part, side, k) for k in step.kernel.split("|")]
      return tf.switch_case(entry["kernel"], branches)

    return _when(applied, resized_crop, kept)
  if step.name in ("resize", "fit"):
    shrink, grow = _kernels(step)

    def resized(kernel):
      return resample.resize_window(
        window, window_offset, entry["before"], entry["size"], kernel, offset, box
      )

    if shrink == grow:
      return _when(applied, lambda: resized(shrink), kept)
    return _when(
      applied,
      lambda: tf.cond(entry["shrinks"], lambda: resized(shrink), lambda: resized(grow)),
      kept,
    )
  # A crop: its output's box is its input's box moved by the crop's offset.
  moved = tf.where(applied, offset + entry["offset"], offset) - window_offset
  return window[moved[0] :][: box[0]][:, moved[1] :][:, : box[1]]


def apply_window(
  read: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
  planned: list[dict],
  offset: TensorLike,
  size: Sequence[int],
  chroma: str = "4:2:0",
) -> tf.Tensor:
  """The `size` patch at `offset` of the chain's result, pixel-equal to
  `apply`'s, computed from only the part of the source it needs:
  `read(offset, size)` returns that part of the source image (a windowed
  JPEG decode, say), `planned` is `plan`'s list for the source's size.
  `size` is a pair of ints, or an int32 tensor known only at run time."""
  offset = tf.cast(offset, tf.int32)
  static = size if isinstance(size, (list, tuple)) else tf.get_static_value(size)
  box = tf.cast(tf.convert_to_tensor(size), tf.int32)
  boxes = [(offset, box)]
  for entry in reversed(planned):
    boxes.append(_input_box(entry, *boxes[-1]))
  boxes.reverse()  # boxes[k]: what step k reads; boxes[-1]: the patch
  window = read(*boxes[0])
  for entry, (window_offset, _), (out_offset, out_box) in zip(planned, boxes, boxes[1:]):
    window = _window(window, window_offset, entry, out_offset, out_box, chroma)
  if static is None:
    window.set_shape([None, None, 3])
    return window
  return tf.ensure_shape(window, [int(v) for v in static] + [3])
