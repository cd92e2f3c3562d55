"""tfjpeg.codec.jpeg: exactness against OpenCV and PIL, three ways of running, augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from tfjpeg.codec import jpeg

import helpers as testing

CHROMAS = jpeg.CHROMA_MODES
ALL_QUALITIES = list(range(1, 101))


@pytest.fixture(scope="module", params=[(37, 53), (48, 64)], ids=["odd", "even"])
def image(request):
  height, width = request.param
  return testing.synthetic_image(height, width, seed=height)


@pytest.mark.parametrize("chroma", CHROMAS)
def test_compress_equals_opencv_and_pil_at_every_quality(image, chroma):
  for quality in ALL_QUALITIES:
    ours = jpeg.compress(image, quality, chroma).numpy()
    np.testing.assert_array_equal(
      ours,
      testing.opencv_compress(image, quality, chroma),
      err_msg=f"OpenCV differs at QF {quality} {chroma}",
    )
    np.testing.assert_array_equal(
      ours,
      testing.pil_compress(image, quality, chroma),
      err_msg=f"PIL differs at QF {quality} {chroma}",
    )


@pytest.mark.parametrize("chroma", CHROMAS)
def test_tensor_quality_per_example_in_dataset_map(image, chroma):
  """A QF that differs per example, as a tensor, inside a parallel map."""
  dataset = tf.data.Dataset.from_tensor_slices(ALL_QUALITIES).map(
    lambda q: (jpeg.compress(tf.constant(image), q, chroma), q), num_parallel_calls=tf.data.AUTOTUNE
  )
  seen = 0
  for ours, quality in dataset:
    np.testing.assert_array_equal(
      ours.numpy(),
      testing.opencv_compress(image, int(quality), chroma),
      err_msg=f"QF {int(quality)} {chroma}",
    )
    seen += 1
  assert seen == len(ALL_QUALITIES)


@pytest.mark.parametrize("way", testing.WAYS)
@pytest.mark.parametrize("chroma", CHROMAS)
def test_compress_three_ways(image, way, chroma):
  for quality in (10, 75, 100):
    out = testing.run(lambda im, q: jpeg.compress(im, q, chroma), way, image, tf.constant(quality))
    np.testing.assert_array_equal(out, testing.opencv_compress(image, quality, chroma))
    assert out.dtype == np.uint8 and out.shape == image.shape


def test_compress_really_compresses(image):
  """Guards against a no-op: lower QF must move pixels further from the original."""
  errors = [
    np.abs(jpeg.compress(image, q).numpy().astype(int) - image).mean() for q in (100, 90, 50, 10)
  ]
  assert errors[0] > 0
  assert errors == sorted(errors)


def test_default_tf_decode_is_not_exact_but_ours_is():
  """The trap this module exists for: TF's default IDCT is the fast one."""
  image = testing.synthetic_image(64, 64, seed=3)
  data = jpeg.encode(image, 100)
  fast = tf.io.decode_jpeg(data).numpy()
  reference = testing.opencv_compress(image, 100)
  assert np.abs(fast.astype(int) - reference).max() > 0
  np.testing.assert_array_equal(jpeg.decode(data).numpy(), reference)


def test_decode_returns_file_pixels():
  image = testing.synthetic_image(40, 24, seed=1)
  data = jpeg.encode(image, 80, "4:4:4").numpy()
  assert data[:2] == b"\xff\xd8"
  np.testing.assert_array_equal(
    jpeg.decode(data).numpy(), testing.opencv_compress(image, 80, "4:4:4")
  )


def test_grid_period():
  assert jpeg.grid_period("4:2:0") == 16
  assert jpeg.grid_period("4:4:4") == 8
  with pytest.raises(ValueError, match="chroma"):
    jpeg.grid_period("4:2:2")


@pytest.mark.parametrize("bad", [0, 101, -5])
def test_bad_python_quality_is_refused(bad):
  with pytest.raises(ValueError, match="quality"):
    jpeg.compress(testing.synthetic_image(16, 16), bad)


