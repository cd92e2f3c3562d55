"""Exact JPEG on the TensorFlow graph.

Every function here runs eagerly, under `tf.function` and inside
`tf.data.Dataset.map`, and reproduces libjpeg as OpenCV and PIL use it pixel
for pixel: baseline encode with the accurate integer DCT, decode with the
accurate integer IDCT and fancy chroma upsampling.

Why not `tf.image.adjust_jpeg_quality` or a plain `tf.io.decode_jpeg`: both
decode with the fast integer IDCT, which moves pixels by up to 9 levels at
QF 99-100. Forensic traces live in exactly those levels.
"""

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfjpeg.core import seeds

# What the ops take: a tensor, or anything tf.convert_to_tensor takes.
TensorLike = Any


CHROMA_MODES = ("4:2:0", "4:4:4")
QUALITY_RANGE = (1, 100)


def grid_period(chroma):
  """The MCU size in pixels: 16 for 4:2:0 (chroma blocks span 16x16), 8 for 4:4:4."""
  _check_chroma(chroma)
  return 16 if chroma == "4:2:0" else 8


# Frame headers (SOFn): every 0xC0..0xCF marker but DHT, JPG and DAC.
_NOT_FRAMES = (0xC4, 0xC8, 0xCC)
# Markers that stand alone, without a length: TEM, RST0-7, SOI, EOI.
_STANDALONE = (0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9)


