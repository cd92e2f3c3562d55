"""Reading image files: probe each file once, then decode exactly on the graph.

`probe` reads a file's header (and, for JPEG and PNG, its end), then decodes
it once with TensorFlow's decoder, the pipeline's (a JPEG at an eighth of its
size, and also with a strict libjpeg that refuses corrupt scan data), and
either returns what the pipeline needs to know or raises `BadImageError`
naming the file and the problem: a header probe is not a decode, and a file
TensorFlow cannot decode would stop training later with an error naming no
file. `decode` turns the bytes of a probed file into uint8 HxWx3 RGB inside
tf.data; JPEG always with the accurate IDCT.

Conversion rules (documented in the README):
  * grayscale: replicated to three channels (lossless);
  * an alpha channel: dropped, RGB values untouched;
  * 16 bits per sample: refused (8-bit reduction is processing nobody asked for);
  * CMYK JPEG: refused (its colour conversion would alter every pixel);
  * palette and other modes: refused.
Nothing is ever re-encoded here.
"""

import dataclasses
import io
import os
import re
import threading
from typing import Any

import numpy as np
import tensorflow as tf

from tfjpeg.codec import jpeg

FORMATS = ("jpeg", "png", "bmp", "webp", "tiff")
EXTENSIONS = {
  ".jpg": "jpeg",
  ".jpeg": "jpeg",
  ".png": "png",
  ".bmp": "bmp",
  ".webp": "webp",
  ".tif": "tiff",
  ".tiff": "tiff",
}
_ACCEPTED_MODES = {"RGB", "L", "RGBA", "LA", "YCbCr", "RGBX"}


class BadImageError(ValueError):
  """An image file that cannot enter the pipeline; the message names it."""

  def __init__(self, path, problem):
    super().__init__(f"{path}: {problem}")
    self.path = str(path)
    self.problem = problem


@dataclasses.dataclass(frozen=True)
class ImageInfo:
  format: str
  height: int
  width: int
  mode: str  # PIL's mode before conversion, e.g. "RGB", "L", "RGBA"


def sniff_format(head):
  """The format named by a file's magic bytes, or None."""
  if head[:3] == b"\xff\xd8\xff":
    return "jpeg"
  if head[:8] == b"\x89PNG\r\n\x1a\n":
    return "png"
  if head[:2] == b"BM":
    return "bmp"
  if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
    return "webp"
  if head[:4] in (b"II*\x00", b"MM\x00*"):
    return "tiff"
  return None


# `probe`'s decode_check that leaves a JPEG's strict decode to the caller.
DEFERRED = "deferred"