@pytest.mark.parametrize("chroma", CHROMAS)
def test_bad_tensor_quality_is_refused(chroma):
  with pytest.raises(tf.errors.InvalidArgumentError, match="quality"):
    jpeg.compress(testing.synthetic_image(16, 16), tf.constant(0), chroma)


def test_bad_images_are_refused():
  with pytest.raises(TypeError, match="uint8"):
    jpeg.compress(np.zeros((8, 8, 3), np.float32), 90)
  with pytest.raises(ValueError, match="3 channels"):
    jpeg.compress(np.zeros((8, 8, 4), np.uint8), 90)
  with pytest.raises(ValueError, match="HxWx3"):
    jpeg.compress(np.zeros((2, 8, 8, 3), np.uint8), 90)


@pytest.mark.parametrize("way", testing.WAYS)
def test_random_compress_three_ways_and_reproducible(way):
  image = testing.synthetic_image(32, 48, seed=7)
  qualities = (50, 70, 90)
  fn = lambda im, s: jpeg.random_compress(im, qualities, 0.5, s)
  used = []
  for seed in range(12):
    out, quality = testing.run(fn, way, image, tf.constant([seed, 1], tf.int64))
    again, quality_again = testing.run(fn, "eager", image, tf.constant([seed, 1], tf.int64))
    np.testing.assert_array_equal(out, again)
    assert quality == quality_again
    if quality == 0:
      np.testing.assert_array_equal(out, image)
    else:
      assert quality in qualities
      np.testing.assert_array_equal(out, testing.opencv_compress(image, quality))
    used.append(int(quality))
  assert 0 in used and set(used) - {0}, "both outcomes expected over 12 seeds"


def test_random_compress_probability_and_qf_spread():
  image = testing.synthetic_image(16, 16)
  qualities = (50, 60, 70, 80, 90, 99)
  draws = np.array(
    [int(jpeg.random_compress(image, qualities, 0.5, (s, 9))[1]) for s in range(600)]
  )
  assert 0.4 < np.mean(draws > 0) < 0.6
  counts = [np.sum(draws == q) for q in qualities]
  assert min(counts) > 25, counts
  never = [int(jpeg.random_compress(image, qualities, 0.0, (s, 9))[1]) for s in range(20)]
  always = [int(jpeg.random_compress(image, qualities, 1.0, (s, 9))[1]) for s in range(20)]
  assert set(never) == {0} and 0 not in always


def test_random_compress_refuses_bad_arguments():
  image = testing.synthetic_image(16, 16)
  with pytest.raises(ValueError, match="at least one"):
    jpeg.random_compress(image, [], 0.5, 0)
  with pytest.raises(ValueError, match="probability"):
    jpeg.random_compress(image, [50], 1.5, 0)
  with pytest.raises(ValueError, match="quality"):
    jpeg.random_compress(image, [0], 0.5, 0)


# Real, never-compressed photos: the independent check of the Foundation issue.
PHOTO_QUALITIES = (1, 10, 50, 75, 90, 95, 99, 100)


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data absent")
@pytest.mark.parametrize("chroma", CHROMAS)
def test_real_photos_cropped_to_odd_sizes_equal_opencv(chroma):
  photos = testing.shared_photos()
  assert photos, "shared data folder holds no photos"
  for index, (name, photo) in enumerate(sorted(photos.items())):
    # Odd sizes and odd offsets, different for each photo.
    top, left = 1 + index % 7, 3 + index % 5
    crop = photo[top : top + 251 + 2 * (index % 4), left : left + 199 + 2 * (index % 3)]
    for quality in PHOTO_QUALITIES:
      ours = jpeg.compress(crop, quality, chroma).numpy()
      difference = np.abs(ours.astype(int) - testing.opencv_compress(crop, quality, chroma))
      assert difference.max() == 0, f"{name} QF {quality} {chroma}: {difference.max()}"


