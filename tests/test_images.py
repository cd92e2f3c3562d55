"""tfjpeg.codec.images: every accepted format decodes exactly, bad files are named and refused."""

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfjpeg.codec import images
from tfjpeg.codec import jpeg
from tfjpeg.data import manifest

import helpers as testing

RGB = testing.synthetic_image(45, 67, seed=11)


def _save_pil(path, array, fmt, **kw):
  Image.fromarray(array).save(path, fmt, **kw)
  return path


@pytest.mark.parametrize("way", testing.WAYS)
@pytest.mark.parametrize("ext", [".png", ".bmp", ".webp", ".tif", ".jpg"])
def test_decode_each_format_three_ways(tmp_path, ext, way):
  if ext == ".webp":
    path = _save_pil(tmp_path / "a.webp", RGB, "WEBP", lossless=True)
  else:
    path = testing.write_image(tmp_path / f"a{ext}", RGB, quality=85)
  info = images.probe(path)
  assert (info.height, info.width) == RGB.shape[:2]
  data = tf.constant(path.read_bytes())
  out = testing.run(images.decode, way, data)
  if ext == ".jpg":  # the file's own pixels, by libjpeg's accurate IDCT
    expected = cv2.imread(str(path))[..., ::-1]
  else:
    expected = RGB
  np.testing.assert_array_equal(out, expected)


def test_grayscale_is_replicated(tmp_path):
  gray = RGB[..., 1]
  for ext in (".png", ".jpg", ".tif"):
    path = testing.write_image(tmp_path / f"g{ext}", gray)
    assert images.probe(path).mode == "L"
    out = images.decode(path.read_bytes()).numpy()
    reference = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(out, np.repeat(reference[..., None], 3, -1))


def test_alpha_is_dropped(tmp_path):
  rgba = np.dstack([RGB, np.full(RGB.shape[:2], 7, np.uint8)])
  for ext, fmt in ((".png", "PNG"), (".tif", "TIFF")):
    path = _save_pil(tmp_path / f"a{ext}", rgba, fmt)
    assert images.probe(path).mode == "RGBA"
    np.testing.assert_array_equal(images.decode(path.read_bytes()).numpy(), RGB)


@pytest.mark.parametrize(
  "maker, problem",
  [
    (
      lambda p: p.write_bytes(testing.write_image(p.with_suffix(".x.jpg"), RGB).read_bytes()[:900]),
      "truncated JPEG",
    ),
    (lambda p: p.write_text("not an image at all"), "not an image"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (
      lambda p: p.write_bytes(cv2.imencode(".png", (RGB.astype(np.uint16) * 257))[1].tobytes()),
      "16-bit PNG refused",
    ),
    (
      lambda p: p.write_bytes(cv2.imencode(".tif", (RGB.astype(np.uint16) * 257))[1].tobytes()),
      "16-bit TIFF refused",
    ),
    (lambda p: Image.fromarray(RGB).convert("CMYK").save(p, "JPEG"), "CMYK JPEG refused"),
    (lambda p: p.write_bytes(cv2.imencode(".png", RGB)[1].tobytes()[:-40]), "truncated PNG"),
  ],
)
def test_bad_files_are_refused_with_the_file_named(tmp_path, maker, problem):
  path = tmp_path / "bad.img"
  maker(path)
  with pytest.raises(images.BadImageError, match=problem) as caught:
    images.probe(path)
  assert str(path) in str(caught.value)
  assert caught.value.path == str(path)


def test_missing_file_is_named(tmp_path):
  with pytest.raises(images.BadImageError, match="cannot be read"):
    images.probe(tmp_path / "nope.jpg")


def test_image_smaller_than_patch_is_refused_not_resized(tmp_path):
  path = testing.write_image(tmp_path / "small.png", RGB)
  images.probe(path, min_size=(45, 67))
  with pytest.raises(images.BadImageError, match="45x67 pixels is smaller than the 64x64 patch"):
    images.probe(path, min_size=(64, 64))


def test_decode_never_uses_the_fast_idct(tmp_path):
  data = jpeg.encode(testing.synthetic_image(64, 64, seed=2), 100).numpy()
  np.testing.assert_array_equal(images.decode(data).numpy(), jpeg.decode(data).numpy())
  assert np.abs(images.decode(data).numpy().astype(int) - tf.io.decode_jpeg(data).numpy()).max() > 0


def test_list_images_is_recursive_and_sorted(tmp_path):
  for rel in ("b/2.png", "a/1.JPG", "a/notes.txt", "c.tif", ".hidden.png"):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_bytes(b"x")
  found = [p.replace(str(tmp_path) + "/", "") for p in images.list_images(tmp_path)]
  assert found == ["c.tif", "a/1.JPG", "b/2.png"]


def test_probe_decodes_as_the_pipeline_does_and_names_the_problem(tmp_path):
  for path, problem in testing.write_corrupt_images(tmp_path).items():
    with pytest.raises(images.BadImageError, match=problem) as caught:
      images.probe(path)
    assert str(path) in str(caught.value)
    images.probe(path, decode_check=False)  # the header alone looks fine
  good = testing.write_image(tmp_path / "good.jpg", testing.synthetic_image(80, 96))
  assert images.probe(good).format == "jpeg"


def test_manifest_probes_in_parallel_with_progress(tmp_path):
  for c in ("a", "b"):
    for i in range(6):
      testing.write_image(tmp_path / c / f"{i}.png", testing.synthetic_image(40, 40, seed=i))
  testing.write_corrupt_images(tmp_path / "a")
  lines = []
  found = manifest.from_class_folders(tmp_path, None, progress=lines.append)
  assert len(found.files) == 12 and len(found.bad_files) == 6
  assert lines[-1].startswith("probed 18 images") and "12 good, 6 bad" in lines[-1]
  assert found.bad_files["problem"].str.contains("refuses|corrupt").all()


def test_a_strict_decode_is_the_probes_check_and_the_pipelines_pixels(tmp_path, monkeypatch):
  """probe(..., DEFERRED) reads a JPEG's header only; decode_strictly names
  what the whole probe names, and gives `decode`'s pixels, also where it
  must take them from TensorFlow's decoder."""
  for path, problem in testing.write_corrupt_images(tmp_path).items():
    if path.suffix != ".jpg":  # other formats: checked whole by the header pass
      with pytest.raises(images.BadImageError, match=problem):
        images.probe(path, decode_check=images.DEFERRED)
      continue
    images.probe(path, decode_check=images.DEFERRED)
    with pytest.raises(images.BadImageError) as probed:
      images.probe(path)
    with pytest.raises(images.BadImageError) as strict:
      images.decode_strictly(str(path), path.read_bytes())
    assert strict.value.problem == probed.value.problem
  assert images.strict_pixels_match()
  for layout in ("420", "440", "411"):
    data = cv2.imencode(
      ".jpg",
      RGB,
      [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{layout}")],
    )[1].tobytes()
    expected = images.decode(data).numpy()
    np.testing.assert_array_equal(images.decode_strictly("x.jpg", data), expected)
    monkeypatch.setattr(images, "_pixels_match", [False])  # TensorFlow's pixels, after the check
    np.testing.assert_array_equal(images.decode_strictly("x.jpg", data), expected)
    monkeypatch.setattr(images, "_pixels_match", [True])