def probe(path, min_size=None, decode_check=True):
  """Checks one file and returns its `ImageInfo`; raises `BadImageError`.

  Args:
    path: the file.
    min_size: (height, width) the image must reach, e.g. the patch size; a
      smaller image is refused, not resized.
    decode_check: also decode it with TensorFlow's decoder (`check_decodes`),
      and a JPEG strictly; off only where the caller decodes it next anyway.
      `DEFERRED`: a JPEG's strict decode is the caller's, who decodes it
      next with `decode_strictly` (the check folded into the work);
      TensorFlow's decoder reads only its header and first rows here (its
      refusals of a layout). Other formats are decoded as with True.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise BadImageError(path, f"cannot be read ({e.strerror or e})") from e
  if not data:
    raise BadImageError(path, "empty file")
  fmt = sniff_format(data[:16])
  if fmt is None:
    raise BadImageError(
      path, f"not an image in a supported format ({', '.join(FORMATS)}); first bytes {data[:8]!r}"
    )
  if fmt == "jpeg":
    _check_jpeg_complete(path, data)
  elif fmt == "png":
    _check_png(path, data)
  if fmt == "tiff":
    bits = _tiff_bits(path, data)
    if bits > 8:
      raise BadImageError(
        path, f"{bits}-bit TIFF refused: convert it to 8 bits yourself if that is intended"
      )
  try:
    with Image.open(io.BytesIO(data)) as im:
      mode, (width, height) = im.mode, im.size
      if fmt in ("tiff", "bmp", "webp"):
        im.load()  # no cheap end marker to check: decode once
  except Exception as e:  # PIL raises many types for broken files
    raise BadImageError(path, f"broken {fmt.upper()} ({e})") from e
  if mode == "CMYK":
    raise BadImageError(
      path,
      "CMYK JPEG refused: converting it to RGB would "
      "alter every pixel; convert it yourself if intended",
    )
  if mode not in _ACCEPTED_MODES:
    raise BadImageError(
      path,
      f"unsupported colour mode {mode!r} (RGB, grayscale, and RGB or gray with alpha are accepted)",
    )
  if min_size is not None and (height < min_size[0] or width < min_size[1]):
    raise BadImageError(
      path,
      f"image of {height}x{width} pixels is smaller than the {min_size[0]}x{min_size[1]} patch",
    )
  if decode_check == DEFERRED and fmt == "jpeg":
    check_decodes(path, _jpeg_header(data), "jpeg_header")
  elif decode_check:
    if fmt == "jpeg":
      _check_jpeg_strictly(path, data)
    check_decodes(path, data)
  return ImageInfo(fmt, height, width, mode)


def check_decodes(path, data, kind=None):
  """Decodes `data` once with TensorFlow's decoder, the pipeline's; a refusal
  becomes `BadImageError`. A JPEG at an eighth of its size: libjpeg reads
  every marker and entropy-decodes every block at any scale, which is where
  a file is refused, and skips most of the inverse DCT (a fifth to two
  fifths of the time, by the file). `kind` "jpeg_header": the header only
  (`probe`'s `DEFERRED`: the layouts TensorFlow's libjpeg refuses)."""
  if kind is None:
    kind = "jpeg" if sniff_format(data[:16]) == "jpeg" else "other"
  try:
    _traced_decode(data, kind)
  except (tf.errors.OpError, ValueError) as e:
    raise BadImageError(path, f"TensorFlow's decoder refuses it ({_reason(e)})") from e


def _reason(error):
  """The first line of TensorFlow's message, without its function and op names."""
  message = re.sub(r"\{\{function_node [^}]*\}\}", "", getattr(error, "message", str(error)))
  lines = [line.strip() for line in message.splitlines() if line.strip()]
  return (lines[0] if lines else type(error).__name__).split(" [Op:")[0]


def _check_jpeg_strictly(path, data):
  """libjpeg only warns about corrupt scan data (flipped bytes, a scan cut short
  and an end marker appended) and returns made-up pixels: a JPEG that fails a
  strict decode but passes a lenient one is corrupt. One that neither reads
  (an unusual layout) is left to TensorFlow's (`check_decodes`). Both at an
  eighth of the size, for the reason `check_decodes` gives."""
  import simplejpeg  # pylint: disable=g-import-not-at-top

  # Only the verdict is used; these pixels are discarded (never the pipeline's).
  # At an eighth of the size, as `check_decodes`: the warnings come from the
  # markers and the entropy decoding, which every scale does in full.
  eighth = dict(min_height=1, min_width=1)
  try:
    simplejpeg.decode_jpeg(data, strict=True, **eighth)
    return
  except ValueError as strict:
    try:
      simplejpeg.decode_jpeg(data, strict=False, **eighth)
    except ValueError:
      return
    raise BadImageError(
      path, f"corrupt JPEG data ({strict}): a decoder would make up the missing pixels"
    ) from strict


def decode_strictly(path, data, buffer=None) -> np.ndarray:
  """A JPEG's pixels, uint8 HxWx3, exactly `decode`'s (the accurate IDCT and
  fancy upsampling), from one strict decode that is also `probe`'s check of
  its scan data (`probe(..., decode_check=DEFERRED)` leaves it here): the
  check folded into the decode the caller does anyway. Raises
  `BadImageError` with `probe`'s problems: corrupt scan data, or a file
  neither decoder reads. `buffer` (uint8, at least height x width x 3): where
  the pixels go, if given (a caller's aligned, reused memory).

  libjpeg-turbo (simplejpeg's build) gives TensorFlow's pixels in every
  layout; `strict_pixels_match` checks that once per process, and where it
  does not hold the pixels come from TensorFlow's decoder after the strict
  check."""
  import simplejpeg  # pylint: disable=g-import-not-at-top

  if strict_pixels_match():
    try:
      return simplejpeg.decode_jpeg(
        data, colorspace="RGB", fastdct=False, fastupsample=False, buffer=buffer, strict=True
      )
    except ValueError:
      pass  # the check below names the problem, or leaves the file to TensorFlow's decoder
  _check_jpeg_strictly(path, data)
  try:
    return jpeg.decode(data).numpy()
  except tf.errors.OpError as e:
    raise BadImageError(path, f"TensorFlow's decoder refuses it ({_reason(e)})") from e


