"""Helpers for tests: run an op three ways, small images, libjpeg references.

Every preprocessing op must behave the same eagerly, traced in a
`tf.function`, and mapped over a `tf.data.Dataset` with parallel calls.
"""

import io
import pathlib

import cv2
import numpy as np
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.data import builtin
from tfjpeg.data import manifest
from tfjpeg.data import real_photos
from tfjpeg.data import tasks

WAYS = ("eager", "function", "dataset_map")
REPO = pathlib.Path(__file__).resolve().parent.parent


def run(fn, way, *args):
  """Runs `fn(*args)` eagerly, in a `tf.function`, or in `Dataset.map`; returns numpy."""
  if way == "eager":
    out = fn(*args)
  elif way == "function":
    out = tf.function(fn)(*args)
  elif way == "dataset_map":
    dataset = tf.data.Dataset.from_tensors(tuple(args)).map(
      fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    out = next(iter(dataset))
  else:
    raise ValueError(f"way must be one of {WAYS}, got {way!r}")
  return tf.nest.map_structure(lambda t: t.numpy(), out)


def synthetic_image(height, width, seed=0):
  """A photo-like uint8 RGB image: the built-in scene generator plus sensor-like noise."""
  rng = np.random.default_rng(seed)
  image = 255.0 * builtin.scene(height, width, rng) + rng.normal(scale=3.0, size=(height, width, 3))
  return np.clip(np.round(image), 0, 255).astype(np.uint8)


def image_batch(count=3, size=(72, 88)):
  """`count` photo-like images of one `size`, stacked (uint8)."""
  return np.stack([synthetic_image(*size, seed=40 + i) for i in range(count)])


def opencv_compress(rgb, quality, chroma="4:2:0"):
  """Reference: OpenCV's JPEG round trip of an RGB array (OpenCV works in BGR)."""
  params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
  if chroma == "4:4:4":
    params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
  ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), params)
  assert ok
  return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def pil_compress(rgb, quality, chroma="4:2:0"):
  """Reference: PIL's JPEG round trip."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  buffer = io.BytesIO()
  Image.fromarray(rgb).save(
    buffer, "JPEG", quality=int(quality), subsampling=2 if chroma == "4:2:0" else 0
  )
  return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def shared_data_dir():
  """The real-photo folder (`real_photos.default_root()`: `../shared/data` beside
  the checkout, or $TFJPEG_SHARED_DATA), or None when it is absent."""
  path = real_photos.default_root()
  return path if path.is_dir() else None


def shared_photos(limit=None):
  """RGB arrays of the shared real photos (Kodak PNG, McMaster TIFF), by name."""
  root = shared_data_dir()
  if root is None:
    return {}
  return {
    f"{path.parent.name}/{path.name}": real_photos.read_rgb(path)
    for path in real_photos.list_sources(root)[:limit]
  }


def write_image(path, rgb, **params):
  """Writes an RGB array with OpenCV (by extension); returns the path."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  flags = []
  if path.suffix.lower() in (".jpg", ".jpeg"):
    flags = [cv2.IMWRITE_JPEG_QUALITY, params.get("quality", 90)]
  image = rgb[..., ::-1] if rgb.ndim == 3 and rgb.shape[-1] == 3 else rgb
  assert cv2.imwrite(str(path), np.ascontiguousarray(image), flags)
  return path


def folder_task(root, size, patch_size, per_class, png_every=0, quality=90, **options):
  """A `folder` task over classes "a" and "b" of synthetic images written to `root`.

  Images are JPEG at `quality`, except every `png_every`-th (from the first),
  which is PNG. `options` go to `tfjpeg.config.TaskConfig`.

  Returns:
    (task, {image_id: path}, the manifest's file table).
  """
  root = pathlib.Path(root)
  for c, name in enumerate(("a", "b")):
    for i in range(per_class):
      image = synthetic_image(*size, seed=100 * c + i)
      if png_every and i % png_every == 0:
        write_image(root / name / f"{i}.png", image)
      else:
        write_image(root / name / f"{i}.jpg", image, quality=quality)
  task = tasks.get(
    config_lib.TaskConfig(name="folder", data_dir=str(root), patch_size=patch_size, **options)
  )
  files = manifest.from_class_folders(root, (patch_size, patch_size)).files
  return task, dict(zip(files["image_id"], files["path"])), files