def mcu_size(data: TensorLike) -> tf.Tensor:
  """(height, width) of a JPEG's MCU: the grid its chroma blocks lie on.

  Eight times the largest vertical and horizontal sampling factors of its
  frame header: 16x16 at 4:2:0, 8 high x 16 wide at 4:2:2, 16 x 8 at 4:4:0,
  8x8 at 4:4:4 and gray (one component is coded block by block, whatever its
  factors). Read on the graph, from the header only; [0, 0] for bytes that
  are not a JPEG.

  Examples:
    >>> data = tfjpeg.encode(np.zeros((32, 32, 3), np.uint8), 90, "4:2:0")
    >>> [int(v) for v in tfjpeg.codec.jpeg.mcu_size(data)]
    [16, 16]
  """
  data = tf.convert_to_tensor(data, tf.string)
  length = tf.strings.length(data)

  def read(position, count):  # zero past the end
    piece = tf.strings.substr(data, tf.minimum(position, length), count)
    return tf.cast(tf.io.decode_raw(piece, tf.uint8, fixed_length=count), tf.int32)

  def found(position):
    head = read(position, 22)  # marker, length, and a frame header's first 4 components
    marker = head[1]
    frame = tf.logical_and(head[0] == 0xFF, tf.logical_and(marker >= 0xC0, marker <= 0xCF))
    for other in _NOT_FRAMES:
      frame = tf.logical_and(frame, marker != other)
    return head, frame

  def keep_looking(position, done):
    return tf.logical_and(tf.logical_not(done), position + 4 <= length)

  def step(position, done):
    head, frame = found(position)
    marker = head[1]
    standalone = tf.reduce_any(tf.equal(marker, _STANDALONE))
    following = tf.where(
      tf.logical_or(head[0] != 0xFF, marker == 0xFF),  # stray or fill byte: as libjpeg, skip it
      position + 1,
      tf.where(standalone, position + 2, position + 2 + head[2] * 256 + head[3]),
    )
    return tf.where(frame, position, following), frame

  is_jpeg = tf.equal(tf.strings.substr(data, 0, 2), b"\xff\xd8")
  position, done = tf.while_loop(
    keep_looking, step, (tf.constant(2), tf.logical_not(is_jpeg)), maximum_iterations=10_000
  )
  head, frame = found(position)
  components = tf.minimum(head[9], 4)
  sampling = tf.gather(head, [11, 14, 17, 20])  # Hi << 4 | Vi of each component
  present = tf.range(4) < components
  vertical = tf.reduce_max(tf.where(present, sampling % 16, 0))
  horizontal = tf.reduce_max(tf.where(present, sampling // 16, 0))
  size = tf.where(components == 1, 8, 8 * tf.stack([vertical, horizontal]))
  return tf.where(tf.logical_and(is_jpeg, frame), size, tf.zeros([2], tf.int32))


def decode(data: TensorLike, channels: int = 3) -> tf.Tensor:
  """Decodes JPEG bytes exactly as libjpeg's accurate IDCT does (uint8 HxWxC)."""
  return tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")


# Context kept around a decoded window: libjpeg upsamples chroma as if the
# window's edge were the image's, so an MCU-aligned window's border differs
# from a full decode (up to 13 levels at 4:2:0). One MCU of margin, sliced off
# afterwards, leaves the patch exactly as a full decode has it.
WINDOW_MARGIN = 16


def decode_crop(
  data: TensorLike, offset: TensorLike, size: Sequence[int], channels: int = 3
) -> tf.Tensor:
  """Exactly `decode(data)[y:y + h, x:x + w]`, decoding only a window around it.

  Much cheaper than a full decode of a large photo; tested pixel-equal to it.
  `offset` is (y, x); `size` is (h, w) with Python ints.

  Examples:
    >>> data = tfjpeg.encode(np.full((64, 96, 3), 128, np.uint8), 90)
    >>> patch = tfjpeg.decode_crop(data, (16, 24), (32, 32))
    >>> bool(tf.reduce_all(patch == tfjpeg.decode(data)[16:48, 24:56]))
    True
  """
  height, width = size
  patch = decode_window(data, offset, tf.constant([height, width]), channels)
  patch.set_shape([height, width, channels])
  return patch


def decode_window(
  data: TensorLike, offset: TensorLike, size: TensorLike, channels: int = 3
) -> tf.Tensor:
  """`decode_crop` with a size known only at run time (an int32 tensor (h, w))."""
  shape = tf.image.extract_jpeg_shape(data)
  offset, size = tf.cast(offset, tf.int32), tf.cast(size, tf.int32)
  top = tf.maximum(offset[0] - WINDOW_MARGIN, 0)
  left = tf.maximum(offset[1] - WINDOW_MARGIN, 0)
  bottom = tf.minimum(offset[0] + size[0] + WINDOW_MARGIN, shape[0])
  right = tf.minimum(offset[1] + size[1] + WINDOW_MARGIN, shape[1])
  window = tf.io.decode_and_crop_jpeg(
    data,
    tf.stack([top, left, bottom - top, right - left]),
    channels=channels,
    dct_method="INTEGER_ACCURATE",
  )
  return window[offset[0] - top :][: size[0]][:, offset[1] - left :][:, : size[1]]


def compress_input_box(
  image_size: TensorLike, offset: TensorLike, box: TensorLike
) -> tuple[tf.Tensor, tf.Tensor]:
  """The part of an image of `image_size` that the `box` (at `offset`) of
  `compress(image, ...)` is computed from: the box grown to whole 16x16 MCUs
  (which libjpeg codes one by one, chroma averaged in pairs from each MCU's
  own columns) and one more MCU around it (the decoder's chroma upsampling
  reads its neighbours), within the image."""
  image_size = tf.cast(image_size, tf.int32)
  offset, box = tf.cast(offset, tf.int32), tf.cast(box, tf.int32)
  low = tf.maximum((offset - WINDOW_MARGIN) // 16 * 16, 0)
  high = tf.minimum(-((-(offset + box + WINDOW_MARGIN)) // 16) * 16, image_size)
  return low, high - low


def compress_window(
  window: TensorLike,
  window_offset: TensorLike,
  quality: TensorLike,
  chroma: str,
  offset: TensorLike,
  box: TensorLike,
) -> tf.Tensor:
  """The `box` (at `offset`) of `compress_if(image, quality, chroma)`
  (`compress` for a Python int), pixel-equal, computed from `window`: the
  part of `image` at `window_offset` given by `compress_input_box`."""
  if isinstance(quality, int):
    saved = compress(window, quality, chroma)
  else:
    saved = compress_if(window, tf.cast(quality, tf.int32), chroma)
  local = tf.cast(offset, tf.int32) - tf.cast(window_offset, tf.int32)
  box = tf.cast(box, tf.int32)
  return saved[local[0] :][: box[0]][:, local[1] :][:, : box[1]]


# The cost of decoding, in units of one pixel of a whole decode. libjpeg skips
# the IDCT outside a window but must still entropy-decode every row above its
# bottom, at full width (ENTROPY_SHARE of a pixel's cost); the window's own
# pixels cost PIXEL_SHARE each (IDCT, upsampling, colour, at the window's
# narrow width); each window pays a fixed WINDOW_OVERHEAD (header, set-up).
# Fitted to the 11 camera originals of ../shared/data/camera_jpegs (4:2:0,
# 4:2:2, 4:4:0; `bin/benchmark --sections=decode_costs --sources=...`): the
# rule then picks the faster path in 84 of 88 cases, and its path takes 0.98
# to 1.00 of the faster one's time, against 73 and 0.94 to 0.99 with the
# constants once fitted to one smooth generated scene (0.7, 0.3, 170,000).
ENTROPY_SHARE = 0.5
PIXEL_SHARE = 1.1
WINDOW_OVERHEAD = 50_000  # pixels' worth


def windowed_decode_pays(image_size, offsets, size):
  """Whether decoding one window per offset costs less than one whole decode.

  Args:
    image_size: (height, width) int32 tensor of the JPEG.
    offsets: [n, 2] int32 tensor of patch offsets (y, x).
    size: (h, w) of each patch, Python ints.

  Returns:
    A bool tensor: windowed decoding pays for a few small patches of a large
    photo (one 224 patch of a 3000x2000 one), a whole decode for many (ten
    512 patches of the same photo). Both paths cut pixel-equal patches.
  """
  height, width = (tf.cast(v, tf.float32) for v in (image_size[0], image_size[1]))
  bottoms = tf.minimum(tf.cast(offsets[:, 0] + size[0] + WINDOW_MARGIN, tf.float32), height)
  window_pixels = float((size[0] + 2 * WINDOW_MARGIN) * (size[1] + 2 * WINDOW_MARGIN))
  windowed = tf.reduce_sum(
    ENTROPY_SHARE * width * bottoms + PIXEL_SHARE * window_pixels + WINDOW_OVERHEAD
  )
  return windowed < height * width


def encode(image: TensorLike, quality: TensorLike, chroma: str = "4:2:0") -> tf.Tensor:
  """Baseline JPEG encoding of a uint8 HxWx3 image; returns a scalar string.

  `quality` is a Python int or a scalar integer tensor in 1..100 (a tensor lets
  every example of a `Dataset.map` draw its own QF). `chroma` is "4:2:0" (the
  default of TF, OpenCV and PIL) or "4:4:4".

  Examples:
    >>> data = tfjpeg.encode(np.zeros((16, 16, 3), np.uint8), 75)
    >>> tfjpeg.decode(data).shape
    TensorShape([16, 16, 3])
  """
  _check_chroma(chroma)
  image = _check_image(image)
  subsample = chroma == "4:2:0"
  if isinstance(quality, int):
    _check_quality(quality)
    return tf.io.encode_jpeg(image, quality=quality, chroma_downsampling=subsample)
  quality = tf.cast(quality, tf.int32)
  lo, hi = QUALITY_RANGE
  with tf.control_dependencies(
    [
      tf.debugging.assert_rank(quality, 0, message="JPEG quality must be a scalar"),
      tf.debugging.assert_greater_equal(quality, lo, message="JPEG quality must be >= 1"),
      tf.debugging.assert_less_equal(quality, hi, message="JPEG quality must be <= 100"),
    ]
  ):
    quality = tf.identity(quality)
  if subsample:
    # The only encode op that takes its quality as a tensor; it always subsamples.
    return tf.raw_ops.EncodeJpegVariableQuality(images=image, quality=quality)
  # `encode_jpeg` takes quality as a graph attribute: one branch per QF.
  branches = [
    (lambda q=q: tf.io.encode_jpeg(image, quality=q, chroma_downsampling=False))
    for q in range(lo, hi + 1)
  ]
  return tf.switch_case(quality - lo, branches)


def compress(image: TensorLike, quality: TensorLike, chroma: str = "4:2:0") -> tf.Tensor:
  """JPEG-compresses `image` and decodes it back: uint8 HxWx3 of the same shape.

  Examples:
    >>> image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
    >>> saved = tfjpeg.compress(image, 50)
    >>> saved.dtype.name, saved.shape == image.shape
    ('uint8', True)
  """
  image = _check_image(image)
  out = decode(encode(image, quality, chroma))
  out.set_shape(image.shape)
  return out


def draw_quality(qualities, probability, seed):
  """A stateless coin and pick: a QF drawn uniformly from `qualities` with
  `probability` (a float, or a float32 tensor), else 0 (leave the image
  alone). Returns an int32 scalar."""
  qualities = [int(q) for q in qualities]
  if not qualities:
    raise ValueError("a JPEG augmentation needs at least one quality")
  for q in qualities:
    _check_quality(q)
  if not tf.is_tensor(probability) and not 0.0 <= probability <= 1.0:
    raise ValueError(f"probability must be in [0, 1], got {probability}")
  coin_seed, pick_seed = seeds.split(seed, 2)
  apply = tf.random.stateless_uniform([], coin_seed) < probability
  pick = tf.random.stateless_uniform([], pick_seed, minval=0, maxval=len(qualities), dtype=tf.int32)
  quality = tf.gather(tf.constant(qualities, tf.int32), pick)
  return tf.where(apply, quality, 0)


def compress_if(image, quality, chroma="4:2:0"):
  """`compress(image, quality)` where the int32 tensor `quality` is > 0, else `image`."""
  image = _check_image(image)
  return tf.cond(quality > 0, lambda: compress(image, quality, chroma), lambda: image)


def random_compress(
  image: TensorLike,
  qualities: Sequence[int],
  probability: TensorLike,
  seed: TensorLike,
  chroma: str = "4:2:0",
) -> tuple[tf.Tensor, tf.Tensor]:
  """The paper's augmentation: with `probability`, compress at a QF drawn from `qualities`.

  Args:
    image: uint8 HxWx3.
    qualities: non-empty sequence of ints in 1..100; one is drawn uniformly.
    probability: chance of compressing at all (0.5 in the paper); a float, or
      a float32 tensor where it differs per example.
    seed: stateless seed (see `tfjpeg.core.seeds`).
    chroma: "4:2:0" or "4:4:4".

  Returns:
    (image, quality): the possibly compressed image and the int32 QF used, 0
    where the image was left untouched.

  Examples:
    >>> image = np.zeros((32, 32, 3), np.uint8)
    >>> _, quality = tfjpeg.random_compress(image, [50, 70], 1.0, seed=(0, 1))
    >>> int(quality) in (50, 70)
    True
  """
  quality = draw_quality(qualities, probability, seed)
  return compress_if(image, quality, chroma), quality


def _check_chroma(chroma):
  if chroma not in CHROMA_MODES:
    raise ValueError(f"chroma must be one of {CHROMA_MODES}, got {chroma!r}")


def _check_quality(quality):
  lo, hi = QUALITY_RANGE
  if not lo <= quality <= hi:
    raise ValueError(f"JPEG quality must be in {lo}..{hi}, got {quality}")


def _check_image(image):
  image = tf.convert_to_tensor(image)
  if image.dtype != tf.uint8:
    raise TypeError(f"JPEG ops take uint8 images, got {image.dtype.name}")
  if image.shape.rank is not None and image.shape.rank != 3:
    raise ValueError(f"JPEG ops take one HxWx3 image, got shape {image.shape}")
  if image.shape[-1] is not None and image.shape[-1] != 3:
    raise ValueError(f"JPEG ops take RGB images (3 channels), got shape {image.shape}")
  return image
