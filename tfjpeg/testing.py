"""Helpers for tests: run an op three ways, small images, libjpeg references.

Every preprocessing op must behave the same eagerly, traced in a
`tf.function`, and mapped over a `tf.data.Dataset` with parallel calls.
"""

import io
import os
import pathlib

import cv2
import numpy as np
import tensorflow as tf

WAYS = ("eager", "function", "dataset_map")


def run(fn, way, *args):
  """Runs `fn(*args)` eagerly, in a `tf.function`, or in `Dataset.map`; returns numpy."""
  if way == "eager":
    out = fn(*args)
  elif way == "function":
    out = tf.function(fn)(*args)
  elif way == "dataset_map":
    dataset = tf.data.Dataset.from_tensors(tuple(args)).map(
        fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    out = next(iter(dataset))
  else:
    raise ValueError(f"way must be one of {WAYS}, got {way!r}")
  return tf.nest.map_structure(lambda t: t.numpy(), out)


def synthetic_image(height, width, seed=0):
  """A photo-like uint8 RGB image: smooth shading, texture, sharp edges, noise."""
  rng = np.random.default_rng(seed)
  image = np.zeros((height, width, 3), np.float32)
  for scale, weight in ((32, 90.0), (8, 40.0), (2, 15.0)):
    small = rng.normal(size=(max(2, height // scale), max(2, width // scale), 3))
    image += weight * cv2.resize(small.astype(np.float32), (width, height),
                                 interpolation=cv2.INTER_CUBIC)
  for _ in range(4):  # sharp-edged shapes, as objects give real photos
    y, x = rng.integers(0, height), rng.integers(0, width)
    radius = int(rng.integers(2, max(3, min(height, width) // 3)))
    cv2.circle(image, (int(x), int(y)), radius, rng.uniform(-80, 80, 3).tolist(), -1)
  image += rng.normal(scale=3.0, size=image.shape)
  return np.clip(image + 128.0, 0, 255).astype(np.uint8)


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
  Image.fromarray(rgb).save(buffer, "JPEG", quality=int(quality),
                            subsampling=2 if chroma == "4:2:0" else 0)
  return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def shared_data_dir():
  """The real-photo folder beside the checkout (`../shared/data`), or None.

  `TFJPEG_SHARED_DATA` overrides the location.
  """
  env = os.environ.get("TFJPEG_SHARED_DATA")
  candidates = [pathlib.Path(env)] if env else []
  repo = pathlib.Path(__file__).resolve().parents[1]
  candidates.append(repo.parent / "shared" / "data")
  for path in candidates:
    if path.is_dir():
      return path
  return None


def shared_photos(limit=None):
  """RGB arrays of the shared real photos (Kodak PNG, McMaster TIFF), by name."""
  root = shared_data_dir()
  if root is None:
    return {}
  files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".png", ".tif", ".tiff"))
  photos = {}
  for path in files[:limit]:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    photos[f"{path.parent.name}/{path.name}"] = np.ascontiguousarray(bgr[..., ::-1])
  return photos
