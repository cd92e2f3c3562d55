"""What every tfjpeg Keras layer does the same way: seeds, single images and
batches, dtypes and value ranges, the `training` argument, dict inputs, and
the backends.

The ops underneath are TensorFlow's (libjpeg has no XLA, JAX or PyTorch
kernel), so a layer always computes with TensorFlow, on the CPU:

- in `tf.data` (any backend) and under the TensorFlow backend it runs on
  the graph as any TensorFlow op does;
- called on JAX or PyTorch arrays outside `tf.data` (eagerly, or in a model
  those backends run without `jit`) it takes them to TensorFlow and back;
- inside a `jax.jit` trace there is nothing to compute with: a one-line
  error says to use the layer in `tf.data` (models holding a tfjpeg layer
  say `supports_jit = False`, so `model.fit` and `predict` do not jit them).

Draws, as Keras's random layers make them: each call takes a fresh seed pair
from the layer's own generator (seeded by `seed=`), and image `i` of the call
draws from `tfjpeg.core.seeds.for_example(call_seed, i)`; the same draws
follow from `get_random_transformation(images, seed=pair)`, which is what
tfjpeg's functions take (`tfjpeg.apply_chain(image, chain, seeds[i])`).
Layers that draw are the identity outside training (`training=False`), as
Keras's `Random*` layers are; layers that draw nothing (a fixed QF, a fixed
size) apply always, as Keras's `Resizing` does.
"""

import functools
import random
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfjpeg.core import seeds
from tfjpeg.core.errors import ConfigError

TensorLike = Any
ValueRange = tuple[float, float]

# Keys of a dict input (Keras's convention) that a layer moving pixels would
# have to move too: refused by the layers that move them.
GEOMETRY_KEYS = ("bounding_boxes", "segmentation_masks")
# The key under which layers hand on where the grid of the last compression
# lies in each image (y, x): written by ProcessingChain, read by GridCrop.
GRID_KEY = "grid_origins"


def value_range_of(value_range: Sequence[float], owner: str) -> ValueRange:
  """`value_range` as a (low, high) pair of floats, low below high."""
  try:
    low, high = (float(v) for v in value_range)
  except (TypeError, ValueError):
    raise ValueError(
      f"{owner}: value_range must be two numbers (low, high), got {value_range!r}"
    ) from None
  if not low < high:
    raise ValueError(f"{owner}: value_range must run upwards, got {value_range!r}")
  return low, high


def pixels(value: Any, what: str, owner: str) -> int:
  """`value` as a whole, positive number of pixels, else a one-line error."""
  if isinstance(value, bool) or not isinstance(value, int | float | np.integer):
    raise ConfigError(f"{owner}: {what} must be a whole number of pixels, got {value!r}")
  if not float(value).is_integer() or value < 1:
    raise ConfigError(f"{owner}: {what} must be a whole number of pixels, got {value!r}")
  return int(value)


