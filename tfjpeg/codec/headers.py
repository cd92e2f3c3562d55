"""What an image file's header says about how it was processed, without decoding pixels.

`read(path)` returns a `FileHeader`: the container format, width and height,
bit depth and colour mode, and for JPEG the quantisation tables' quality on
IJG's scale, chroma subsampling and progressive or baseline coding; whether
EXIF or an ICC profile is present; and the file's size in bytes (a figure that
depends on content as well as processing). Pillow parses the headers (its
JPEG reader stops at the first scan), so nothing here decodes a pixel.

IJG quality scaling (libjpeg's `jpeg_quality_scaling`, used by OpenCV, PIL
and TensorFlow): S = 5000 // Q below 50, else 200 - 2Q; each entry is
clip((base * S + 50) // 100, 1, 255) with libjpeg's baseline clip. A file's
tables are compared with the 100 IJG tables: equal ones give the quality
exactly; others (camera makers' own tables) give the nearest quality and
say it matched none.
"""

import dataclasses
import io
import os

import numpy as np

# Annex K of the JPEG standard (ITU T.81): IJG's tables at quality 50, row-major.
LUMA_BASE = np.array(
  [
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
  ],
  np.int64,
)
CHROMA_BASE = np.array(
  [
    17,
    18,
    24,
    47,
    99,
    99,
    99,
    99,
    18,
    21,
    26,
    66,
    99,
    99,
    99,
    99,
    24,
    26,
    56,
    99,
    99,
    99,
    99,
    99,
    47,
    66,
    99,
    99,
    99,
    99,
    99,
    99,
  ]
  + [99] * 32,
  np.int64,
)

QUALITIES = np.arange(1, 101)


def ijg_scale(quality: int) -> int:
  """IJG's percentage scale factor of a quality 1..100."""
  if not 1 <= quality <= 100:
    raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
  return 5000 // quality if quality < 50 else 200 - 2 * quality


def ijg_table(quality: int, chroma: bool = False) -> np.ndarray:
  """The 64 entries (row-major) libjpeg writes at `quality`, baseline-clipped."""
  base = CHROMA_BASE if chroma else LUMA_BASE
  return np.clip((base * ijg_scale(quality) + 50) // 100, 1, 255)


_LUMA = np.stack([ijg_table(int(q)) for q in QUALITIES])
_CHROMA = np.stack([ijg_table(int(q), chroma=True) for q in QUALITIES])


def estimate_quality(luma, chroma=None):
  """(quality, exact): the IJG quality whose tables equal `luma` (and `chroma`,
  if given), exact True; else the nearest by mean absolute log ratio of the
  entries, exact False. Tables are 64 entries in row-major order."""
  luma = np.asarray(luma, np.int64).reshape(64)
  equal = (_LUMA == luma).all(1)
  if chroma is not None:
    chroma = np.asarray(chroma, np.int64).reshape(64)
    equal &= (_CHROMA == chroma).all(1)
  if equal.any():
    # Several qualities can write the same tables only where clipping saturates
    # them (none do for luma and chroma together); the highest is reported.
    return int(QUALITIES[equal][-1]), True
  distance = np.abs(np.log(np.maximum(luma, 1)) - np.log(_LUMA)).mean(1)
  if chroma is not None:
    distance = distance + np.abs(np.log(np.maximum(chroma, 1)) - np.log(_CHROMA)).mean(1)
  return int(QUALITIES[np.argmin(distance)]), False


@dataclasses.dataclass(frozen=True)
class FileHeader:
  """A file's processing attributes, as its header gives them."""

  format: str  # jpeg, png, bmp, tiff, webp (lossy), webp-lossless, or unknown
  width: int
  height: int
  bit_depth: int  # bits per sample
  mode: str  # Pillow's colour mode: RGB, L, RGBA, YCbCr, CMYK, ...
  quality: int | None  # JPEG: IJG quality of the tables (nearest if not exact)
  quality_exact: bool | None  # JPEG: the tables are IJG's at that quality
  subsampling: str  # JPEG: 4:4:4, 4:2:0, 4:2:2, 4:4:0, 4:1:1, gray; "" otherwise
  progressive: bool | None  # JPEG: progressive rather than baseline
  exif: bool
  icc: bool
  file_bytes: int  # depends on content: reported, never used to predict a class

  @property
  def megapixels(self) -> float:
    return self.width * self.height / 1e6

  @property
  def lossy(self) -> bool:
    return self.format in ("jpeg", "webp")


def subsampling_of(layers) -> str:
  """Chroma subsampling from a JPEG's component sampling factors [(id, h, v, tq)]."""
  if len(layers) == 1:
    return "gray"
  h0, v0 = layers[0][1], layers[0][2]
  ratios = {(h0 // max(1, h), v0 // max(1, v)) for _, h, v, _ in layers[1:3]}
  if len(ratios) != 1:
    return "other"
  return {(1, 1): "4:4:4", (2, 2): "4:2:0", (2, 1): "4:2:2", (1, 2): "4:4:0", (4, 1): "4:1:1"}.get(
    ratios.pop(), "other"
  )


_MODE_BITS = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}

# Enough bytes for Pillow to parse a JPEG up to its first scan in most files;
# a longer header (a large EXIF thumbnail or ICC profile) is read in full.
HEAD_BYTES = 65536


def read(source: str | os.PathLike | bytes) -> FileHeader:
  """The header of an image file (a path) or of its bytes; raises ValueError
  naming the problem for a file Pillow cannot parse."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  if isinstance(source, (bytes, bytearray)):
    data, size = bytes(source), len(source)
  else:
    size = os.path.getsize(source)
    with open(source, "rb") as f:
      data = f.read(HEAD_BYTES)
  try:
    return _parse(Image, data, size)
  except Exception:  # pylint: disable=broad-except
    if len(data) >= size:
      raise
  with open(source, "rb") as f:  # a header longer than HEAD_BYTES
    return _parse(Image, f.read(), size)


def _parse(image_module, data, size):
  try:
    im = image_module.open(io.BytesIO(data))
  except Exception as e:  # Pillow raises many types for what it cannot read
    raise ValueError(f"unreadable image header ({e})") from e
  with im:
    fmt = (im.format or "unknown").lower()
    info = im.info
    quality = exact = progressive = None
    subsampling = ""
    bits = _MODE_BITS.get(im.mode, 8)
    if fmt == "jpeg":
      tables = getattr(im, "quantization", None) or {}
      if 0 in tables:
        quality, exact = estimate_quality(tables[0], tables.get(1))
      subsampling = subsampling_of(getattr(im, "layer", []) or [(1, 1, 1, 0)])
      progressive = bool(info.get("progressive") or info.get("progression"))
      bits = int(getattr(im, "bits", 8))
    elif fmt == "png":
      bits = int(data[24]) if len(data) > 24 else bits
    elif fmt == "tiff":
      sample_bits = im.tag_v2.get(258, (8,))
      bits = int(max(sample_bits) if isinstance(sample_bits, tuple) else sample_bits)
    elif fmt == "webp" and data[12:16] == b"VP8L":
      fmt = "webp-lossless"
    return FileHeader(
      format=fmt,
      width=int(im.size[0]),
      height=int(im.size[1]),
      bit_depth=bits,
      mode=im.mode,
      quality=quality,
      quality_exact=exact,
      subsampling=subsampling,
      progressive=progressive,
      exif=bool(info.get("exif")),
      icc=bool(info.get("icc_profile")),
      file_bytes=int(size),
    )