def make_manual_dir(key, root, size=(240, 250), per_class=3):
  """Tiny dummy data laid out as each TFDS builder's instructions say."""
  root = pathlib.Path(root)
  height, width = size
  image = lambda i: synthetic_image(height, width, seed=i)
  if key == "vision":
    for d, device in enumerate(
      ["D01_Samsung_GalaxyS3Mini", "D02_Apple_iPhone4s", "D10_Apple_iPhone4s"]
    ):
      for i in range(per_class):
        write_image(
          root / device / "images" / "nat" / f"D{d:02d}_I_nat_{i:04d}.jpg",
          synthetic_image(max(height, 520), max(width, 530), seed=10 * d + i),
        )
  elif key == "gan":
    for t, translation in enumerate(["horse2zebra", "apple2orange"]):
      for i in range(per_class):
        write_image(root / translation / "real" / f"img{i}.png", image(10 * t + i))
        write_image(root / translation / "fake" / f"img{i}.png", image(100 + 10 * t + i))
  elif key in ("imagenet", "lsun"):
    from tfjpeg.data import tfds_builders as builders  # pylint: disable=g-import-not-at-top

    names = builders.DEFAULT_SYNSETS if key == "imagenet" else builders.LSUN_CATEGORIES
    for c, name in enumerate(names):
      for i in range(per_class):
        suffix = ".JPEG" if key == "imagenet" else ".webp"
        path = root / ("train" if key == "imagenet" else "") / name / f"{name}_{i}{suffix}"
        if key == "imagenet":
          write_image(path.with_suffix(".jpg"), image(c * 7 + i)).rename(path)
        else:
          write_image(path, image(c * 7 + i))
  else:
    raise ValueError(key)
  return root