class ImageLayer(keras.layers.Layer):
  """The base of tfjpeg's preprocessing layers (see the module's docstring).

  Subclasses set `draws` (whether the layer draws anything, which makes it
  the identity outside training) and implement `transform_one(image, seed,
  extras)` on one uint8 HxWx3 tf.Tensor, returning the new image and a dict
  of per-image outputs named in `extra_outputs()`.

  Args:
    value_range: the range of the pixels of float inputs, (0, 255) by
      default as tfjpeg's ops and `keras.applications` take them; (0, 1)
      for images scaled to 1. Integer inputs are 0..255.
    seed: an int: the layer's draws are then the same on every run.
    **kwargs: Keras's own (`name`, `dtype`: the output dtype, float32 by
      default as for Keras's image layers, "uint8" to keep bytes).
  """

  draws = True  # whether the layer draws anything (then: training only)
  moves_pixels = False  # whether GEOMETRY_KEYS of a dict input would need moving
  needs_bytes = True  # whether transform_one takes 0..255 bytes (else: the input's pixels)

  def __init__(
    self, value_range: Sequence[float] = (0, 255), seed: int | None = None, **kwargs: Any
  ):
    super().__init__(**kwargs)
    self.value_range = value_range_of(value_range, type(self).__name__)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
      raise ValueError(f"{type(self).__name__}: seed must be an int or None, got {seed!r}")
    self.seed = None if seed is None else int(seed)
    # TensorFlow inputs stay TensorFlow's under every backend (Keras would
    # convert a tf.data tensor to a JAX array and fail): converted in call().
    self._convert_input_args = False
    self._allow_non_tensor_positional_args = True
    self.supports_jit = False  # libjpeg has no XLA kernel
    with tf.init_scope(), tf.device("/CPU:0"):
      # A generator's draws are atomic: parallel tf.data calls each get their own.
      self._generator = tf.random.Generator.from_seed(
        random.randrange(2**31) if self.seed is None else self.seed
      )
    # Eager calls run traced. A partial, not the method: TensorFlow counts
    # retracing per code object, and would warn of every new layer's first trace.
    self._compiled = tf.function(
      functools.partial(ImageLayer._tf_call, self), reduce_retracing=True, autograph=False
    )

  # --- what subclasses provide ------------------------------------------

  def transform_one(
    self, image: tf.Tensor, seed: tf.Tensor, extras: dict[str, tf.Tensor]
  ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """One uint8 HxWx3 image, its [2] int64 seed and the per-image entries
    of a dict input (GRID_KEY) -> (uint8 image, per-image outputs)."""
    raise NotImplementedError

  def inference_one(
    self, image: tf.Tensor, extras: dict[str, tf.Tensor]
  ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """What a layer that draws does outside training: nothing, by default."""
    return image, {}

  def check_image_size(self, height: int | None, width: int | None) -> None:
    """Refuses, in one line, images of a size the layer cannot take."""
    del height, width  # any size

  def output_image_shape(self, shape: tf.TensorShape) -> tf.TensorShape:
    """The shape of one output image for one input image of `shape`, in
    training; a dimension is None where draws decide it."""
    return tf.TensorShape(shape)

  def symbolic_image_shape(self, shape: tf.TensorShape) -> tf.TensorShape:
    """What Keras is told of one output image: `output_image_shape`, with a
    side None where training and inference differ."""
    return self.output_image_shape(shape)

  def uniform_sizes(self) -> bool:
    """Whether images of one size all come out of one size (a batch stays
    dense); else a batch comes out ragged."""
    return True

  def extra_outputs(self) -> dict[str, tf.TensorSpec]:
    """Per-image outputs a dict input gets besides its images."""
    return {}

  # --- Keras's conventions ----------------------------------------------

  def get_random_transformation(
    self, data: Any, training: bool = True, seed: TensorLike | None = None
  ) -> dict[str, tf.Tensor] | None:
    """The draws of one call: {"seeds": [n, 2] int64}, image i's seed, n
    the batch's size (1 for a single image); None where nothing is drawn
    (a layer that draws nothing, or outside training).
    `seed` (an int or a pair) gives stateless draws; else the layer's
    generator gives the call's seed."""
    if not self.draws or not training:
      return None
    images = data["images"] if isinstance(data, dict) else data
    images = _as_tf(images)
    count = tf.shape(images)[0] if images.shape.rank == 4 else 1
    call_seed = seeds.as_seed(seed) if seed is not None else self._next_seed()
    return {"seeds": for_examples(call_seed, count)}

  def transform_images(
    self,
    images: TensorLike,
    transformation: dict[str, tf.Tensor] | None = None,
    training: bool = True,
  ) -> tf.Tensor:
    """`images` (one HxWx3 image or a batch) under `transformation`
    (`get_random_transformation`'s; drawn by the layer's generator when not
    given), as a TensorFlow tensor."""
    images = _as_tf(images)
    if transformation is None:
      transformation = self.get_random_transformation(images, training=training)
    out, _ = self._tf_call(images, {}, transformation, training, with_outputs=False)
    return out

  def __call__(self, data: Any, *args, **kwargs) -> Any:
    # Sizes a layer cannot take are refused here, in one line: inside call()
    # Keras would wrap the error with a dump of the input.
    images = data.get("images") if isinstance(data, dict) else data
    shape = getattr(images, "shape", None)
    if isinstance(shape, tf.TensorShape) and shape.rank is None:
      raise ValueError(
        f"{type(self).__name__} takes one HxWx3 image or a batch NxHxWx3, got a tensor of "
        "unknown rank: give it one (tf.io.decode_image(..., expand_animations=False), or "
        "tf.ensure_shape(image, [None, None, 3]))"
      )
    if (
      shape is not None
      and not isinstance(images, keras.KerasTensor)
      and not _shape_inference_only(images)
    ):
      shape = tuple(shape)
      if len(shape) not in (3, 4) or shape[-1] not in (3, None):
        raise ValueError(
          f"{type(self).__name__} takes one HxWx3 image or a batch NxHxWx3, got shape {shape}"
        )
      self.check_image_size(shape[-3], shape[-2])
    return super().__call__(data, *args, **kwargs)

  def call(self, data: Any, training: bool = True) -> Any:
    images = data["images"] if isinstance(data, dict) else data
    if isinstance(data, dict) and self.moves_pixels:
      present = [k for k in GEOMETRY_KEYS if k in data]
      if present:
        raise ValueError(
          f"{type(self).__name__} moves pixels and does not move {', '.join(present)}: "
          "pass images (and labels) only"
        )
    if _shape_inference_only(images):
      # JAX's and PyTorch's Keras build a model by tracing it for shapes alone
      # (jax.eval_shape, meta tensors): answer with the output's shape.
      shape = tuple(images.shape)
      known = tuple(d if isinstance(d, int) else None for d in shape)
      out_shape = tuple(
        s if s is not None else d for s, d in zip(self.compute_output_shape(known), shape)
      )
      out = keras.ops.zeros(out_shape, dtype=self.compute_dtype)
      return dict(data, images=out) if isinstance(data, dict) else out
    back = _back_to_caller(images)
    extras = (
      {GRID_KEY: _as_tf(data[GRID_KEY])} if isinstance(data, dict) and GRID_KEY in data else {}
    )
    images = _as_tf(images)
    transformation = self.get_random_transformation(images, training=training)
    run = self._compiled if tf.executing_eagerly() else self._tf_call
    out, outputs = run(images, extras, transformation, bool(training), isinstance(data, dict))
    if not isinstance(data, dict):
      return back(out)
    result = dict(data, images=back(out))
    result.update({k: back(v) for k, v in outputs.items()})
    return result

  def compute_output_shape(self, input_shape):
    shape = tf.TensorShape(input_shape)
    if shape.rank == 4:
      return tuple(shape[:1].concatenate(self.symbolic_image_shape(shape[1:])).as_list())
    return tuple(self.symbolic_image_shape(shape).as_list())

  def compute_output_spec(self, data, training=True):
    if isinstance(data, dict):
      out = dict(data)
      out["images"] = self.compute_output_spec(data["images"])
      return out
    return keras.KerasTensor(self.compute_output_shape(data.shape), dtype=self.compute_dtype)

  def get_config(self) -> dict[str, Any]:
    config = super().get_config()
    config.update(value_range=list(self.value_range), seed=self.seed)
    return config

  # --- the work ---------------------------------------------------------

  def _next_seed(self) -> tf.Tensor:
    with tf.device("/CPU:0"):
      return self._generator.make_seeds(1)[:, 0]

  def _tf_call(self, images, extras, transformation, training, with_outputs=True):
    """(images, per-image outputs) for one image, a batch or a ragged batch
    (images of different sizes, `Dataset.ragged_batch`), on the graph; the
    per-image outputs only `with_outputs` (a dict input)."""
    ragged = isinstance(images, tf.RaggedTensor)
    if images.shape.rank not in (3, 4) or images.shape[-1] not in (3, None):
      raise ValueError(
        f"{type(self).__name__} takes one HxWx3 image or a batch NxHxWx3, got shape {images.shape}"
      )
    apply = not (self.draws and not training)  # else: inference_one
    if not apply and type(self).inference_one is ImageLayer.inference_one:
      return self._convert(images, self._to_output_dtype), {}
    pixels = self._convert(images, self._to_uint8) if self.needs_bytes else images
    if images.shape.rank == 3:
      seed = transformation["seeds"][0] if transformation else tf.zeros([2], tf.int64)
      out, outputs = (
        self.transform_one(pixels, seed, extras) if apply else self.inference_one(pixels, extras)
      )
      return self._to_output_dtype(out), outputs
    per_image_seeds = (
      transformation["seeds"] if transformation else tf.zeros([tf.shape(pixels)[0], 2], tf.int64)
    )
    out_shape = self.output_image_shape(
      tf.TensorShape([None, None, 3]) if ragged else pixels.shape[1:]
    )
    # Dense where every image comes out of one size; ragged where sizes
    # differ (a ragged batch, or draws that decide each image's size).
    dense = out_shape[:2].is_fully_defined() or (not ragged and self.uniform_sizes())

    def one(elements):
      image, seed, extra = elements
      if ragged:
        image = image.to_tensor()
      out, outputs = (
        self.transform_one(image, seed, extra) if apply else self.inference_one(image, extra)
      )
      out = out if dense else tf.RaggedTensor.from_tensor(out)
      return out, outputs if with_outputs else {}

    image_spec = (
      tf.TensorSpec(out_shape, pixels.dtype)
      if dense
      else tf.RaggedTensorSpec([None, None, 3], pixels.dtype, ragged_rank=1)
    )
    out, outputs = tf.map_fn(
      one,
      (pixels, per_image_seeds, extras),
      fn_output_signature=(image_spec, self.extra_outputs() if with_outputs else {}),
    )
    return self._convert(out, self._to_output_dtype), outputs

  @staticmethod
  def _convert(images, function):
    """`function` of the pixels of a tensor or a ragged batch."""
    if isinstance(images, tf.RaggedTensor):
      return tf.ragged.map_flat_values(function, images)
    return function(images)

  def _to_uint8(self, images):
    """Pixels as 0..255 bytes: integers as they are (clipped), floats from
    `value_range`, rounded to the nearest level."""
    if images.dtype == tf.uint8:
      return images
    if not images.dtype.is_floating:
      return tf.cast(tf.clip_by_value(tf.cast(images, tf.int64), 0, 255), tf.uint8)
    low, high = self.value_range
    scaled = (tf.cast(images, tf.float32) - low) * (255.0 / (high - low))
    return tf.cast(tf.clip_by_value(tf.round(scaled), 0.0, 255.0), tf.uint8)

  def _to_output_dtype(self, images):
    """The layer's output: its compute dtype (float32 unless `dtype=` says
    otherwise) in `value_range`, or uint8 bytes. Float inputs a layer left
    alone keep their values."""
    dtype = tf.as_dtype(self.compute_dtype)
    if dtype == tf.uint8:
      return self._to_uint8(images)
    if images.dtype.is_floating:
      return tf.cast(images, dtype)
    low, high = self.value_range
    values = tf.cast(self._to_uint8(images), tf.float32)
    if (low, high) != (0.0, 255.0):
      values = values * ((high - low) / 255.0) + low
    return tf.cast(values, dtype)


def for_examples(seed: TensorLike, count: TensorLike) -> tf.Tensor:
  """[count, 2]: `tfjpeg.core.seeds.for_example(seed, i)` for i = 0, 1, ...,
  in one op. A fold-in is documented as (a draw from the seed, the data)."""
  first = tf.random.stateless_uniform(
    [], seeds.as_seed(seed), minval=None, maxval=None, dtype=tf.int64
  )
  indices = tf.range(tf.cast(count, tf.int64), dtype=tf.int64)
  return tf.stack([tf.fill(tf.shape(indices), first), indices], axis=1)


def _shape_inference_only(values: TensorLike) -> bool:
  """Whether Keras is tracing a JAX or PyTorch model or layer for its shapes
  alone. TensorFlow tensors included: PyTorch's Keras builds a Pipeline by
  calling it once for shapes on the very tf.data tensors it is mapped over,
  and a layer that drew there would draw twice per image, its draws then
  unlike the TensorFlow backend's."""
  from keras.src.backend.common import symbolic_scope  # pylint: disable=g-import-not-at-top

  del values
  return keras.backend.backend() != "tensorflow" and symbolic_scope.in_symbolic_scope()


def _as_tf(values: TensorLike) -> tf.Tensor:
  """A TensorFlow tensor of `values`: a tf.Tensor as it is, a JAX or PyTorch
  array or anything numpy reads, by way of numpy."""
  if tf.is_tensor(values) or isinstance(values, tf.RaggedTensor):
    return values
  if type(values).__module__.startswith("jax") and "Tracer" in type(values).__name__:
    raise RuntimeError(
      "tfjpeg layers compute with TensorFlow (libjpeg has no XLA kernel) and cannot run "
      "inside jax.jit: use them in a tf.data pipeline, or compile the model with "
      "jit_compile=False"
    )
  if hasattr(values, "detach"):  # a PyTorch tensor, on whatever device
    values = values.detach().cpu().numpy()
  return tf.convert_to_tensor(np.asarray(values))


def _back_to_caller(values: TensorLike):
  """How to return a result to whoever passed `values`: TensorFlow tensors
  for TensorFlow tensors and under the TensorFlow backend, else the
  backend's own arrays (JAX, PyTorch)."""
  if tf.is_tensor(values) or keras.backend.backend() == "tensorflow":
    return lambda out: out
  return lambda out: keras.ops.convert_to_tensor(out.numpy())