_pixels_match: list[bool] = []


def strict_pixels_match() -> bool:
  """Whether simplejpeg's strict decoder gives TensorFlow's pixels, on small
  JPEGs of every chroma layout (4:2:0, 4:2:2, 4:4:0, 4:4:4, 4:1:1, gray,
  progressive, restart markers); checked once per process."""
  if not _pixels_match:
    import cv2  # pylint: disable=g-import-not-at-top
    import simplejpeg  # pylint: disable=g-import-not-at-top

    rgb = np.random.default_rng(0).integers(0, 256, (37, 45, 3), np.uint8)
    samples = [jpeg.encode(rgb, 95).numpy()]
    for layout in ("411", "420", "422", "440", "444"):
      for progressive in (0, 1):
        flags = [
          cv2.IMWRITE_JPEG_QUALITY, 90,
          cv2.IMWRITE_JPEG_SAMPLING_FACTOR, getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{layout}"),
          cv2.IMWRITE_JPEG_PROGRESSIVE, progressive,
          cv2.IMWRITE_JPEG_RST_INTERVAL, 1 - progressive,
        ]  # fmt: skip
        samples.append(cv2.imencode(".jpg", rgb, flags)[1].tobytes())
    samples.append(cv2.imencode(".jpg", rgb[..., 0], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    _pixels_match.append(
      all(
        np.array_equal(
          simplejpeg.decode_jpeg(s, colorspace="RGB", fastdct=False, fastupsample=False),
          jpeg.decode(s).numpy(),
        )
        for s in samples
      )
    )
  return _pixels_match[0]


def _check_jpeg_complete(path, data):
  # Entropy-coded data never holds FF D9 (FF is stuffed), so a complete file
  # has an end-of-image marker after its last start-of-scan: no start-of-scan
  # after its last end-of-image. Searched from the ends (a scan's data is
  # most of the file, and never read here).
  if data.find(b"\xff\xda") < 0:
    raise BadImageError(path, "JPEG without image data (no start-of-scan marker)")
  last_end = data.rfind(b"\xff\xd9")
  if last_end < 0 or data.find(b"\xff\xda", last_end) >= 0:
    raise BadImageError(path, "truncated JPEG (no end-of-image marker after the last scan)")


def _check_png(path, data):
  bit_depth, colour_type = data[24], data[25]
  if bit_depth > 8:
    raise BadImageError(
      path,
      f"{bit_depth}-bit PNG refused: reducing it to 8 "
      "bits is processing nobody asked for; convert it "
      "yourself if that is intended",
    )
  if colour_type == 3:
    raise BadImageError(path, "palette PNG refused (not a photograph)")
  if b"IEND" not in data[-16:]:
    raise BadImageError(path, "truncated PNG (no IEND chunk at the end)")


def _tiff_bits(path, data):
  """Bits per sample of a TIFF, from its header (PIL), or OpenCV's decode."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  try:
    with Image.open(io.BytesIO(data)) as im:
      bits = im.tag_v2.get(258, (8,))
    return max(bits) if isinstance(bits, tuple) else int(bits)
  except Exception:  # pylint: disable=broad-except
    import cv2  # pylint: disable=g-import-not-at-top

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
      raise BadImageError(path, "broken TIFF (neither PIL nor OpenCV reads it)") from None
    return image.dtype.itemsize * 8


def decode(data: Any) -> tf.Tensor:
  """Exact decode of image bytes (JPEG, PNG, BMP, GIF, WebP, TIFF) to uint8
  HxWx3 RGB, on the graph, at the image's own size.

  The format is read from the magic bytes. JPEG uses the accurate IDCT, as
  libjpeg, OpenCV and Pillow decode it (`tf.io.decode_image` and
  `keras.utils.image_dataset_from_directory` use the fast one, up to 9 levels
  off); TIFF, which TensorFlow cannot read, goes through PIL (lossless
  formats all decode identically everywhere).

  Examples:
    >>> data = tfjpeg.encode(np.full((16, 24, 3), 200, np.uint8), 90)
    >>> tfjpeg.decode_image(data).shape
    TensorShape([16, 24, 3])
  """
  data = tf.convert_to_tensor(data, tf.string)
  head = tf.strings.substr(data, 0, 4)
  is_tiff = tf.logical_or(tf.equal(head, b"II*\x00"), tf.equal(head, b"MM\x00*"))

  def tiff():
    image = tf.numpy_function(_decode_tiff_numpy, [data], tf.uint8, stateful=False)
    return tf.ensure_shape(image, [None, None, 3])

  return tf.cond(is_tiff, tiff, lambda: decode_native(data))


def _eighth_jpeg_shape(data):
  return tf.shape(tf.io.decode_jpeg(data, channels=3, ratio=8, dct_method="INTEGER_ACCURATE"))


# The probe's decodes, traced once: eager dispatch cost ten times the decode of
# a small image. Traced under a lock: probing threads that all made the first
# call would each trace it.
_signature = [tf.TensorSpec([], tf.string)]


def _jpeg_header(data):
  """A JPEG's bytes up to the end of its first start-of-scan header: all that
  libjpeg reads of it before the scan data (marker segments walked by their
  lengths, as libjpeg does; a thumbnail inside one is skipped with it)."""
  position = 2
  while position + 4 <= len(data):
    if data[position] != 0xFF or data[position + 1] in (0xFF, 0x00):
      position += 1  # fill bytes, as libjpeg skips them
      continue
    marker = data[position + 1]
    if marker in (0x01, *range(0xD0, 0xDA)):  # standalone: no length
      position += 2
      continue
    end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    if marker == 0xDA:
      return data[:end]
    position = end
  return data


_probe_decodes = {
  "jpeg": tf.function(_eighth_jpeg_shape, input_signature=_signature),
  "jpeg_header": tf.function(tf.image.extract_jpeg_shape, input_signature=_signature),
  "other": tf.function(lambda data: tf.shape(decode(data)), input_signature=_signature),
}
_trace_lock = threading.Lock()


def _traced_decode(data, kind):
  with _trace_lock:
    concrete = _probe_decodes[kind].get_concrete_function()
  return concrete(tf.constant(data))


def decode_native(data):
  """`decode` for the formats TensorFlow reads itself (all but TIFF).

  Pure graph ops, so it can live in an exported SavedModel.
  """
  image = tf.cond(
    tf.io.is_jpeg(data),
    lambda: jpeg.decode(data, channels=3),
    # Never JPEG here (is_jpeg above), so TF's fast IDCT can't be reached.
    lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
  )
  return tf.ensure_shape(image, [None, None, 3])


def _decode_tiff_numpy(data):
  # PIL, not OpenCV: OpenCV's libtiff path premultiplies alpha into RGB.
  from PIL import Image  # pylint: disable=g-import-not-at-top

  if isinstance(data, np.ndarray):  # eagerly, a 0-d object array holds the bytes
    data = data.item()
  with Image.open(io.BytesIO(data)) as im:
    image = np.asarray(im)
  if image.dtype != np.uint8:
    raise ValueError(f"TIFF of dtype {image.dtype} reached the decoder")
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] <= 2:  # gray, or gray + alpha
    return np.ascontiguousarray(np.repeat(image[..., :1], 3, axis=-1))
  return np.ascontiguousarray(image[..., :3])


def list_images(directory):
  """Image files below `directory` (recursive, sorted), by extension."""
  found = []
  for root, dirs, files in os.walk(directory):
    dirs.sort()
    for name in sorted(files):
      if os.path.splitext(name)[1].lower() in EXTENSIONS and not name.startswith("."):
        found.append(os.path.join(root, name))
  return found