def _jpeg_variants(image):
  """The JPEG flavours met in practice: both chroma modes, progressive, grayscale."""
  import io  # pylint: disable=g-import-not-at-top

  from PIL import Image  # pylint: disable=g-import-not-at-top

  variants = {c: jpeg.encode(image, 90, c).numpy() for c in CHROMAS}
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, "JPEG", quality=95, progressive=True)
  variants["progressive"] = buffer.getvalue()
  buffer = io.BytesIO()
  Image.fromarray(image[..., 1]).save(buffer, "JPEG", quality=85)
  variants["grayscale"] = buffer.getvalue()
  variants.update(camera_layouts(image))
  return variants


def camera_layouts(image, quality=92):
  """The chroma layouts cameras write, by OpenCV: 4:2:2 (DSLRs; MCU 16 wide, 8
  high) and 4:4:0 (portrait phones; MCU 8 wide, 16 high)."""
  import cv2  # pylint: disable=g-import-not-at-top

  out = {}
  for name in ("422", "440"):
    layout = getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{name}")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, layout]
    out[f"{name[0]}:{name[1]}:{name[2]}"] = cv2.imencode(".jpg", image[..., ::-1], params)[
      1
    ].tobytes()
  return out


def test_camera_layouts_decode_as_opencv_decodes_them():
  import cv2  # pylint: disable=g-import-not-at-top

  from tfjpeg.codec import headers  # pylint: disable=g-import-not-at-top

  image = testing.synthetic_image(83, 117, seed=4)
  for layout, data in camera_layouts(image).items():
    assert headers.read(data).subsampling == layout
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(jpeg.decode(data).numpy(), reference, err_msg=layout)


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data absent")
def test_windows_of_real_camera_originals_equal_their_full_decode():
  """The shared camera and phone originals (4:2:0, 4:2:2 and 4:4:0, as the
  cameras wrote them): windows at MCU-aligned and odd places, top and bottom."""
  folder = testing.shared_data_dir() / "camera_jpegs"
  paths = sorted(folder.glob("*.jpg"))
  if not paths:
    pytest.skip("no camera_jpegs in the shared data")
  from tfjpeg.codec import headers  # pylint: disable=g-import-not-at-top

  one_of_each = {headers.read(str(p)).subsampling: p for p in paths}  # 4:2:0, 4:2:2, 4:4:0
  for path in one_of_each.values():
    data = path.read_bytes()
    full = jpeg.decode(data).numpy()
    height, width = full.shape[:2]
    for y, x in (
      (0, 0),
      (16, 32),
      (8, 8),
      (height // 2 + 3, width // 3 + 5),
      (height - 64, width - 64),
    ):
      patch = jpeg.decode_crop(data, (y, x), (64, 64)).numpy()
      np.testing.assert_array_equal(patch, full[y : y + 64, x : x + 64], err_msg=f"{path.name}")


@pytest.mark.parametrize("way", testing.WAYS)
def test_decode_crop_equals_full_decode_at_every_phase(way):
  image = testing.synthetic_image(83, 117, seed=21)
  size = (24, 40)
  offsets = [(y, x) for y in range(0, 83 - 24 + 1, 3) for x in range(0, 117 - 40 + 1, 5)]
  offsets += [(0, 0), (83 - 24, 117 - 40), (16, 32), (8, 8)]  # edges and MCU-aligned windows
  for name, data in _jpeg_variants(image).items():
    full = jpeg.decode(data).numpy()
    fn = lambda d, o: jpeg.decode_crop(d, o, size)
    # Every phase eagerly; a sample of them traced and mapped (each traces anew).
    for y, x in offsets[::2] if way == "eager" else offsets[::17]:
      patch = testing.run(fn, way, tf.constant(data), tf.constant([y, x]))
      np.testing.assert_array_equal(
        patch, full[y : y + 24, x : x + 40], err_msg=f"{name} at {(y, x)}"
      )


def test_plain_decode_and_crop_is_not_exact_which_is_why_decode_crop_widens():
  """The trap: TF's cropped decode differs from a full decode at MCU-aligned windows."""
  image = testing.synthetic_image(96, 96, seed=5)
  data = jpeg.encode(image, 95).numpy()
  full = jpeg.decode(data).numpy()
  differs = False
  for y, x in ((16, 16), (32, 16), (16, 48)):
    window = tf.io.decode_and_crop_jpeg(
      data, [y, x, 32, 32], channels=3, dct_method="INTEGER_ACCURATE"
    ).numpy()
    differs |= bool(np.abs(window.astype(int) - full[y : y + 32, x : x + 32]).max() > 0)
  assert differs


@pytest.mark.parametrize("way", testing.WAYS)
def test_windowed_decode_pays_for_few_small_patches_of_a_large_photo(way):
  camera = tf.constant([2000, 3000])
  one_small = tf.constant([[900, 1400]])
  ten_large = tf.constant([[150 * k, 200 * k] for k in range(10)])
  small_photo = tf.constant([256, 256])
  cases = [
    (camera, one_small, 224, True),
    (camera, ten_large, 512, False),
    (small_photo, tf.constant([[10, 10], [100, 100]]), 64, False),
  ]
  for image_size, offsets, patch, pays in cases:
    fn = lambda s, o, patch=patch: jpeg.windowed_decode_pays(s, o, (patch, patch))
    assert bool(testing.run(fn, way, image_size, offsets)) == pays


def _layouts_by_opencv(image):
  """Every sampling layout OpenCV writes, with the MCU (height, width) each has."""
  import cv2  # pylint: disable=g-import-not-at-top

  mcus = {"420": (16, 16), "422": (8, 16), "440": (16, 8), "444": (8, 8), "411": (8, 32)}
  out = {}
  for name, mcu in mcus.items():
    layout = getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{name}")
    params = [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, layout]
    out[name] = (cv2.imencode(".jpg", image[..., ::-1], params)[1].tobytes(), mcu)
  out["gray"] = (cv2.imencode(".jpg", image[..., 0])[1].tobytes(), (8, 8))
  out["png"] = (cv2.imencode(".png", image)[1].tobytes(), (0, 0))
  out["truncated"] = (out["420"][0][:20], (0, 0))  # cut inside its first segment
  # Fill bytes and a stray byte before the frame header, which decoders skip.
  frame = out["422"][0].index(b"\xff\xc0")
  out["padded"] = (out["422"][0][:frame] + b"\x00\xff\xff" + out["422"][0][frame:], (8, 16))
  out["empty"] = (b"", (0, 0))
  return out


def test_mcu_size_reads_every_layout_from_the_header_eagerly_and_in_tf_data():
  cases = _layouts_by_opencv(testing.synthetic_image(40, 72, seed=6))
  for name, (data, mcu) in cases.items():
    assert tuple(jpeg.mcu_size(data).numpy()) == mcu, name
  mapped = tf.data.Dataset.from_tensor_slices([d for d, _ in cases.values()]).map(jpeg.mcu_size)
  assert [tuple(m) for m in mapped.as_numpy_iterator()] == [m for _, m in cases.values()]


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data absent")
def test_mcu_size_of_real_camera_originals_agrees_with_their_headers():
  from tfjpeg.codec import headers  # pylint: disable=g-import-not-at-top

  mcus = {"4:2:0": (16, 16), "4:2:2": (8, 16), "4:4:0": (16, 8), "4:4:4": (8, 8)}
  paths = sorted((testing.shared_data_dir() / "camera_jpegs").glob("*.jpg"))
  if not paths:
    pytest.skip("no camera_jpegs in the shared data")
  seen = set()
  for path in paths:
    layout = headers.read(str(path)).subsampling
    assert tuple(jpeg.mcu_size(path.read_bytes()).numpy()) == mcus[layout], path.name
    seen.add(layout)
  assert {"4:2:2", "4:4:0"} <= seen  # EXIF segments before the frame header are skipped
