"""Built-in tasks generated offline: no download, deterministic by seed, CPU-sized.

`cameras` (forensic): the same procedural scenes shot by four simulated
cameras that differ only in how they process light, as real camera models do:
colour-filter pattern, demosaicing, lens blur, sensor noise, tone curve and
in-camera JPEG (quality and chroma subsampling). Content carries no label;
the label lives in fine detail, as in camera-model identification.

`cameras_random_cfa` (forensic): the same, but every shot reads its sensor
from a random row and column parity, so the colour-filter pattern seen from
the image's top-left pixel is random (all four Bayer patterns are shifts of
one another). In `cameras` the 2x2 filter phase is locked to the origin, as in
real camera originals, and a crop that moves by an odd number of pixels
changes it; here only the JPEG grid is locked to the origin.

`shapes` (vision): the label is visible content (which shape the scene holds),
and each image goes through a randomly chosen camera of the same four, so the
processing carries no label.

Each image is stored as the JPEG its simulated camera wrote, so the in-camera
JPEG grid starts at the top-left pixel, exactly as in camera originals.
"""

import dataclasses
import os
import pathlib

import cv2
import numpy as np

from tfjpeg.core import progress
from tfjpeg.data import cache

VERSION = 2  # bump whenever generation changes, so caches are rebuilt


@dataclasses.dataclass(frozen=True)
class Camera:
  name: str
  cfa: str  # the 2x2 colour-filter pattern, row by row from the top-left
  demosaic: str  # "bilinear", "vng" or "edge_aware"
  blur_sigma: float  # lens point-spread, in pixels
  noise_gain: float  # shot noise, in 8-bit levels at full scale
  read_noise: float  # in 8-bit levels
  gamma: float  # tone curve; equal for the built-ins so brightness tells nothing
  quality: int  # in-camera JPEG quality
  chroma: str  # in-camera JPEG subsampling


CAMERAS = (
  Camera("cam_a", "RGGB", "bilinear", 0.6, 2.0, 1.0, 2.2, 92, "4:2:0"),
  Camera("cam_b", "GRBG", "edge_aware", 0.8, 1.5, 0.8, 2.2, 95, "4:2:0"),
  Camera("cam_c", "BGGR", "vng", 0.5, 2.5, 1.2, 2.2, 90, "4:4:4"),
  Camera("cam_d", "GBRG", "bilinear", 0.7, 1.8, 1.5, 2.2, 97, "4:2:0"),
)
SHAPES = ("disc", "square", "triangle", "stripes")
_DEMOSAIC = {"bilinear": "", "vng": "_VNG", "edge_aware": "_EA"}


