"""Keras preprocessing layers over tfjpeg's exact ops, for anyone's `tf.data`
pipeline, `keras.layers.Pipeline` or model, on the TensorFlow, JAX and
PyTorch backends:

    import keras
    from tfjpeg import layers

    augment = keras.layers.Pipeline([
        layers.RandomJpegQuality(quality_range=(50, 100), probability=0.5, seed=1),
        layers.GridCrop(64, mode="random", seed=2),
    ])
    train = train.map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)

- `JpegCompression`, `RandomJpegQuality`: libjpeg-exact JPEG (encode, then the
  accurate decode), at a fixed QF or at one drawn per image.
- `ProcessingChain`: any processing chain or preset (`"corvi2023"`,
  `"resize:0.5..1.5@0.5>jpeg:65..100@0.5"`, tfjpeg.codec.chain_syntax).
- `GridCrop`: crops aligned, random or misaligned to the grid of the last
  compression, or realigned onto the grid estimated blindly.
- `PillowResizing`, `ScipyGaussianBlur`: resizing pixel-equal to Pillow's
  `Image.resize`, blurring pixel-equal to scipy's `gaussian_filter`.

And the layers of nets that cannot see the grid (model layers, not
preprocessing; plain Keras ops, so any backend runs them natively;
`tfjpeg.models.antialias` puts them in every registered net):

- `BlurPool`: anti-aliased subsampling (Zhang, ICML 2019).
- `PolyphaseDownsampling`: adaptive polyphase sampling (Chaman and
  Dokmanić, CVPR 2021), each image's component of largest norm.
- `CircularPadding2D`: wrap-around padding, for circular convolutions.

Each is a thin class over the same codec op that `bin/train`'s pipeline runs
(`tfjpeg.codec.chain_ops.apply`, `tfjpeg.codec.crops`), with the same draws
for the same seeds; `base.ImageLayer` does seeds, batches, dtypes and
backends once for all of them.

May import: tfjpeg.core, tfjpeg.codec.
"""

from tfjpeg.layers.blur_pool import BlurPool
from tfjpeg.layers.chain import ProcessingChain
from tfjpeg.layers.circular_padding import CircularPadding2D
from tfjpeg.layers.crop import GridCrop
from tfjpeg.layers.jpeg import JpegCompression
from tfjpeg.layers.jpeg import RandomJpegQuality
from tfjpeg.layers.polyphase import PolyphaseDownsampling
from tfjpeg.layers.resample import PillowResizing
from tfjpeg.layers.resample import ScipyGaussianBlur

__all__ = [
  "BlurPool",
  "CircularPadding2D",
  "GridCrop",
  "JpegCompression",
  "PillowResizing",
  "PolyphaseDownsampling",
  "ProcessingChain",
  "RandomJpegQuality",
  "ScipyGaussianBlur",
]
