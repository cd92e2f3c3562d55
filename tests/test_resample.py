"""tfjpeg.codec.resample: resizing pixel-equal to Pillow, blurring to scipy,
eagerly, traced and mapped; the shared real photos when they are there."""

import numpy as np
import pytest
import tensorflow as tf

from tfjpeg.codec import resample

import helpers as testing

PIL_KERNELS = testing.pil_kernels()
# (height, width) of the output for an input of (h, w): shrinking by whole and
# odd factors, enlarging, one axis alone, to a few pixels.
SIZES = (
  lambda h, w: (h // 2, w // 2),
  lambda h, w: (h // 4 + 1, w // 4),
  lambda h, w: (int(h * 0.37) + 1, int(w * 0.61)),
  lambda h, w: (2 * h, 2 * w),
  lambda h, w: (h * 3 // 2 + 1, w),
  lambda h, w: (h, w * 5 // 4),
  lambda h, w: (7, 5),
)


pil_resize = testing.pil_resize
scipy_blur = testing.scipy_blur


@pytest.fixture(scope="module", params=[(37, 53), (64, 48)], ids=["odd", "even"])
def image(request):
  height, width = request.param
  return testing.synthetic_image(height, width, seed=height)


@pytest.mark.parametrize("kernel", sorted(PIL_KERNELS))
def test_resize_equals_pillow_for_every_kernel_and_size(image, kernel):
  height, width = image.shape[:2]
  for make_size in SIZES:
    size = make_size(height, width)
    np.testing.assert_array_equal(
      resample.resize(image, size, kernel).numpy(),
      pil_resize(image, size, kernel),
      err_msg=f"{kernel} {image.shape[:2]} -> {size}",
    )


def test_resize_takes_pillows_pass_order_on_random_sizes():
  """Pillow 13 runs the height pass first when the height loses more than
  twice the pixels the width does; the order changes the rounding."""
  rng = np.random.default_rng(5)
  height_first = 0
  for number, (h, w, out_h, out_w) in enumerate(rng.integers(3, 70, (40, 4))):
    image = testing.synthetic_image(int(h), int(w), seed=number)
    kernel = sorted(PIL_KERNELS)[number % len(PIL_KERNELS)]
    size = (int(out_h), int(out_w))
    height_first += int(h - out_h > max(0, 2 * (w - out_w)))
    np.testing.assert_array_equal(
      resample.resize(image, size, kernel).numpy(),
      pil_resize(image, size, kernel),
      err_msg=f"{kernel} {(h, w)} -> {size}",
    )
  assert height_first >= 5  # both orders were tried


def test_resize_equals_pillow_where_sums_sit_on_half_levels():
  """Halving columns of alternating levels (v, v+1): the box kernel puts
  every sum on a half level, bilinear an eighth of them; all are redone in
  integers, and scattered back to their pixels."""
  rng = np.random.default_rng(3)
  levels = rng.integers(0, 255, (48, 40, 3)).astype(np.uint8)
  image = np.repeat(levels, 2, axis=1)
  image[:, 1::2] += 1
  for kernel in ("box", "bilinear"):
    size = (48, 40)
    np.testing.assert_array_equal(
      resample.resize(image, size, kernel).numpy(), pil_resize(image, size, kernel), kernel
    )


def test_a_pass_redoes_in_integers_the_sums_float32_rounds_across_a_level():
  """Sums built one step from a rounding boundary (2^21 + sum w p a multiple
  of 2^22, give or take 1), with products of up to 26 bits: float32 alone
  floors some of them wrong (checked here), the pass gives Pillow's integers."""
  rng = np.random.default_rng(8)
  outputs, taps = 400, 16
  values = rng.integers(0, 256, (outputs * taps, 1)).astype(np.uint8)
  values[::taps] = 1  # the first tap of each output: the weight that lands the sum
  weights = rng.integers(0, 2**18, (outputs, taps)).astype(np.int64)
  pixels = values[:, 0].reshape(outputs, taps).astype(np.int64)
  sums = (weights * pixels).sum(1) + 2**21
  target = np.round(sums / 2**22) * 2**22 + rng.integers(-1, 2, outputs)
  weights[:, 0] += (target - sums).astype(np.int64)
  exact = np.clip(((weights * pixels).sum(1) + 2**21) >> 22, 0, 255)
  in_float32 = (pixels.astype(np.float32) * (weights / 2**22).astype(np.float32)).sum(1)
  assert np.any(np.floor(in_float32 + np.float32(0.5)) != exact)  # float32 alone is wrong
  first = tf.range(outputs) * taps
  out = resample._resample_rows_at(tf.constant(values), first, tf.constant(weights, tf.int32))
  np.testing.assert_array_equal(out.numpy()[:, 0], exact)


def test_resize_equals_pillow_shrinking_by_large_factors():
  """Hundreds of taps per output (the sums whose float32 error is largest)."""
  image = testing.synthetic_image(420, 610, seed=4)
  for kernel, size in (("lanczos", (11, 17)), ("bicubic", (200, 29)), ("hamming", (23, 200))):
    np.testing.assert_array_equal(
      resample.resize(image, size, kernel).numpy(),
      pil_resize(image, size, kernel),
      err_msg=f"{kernel} -> {size}",
    )


def test_resize_sums_in_float64_where_onednn_may_round_float32_products(monkeypatch):
  """With oneDNN told to compute float32 products in bfloat16 or TF32, the
  error bound would not hold: the products are float64 then, still Pillow's."""
  monkeypatch.setenv("DNNL_DEFAULT_FPMATH_MODE", "BF16")
  assert resample._product_dtype() == tf.float64
  monkeypatch.delenv("DNNL_DEFAULT_FPMATH_MODE")
  monkeypatch.setenv("ONEDNN_DEFAULT_FPMATH_MODE", "BF16")
  assert resample._product_dtype() == tf.float64
  image = testing.synthetic_image(90, 70, seed=6)
  np.testing.assert_array_equal(
    resample.resize(image, (33, 41), "lanczos").numpy(), pil_resize(image, (33, 41), "lanczos")
  )
  monkeypatch.setenv("ONEDNN_DEFAULT_FPMATH_MODE", "strict")
  assert resample._product_dtype() == tf.float32


@pytest.mark.parametrize("way", testing.WAYS)
def test_resize_and_blur_run_every_way_with_tensor_arguments(image, way):
  """Sizes, factors and sigmas as tensors (a draw per image), as the chains pass them."""
  size = tf.constant([20, 31])
  resized = testing.run(lambda x, s: resample.resize(x, s, "lanczos"), way, image, size)
  np.testing.assert_array_equal(resized, pil_resize(image, (20, 31), "lanczos"))
  scaled = testing.run(lambda x, f: resample.resize_by(x, f, "bicubic"), way, image, 1.5)
  expected_size = tuple(int(np.floor(s * 1.5 + 0.5)) for s in image.shape[:2])
  np.testing.assert_array_equal(scaled, pil_resize(image, expected_size, "bicubic"))
  sigma = tf.constant(1.3, tf.float64)
  blurred = testing.run(lambda x, s: resample.gaussian_blur(x, s), way, image, sigma)
  np.testing.assert_array_equal(blurred, scipy_blur(image, 1.3))


def test_blur_equals_scipy_for_python_and_drawn_sigmas(image):
  for sigma in (0.0, 0.3, 0.5, 1.0, 1.7, 2.5, 3.0):
    expected = scipy_blur(image, sigma)
    np.testing.assert_array_equal(
      resample.gaussian_blur(image, sigma).numpy(), expected, err_msg=f"sigma {sigma}"
    )
    drawn = tf.constant(sigma, tf.float64)
    np.testing.assert_array_equal(
      resample.gaussian_blur(image, drawn).numpy(), expected, err_msg=f"tensor sigma {sigma}"
    )


def test_blur_equals_scipy_on_images_narrower_than_its_kernel():
  """scipy mirrors again where the kernel is wider than the image."""
  for (height, width), sigma in (((5, 60), 2.0), ((10, 40), 3.0), ((3, 3), 1.7)):
    small = testing.synthetic_image(height, width, seed=height)
    expected = scipy_blur(small, sigma)
    np.testing.assert_array_equal(resample.gaussian_blur(small, sigma).numpy(), expected)
    drawn = tf.constant(sigma, tf.float64)
    np.testing.assert_array_equal(resample.gaussian_blur(small, drawn).numpy(), expected)


def test_tf_image_resize_is_not_pillow(image):
  """Why this module exists: TensorFlow's antialiased resize differs from Pillow."""
  size = (image.shape[0] * 2, image.shape[1] * 2)
  ours = tf.image.resize(image, size, "lanczos3", antialias=True)
  ours = tf.cast(tf.clip_by_value(tf.round(ours), 0, 255), tf.uint8).numpy()
  assert np.abs(ours.astype(int) - pil_resize(image, size, "lanczos")).max() > 3


def test_bad_arguments_are_refused():
  image = np.zeros((8, 8, 3), np.uint8)
  with pytest.raises(ValueError, match="kernel"):
    resample.resize(image, (4, 4), "nearest")
  with pytest.raises(TypeError, match="uint8"):
    resample.resize(image.astype(np.float32), (4, 4))
  with pytest.raises(ValueError, match="sigma"):
    resample.gaussian_blur(image, -1.0)
  with pytest.raises(tf.errors.InvalidArgumentError, match="positive size"):
    resample.resize(image, tf.constant([0, 4]))


@pytest.mark.skipif(testing.shared_data_dir() is None, reason="../shared/data is absent")
def test_resize_and_blur_equal_pillow_and_scipy_on_real_photos():
  """Every kernel, shrinking and enlarging, on Kodak and McMaster photos (a
  few: each full-size resize is a second of work)."""
  photos = testing.shared_photos()
  names = sorted(photos)[::8]
  for number, name in enumerate(names):
    photo = photos[name]
    height, width = photo.shape[:2]
    kernel = sorted(PIL_KERNELS)[number % len(PIL_KERNELS)]
    for size in ((height // 2 + 1, width // 3), (height * 5 // 4, width * 5 // 4 + 1)):
      np.testing.assert_array_equal(
        resample.resize(photo, size, kernel).numpy(),
        pil_resize(photo, size, kernel),
        err_msg=f"{name} {kernel} -> {size}",
      )
    for kernel in ("bicubic", "lanczos"):  # Corvi's two, on every photo shown
      size = (200, 200)
      np.testing.assert_array_equal(
        resample.resize(photo, size, kernel).numpy(), pil_resize(photo, size, kernel)
      )
    sigma = (0.5, 1.5, 3.0)[number % 3]
    np.testing.assert_array_equal(
      resample.gaussian_blur(photo, sigma).numpy(), scipy_blur(photo, sigma), err_msg=name
    )