def scene(height, width, rng, objects=True):
  """A procedural photo-like scene: float32 linear RGB in [0, 1].

  `objects=False` leaves out the discs and squares, for a background on which
  a labelled shape must be the only one.
  """
  image = np.zeros((height, width, 3), np.float32)
  for scale, weight in ((48, 0.35), (12, 0.15), (3, 0.05)):
    small = rng.normal(size=(max(2, height // scale), max(2, width // scale), 3))
    image += weight * cv2.resize(
      small.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC
    )
  for _ in range(int(rng.integers(3, 7)) if objects else 0):  # objects with sharp edges
    centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
    radius = int(rng.integers(3, max(4, min(height, width) // 4)))
    colour = rng.uniform(-0.4, 0.4, 3).tolist()
    if rng.random() < 0.5:
      cv2.circle(image, centre, radius, colour, -1)
    else:
      cv2.rectangle(
        image,
        (centre[0] - radius, centre[1] - radius),
        (centre[0] + radius, centre[1] + radius),
        colour,
        -1,
      )
  return np.clip(image + 0.45, 0.0, 1.0)


def draw_shape(image, shape, rng):
  """Draws one large, visible `shape` on a scene (in place)."""
  height, width = image.shape[:2]
  size = min(height, width)
  colour = (rng.uniform(0.05, 0.95, 3)).tolist()
  cy, cx = (int(rng.uniform(0.35, 0.65) * d) for d in (height, width))
  radius = int(rng.uniform(0.2, 0.3) * size)
  if shape == "disc":
    cv2.circle(image, (cx, cy), radius, colour, -1)
  elif shape == "square":
    cv2.rectangle(image, (cx - radius, cy - radius), (cx + radius, cy + radius), colour, -1)
  elif shape == "triangle":
    points = np.array(
      [[cx, cy - radius], [cx - radius, cy + radius], [cx + radius, cy + radius]], np.int32
    )
    cv2.fillPoly(image, [points], colour)
  elif shape == "stripes":
    period = max(4, size // 12)
    for y in range(0, height, 2 * period):
      image[y : y + period] = colour
  else:
    raise ValueError(f"unknown shape {shape!r}")
  return image


def shifted_cfa(cfa, dy, dx):
  """The 2x2 pattern seen from pixel (dy, dx) of a sensor with pattern `cfa`."""
  return "".join(cfa[((y + dy) % 2) * 2 + (x + dx) % 2] for y in range(2) for x in range(2))


def develop(light, camera, rng, cfa_phase=(0, 0)):
  """Simulates `camera` photographing linear RGB `light` up to its 8-bit sRGB
  pixels, before any JPEG: uint8 HxWx3.

  `cfa_phase` = (dy, dx) reads the sensor from that row and column parity.
  """
  height, width = light.shape[:2]
  light = cv2.GaussianBlur(light, (0, 0), camera.blur_sigma)
  cfa = shifted_cfa(camera.cfa, *cfa_phase)
  # Mosaic: keep, at each pixel, the one channel the colour filter passes.
  pattern = {"R": 0, "G": 1, "B": 2}
  raw = np.empty((height, width), np.float32)
  for i, channel in enumerate(cfa):
    dy, dx = divmod(i, 2)
    raw[dy::2, dx::2] = light[dy::2, dx::2, pattern[channel]]
  levels = raw * 1023.0  # 10-bit sensor
  noise = rng.normal(size=raw.shape) * np.sqrt(
    camera.noise_gain * 4 * levels + (camera.read_noise * 4) ** 2
  )
  raw10 = np.clip(np.round(levels + noise), 0, 1023).astype(np.uint16)
  conversion = getattr(cv2, f"COLOR_Bayer{cfa}2RGB{_DEMOSAIC[camera.demosaic]}")
  if camera.demosaic == "bilinear":
    rgb = cv2.cvtColor(raw10, conversion)
  else:  # VNG and edge-aware take 8-bit input only
    rgb = cv2.cvtColor((raw10 >> 2).astype(np.uint8), conversion).astype(np.uint16) << 2
  tone = np.clip(rgb.astype(np.float32) / 1023.0, 0, 1) ** (1.0 / camera.gamma)
  return np.clip(np.round(tone * 255.0), 0, 255).astype(np.uint8)


def encode_jpeg(srgb, quality, chroma="4:2:0"):
  """Baseline JPEG bytes of uint8 RGB pixels, as OpenCV (libjpeg) writes them."""
  params = [cv2.IMWRITE_JPEG_QUALITY, quality]
  if chroma == "4:4:4":
    params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
  ok, data = cv2.imencode(".jpg", np.ascontiguousarray(srgb[..., ::-1]), params)
  assert ok
  return data.tobytes()


def encode_png(srgb):
  """Lossless PNG bytes of uint8 RGB pixels."""
  ok, data = cv2.imencode(".png", np.ascontiguousarray(srgb[..., ::-1]))
  assert ok
  return data.tobytes()


def shoot(light, camera, rng, cfa_phase=(0, 0)):
  """Simulates `camera` photographing linear RGB `light`; returns the JPEG
  bytes it writes (`develop`, then its in-camera JPEG)."""
  return encode_jpeg(develop(light, camera, rng, cfa_phase), camera.quality, camera.chroma)


# The `generated` tasks: what tells a generated image from a real photo, and how
# each class is stored. Real photos and generated images show the same scenes
# through the same camera; a generated image also carries the faint periodic
# trace of its generator's up-sampling layers (the checkerboard of transposed
# convolutions, Odena et al. 2016): a pattern of GENERATOR_PERIOD pixels and
# GENERATOR_TRACE levels (root mean square) on every channel, at a random
# phase. Both knobs were set with `hpf` (400 scenes, 5 epochs): faint enough
# that a net needs epochs to find it (0.74 validation accuracy after one epoch
# with both classes at QF 90), strong enough to survive JPEG at the stored QF.
# At 0.6 levels on a 4-pixel grid of phases, or 1.5 levels at 8 pixels,
# nothing was learned in 2-3 epochs; at 1.5 levels and 4 pixels, one epoch did.
GENERATED_CLASSES = ("generated", "real")
GENERATOR_TRACE = 0.75
GENERATOR_PERIOD = 4
GENERATED_CAMERA = CAMERAS[0]
# How the real class is stored in both tasks: JPEG at QF 96, as most real
# images of GenImage are (Grommelt et al. 2024). In `generated_confounded` the
# generated class is PNG, as in GenImage; in `generated` it is stored exactly
# like the real one. (At QF 90 the trace lost enough in a re-save that a net
# trained with matched compression still scored 0.05 lower under the swap.)
REAL_QUALITY = 96


def generator_trace(height, width, rng, amplitude=GENERATOR_TRACE, period=GENERATOR_PERIOD):
  """The up-sampling checkerboard: float32 HxW, `period` pixels, random phase,
  root-mean-square `amplitude` levels."""
  phase_y, phase_x = rng.uniform(0, 2 * np.pi, 2)
  y = np.cos(2 * np.pi * np.arange(height) / period + phase_y)
  x = np.cos(2 * np.pi * np.arange(width) / period + phase_x)
  return (2 * amplitude * np.outer(y, x)).astype(np.float32)


def generated_pair(light, rng):
  """(real, generated) uint8 RGB pixels of one scene, before storage."""
  real = develop(light, GENERATED_CAMERA, rng)
  base = develop(light, GENERATED_CAMERA, rng).astype(np.float32)
  trace = generator_trace(*light.shape[:2], rng)
  generated = np.clip(np.round(base + trace[..., None]), 0, 255).astype(np.uint8)
  return real, generated


def generate(kind, out_dir, num_scenes, image_size, seed):
  """Writes `out_dir/<class>/<scene>.jpg` for built-in `kind`; returns class names.

  `cameras`: every scene shot by every camera (class = camera).
  `cameras_random_cfa`: the same, each shot at a random colour-filter phase.
  `shapes`: each scene holds one shape (class = shape), shot by a random camera.
  `generated`: each scene as a real photo and as a generated image (see
  GENERATOR_TRACE), both stored as JPEG at REAL_QUALITY.
  `generated_confounded`: the same, but the generated class stored as PNG.
  Files are named by scene, which is the source used by the split.
  """
  height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
  if kind in ("cameras", "cameras_random_cfa"):
    class_names = [c.name for c in CAMERAS]
  elif kind == "shapes":
    class_names = list(SHAPES)
  elif kind in ("generated", "generated_confounded"):
    class_names = list(GENERATED_CLASSES)
  else:
    raise ValueError(f"unknown built-in kind {kind!r}")
  for name in class_names:
    os.makedirs(os.path.join(out_dir, name), exist_ok=True)
  bar = progress.Progress(num_scenes, f"generating the built-in {kind} task", "scenes")
  for index in range(num_scenes):
    rng = np.random.default_rng([seed, index])
    light = scene(height, width, rng, objects=kind != "shapes")
    if kind == "cameras":
      for camera in CAMERAS:
        _write(out_dir, camera.name, index, shoot(light, camera, rng))
    elif kind == "cameras_random_cfa":
      for camera in CAMERAS:
        phase = tuple(int(v) for v in rng.integers(0, 2, 2))
        _write(out_dir, camera.name, index, shoot(light, camera, rng, phase))
    elif kind in ("generated", "generated_confounded"):
      real, generated = generated_pair(light, rng)
      _write(out_dir, "real", index, encode_jpeg(real, REAL_QUALITY))
      if kind == "generated_confounded":
        _write(out_dir, "generated", index, encode_png(generated), ".png")
      else:
        _write(out_dir, "generated", index, encode_jpeg(generated, REAL_QUALITY))
    else:
      shape = SHAPES[index % len(SHAPES)]
      draw_shape(light, shape, rng)
      camera = CAMERAS[int(rng.integers(len(CAMERAS)))]
      _write(out_dir, shape, index, shoot(light, camera, rng))
    bar.update()
  bar.close()
  return class_names


def _write(out_dir, class_name, index, data, extension=".jpg"):
  with open(os.path.join(out_dir, class_name, f"scene{index:05d}{extension}"), "wb") as f:
    f.write(data)


def materialize(kind, num_scenes, image_size, seed, root=None):
  """Generates the built-in data once into the cache and returns its folder."""
  spec = dict(kind=kind, num_scenes=num_scenes, image_size=image_size, seed=seed, version=VERSION)
  if kind.startswith("generated"):  # their own knobs: a retuned trace is another dataset
    spec.update(trace=GENERATOR_TRACE, period=GENERATOR_PERIOD, real_quality=REAL_QUALITY)
  root = pathlib.Path(root) if root else cache.cache_root() / "builtin"
  return cache.build_once(
    root, kind, spec, lambda staging: generate(kind, staging, num_scenes, image_size, seed)
  )