def write_corrupt_images(root):
  """Files whose headers look fine but whose data the pipeline cannot use, each
  of a kind seen in real collections. Returns {path: what the probe must say}."""
  import struct  # pylint: disable=g-import-not-at-top
  import zlib  # pylint: disable=g-import-not-at-top

  from PIL import Image  # pylint: disable=g-import-not-at-top

  root = pathlib.Path(root)
  root.mkdir(parents=True, exist_ok=True)
  rgb = synthetic_image(80, 96, seed=5)
  jpg = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
  png = cv2.imencode(".png", rgb[..., ::-1])[1].tobytes()
  scan = jpg.rfind(b"\xff\xda")
  flipped = bytearray(jpg)
  for k in range(scan + 40, len(flipped) - 10, 7):  # flipped bytes in the scan data
    flipped[k] ^= 0xFF
  idat = png.find(b"IDAT")
  length = struct.unpack(">I", png[idat - 4 : idat])[0]
  bad_crc = bytearray(png)
  bad_crc[idat + 4 + length] ^= 0xFF
  bad_zlib = bytearray(png)
  for k in range(idat + 24, idat + 4 + length, 5):
    bad_zlib[k] ^= 0x55
  bad_zlib[idat + 4 + length : idat + 8 + length] = struct.pack(
    ">I", zlib.crc32(bytes(bad_zlib[idat : idat + 4 + length])) & 0xFFFFFFFF
  )
  animated = io.BytesIO()  # TensorFlow reads no animated WebP
  Image.fromarray(rgb).save(
    animated, "WEBP", save_all=True, append_images=[Image.fromarray(255 - rgb)], duration=100
  )
  width, height = 16, 8  # a 16-bit RGB555 BMP: two bytes a pixel
  pixels = b"\x1f\x00" * width * height
  bmp16 = (
    b"BM"
    + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 16, 0, len(pixels), 2835, 2835, 0, 0)
    + pixels
  )
  cases = {
    "flipped_scan.jpg": (bytes(flipped), "corrupt JPEG data"),
    "truncated_scan_with_end.jpg": (jpg[: len(jpg) * 2 // 3] + b"\xff\xd9", "corrupt JPEG data"),
    "bad_crc.png": (bytes(bad_crc), "TensorFlow's decoder refuses it"),
    "bad_zlib.png": (bytes(bad_zlib), "TensorFlow's decoder refuses it"),
    "animated.webp": (animated.getvalue(), "TensorFlow's decoder refuses it"),
    "rgb555.bmp": (bmp16, "refuses it.*channels"),
  }
  written = {}
  for name, (data, problem) in cases.items():
    (root / name).write_bytes(data)
    written[root / name] = problem
  return written


def open_in_chromium(page, screenshot, height=2400):
  """Opens an HTML file in headless Chromium (Debian's package), saves a
  screenshot, and returns the page's console messages and uncaught errors;
  pytest skips the calling test where Chromium is not installed."""
  import shutil  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top

  import pytest  # pylint: disable=g-import-not-at-top

  chromium = shutil.which("chromium") or shutil.which("chromium-browser")
  if not chromium:
    pytest.skip("no Chromium here (Debian package chromium) to open the page")
  opened = subprocess.run(
    [
      chromium,
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--enable-logging=stderr",
      "--v=0",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      f"--screenshot={screenshot}",
      f"--window-size=1200,{height}",
      pathlib.Path(page).as_uri(),
    ],
    capture_output=True,
    text=True,
    timeout=120,
  )
  return [line for line in opened.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def pil_kernels():
  """Pillow's resampling filters by tfjpeg's kernel names."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  return {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
  }


def pil_resize(rgb, size, kernel):
  """Reference: Pillow's `Image.resize` to `size` = (height, width)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  height, width = size
  return np.asarray(Image.fromarray(rgb).resize((width, height), pil_kernels()[kernel]))


def scipy_blur(rgb, sigma):
  """Reference: CNNDetection's blur, scipy's gaussian_filter on each channel, in place."""
  import scipy.ndimage  # pylint: disable=g-import-not-at-top

  out = np.array(rgb)
  for c in range(out.shape[-1]):
    scipy.ndimage.gaussian_filter(out[..., c], output=out[..., c], sigma=sigma)
  return out


def chain_by_hand(image, chain, draws):
  """Reference: a chain's steps applied with Pillow, scipy and OpenCV from
  what it drew (`chain_syntax.draw_columns(chain)`, in order). Noise, drawn
  per pixel, has no reference: a chain with a noise step is refused."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  from tfjpeg.codec import chain_syntax  # pylint: disable=g-import-not-at-top

  columns = dict(zip(chain_syntax.draw_columns(chain), draws))
  for number, step in enumerate(chain.steps):
    at = lambda name, n=number, s=step: columns[f"{n}_{s.name}_{name}"]  # noqa: E731
    if not at("applied"):
      continue
    if step.name in ("crop", "centre"):
      y, x, h, w = (int(at(k)) for k in ("y", "x", "height", "width"))
      if step.name == "centre":  # the centre, as its own rule, not as drawn
        h, w = min(h, image.shape[0]), min(w, image.shape[1])
        y, x = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
      image = image[y : y + h, x : x + w]
    elif step.name == "gray":
      image = np.asarray(Image.fromarray(image).convert("L").convert("RGB"))
    elif step.name == "fit":
      h, w = image.shape[:2]
      scale = step.side.low / max(h, w)
      size = (int(np.floor(h * scale + 0.5)), int(np.floor(w * scale + 0.5)))
      image = pil_resize(image, size, step.kernel)
    elif step.name == "rrc":
      y, x, h, w, side = (int(at(k)) for k in ("y", "x", "height", "width", "side"))
      kernel = step.kernel.split("|")[int(at("kernel"))]
      image = pil_resize(image[y : y + h, x : x + w], (side, side), kernel)
    elif step.name == "noise":
      raise ValueError("noise is drawn per pixel: no reference")
    elif step.name == "resize":
      h, w = int(at("height")), int(at("width"))
      kernel = step.kernel
      if kernel == "auto":
        kernel = "lanczos" if (h < image.shape[0] or w < image.shape[1]) else "bicubic"
      image = pil_resize(image, (h, w), kernel)
    elif step.name == "blur":
      image = scipy_blur(image, at("sigma"))
    else:
      image = opencv_compress(image, int(at("qf")))
  return np.ascontiguousarray(image)
