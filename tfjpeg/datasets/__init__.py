"""TFDS builders (manual download) for the paper's four tasks.

Importing this package registers them with TFDS as `tfjpeg_vision`,
`tfjpeg_gan`, `tfjpeg_imagenet` and `tfjpeg_lsun`.
"""

from tfjpeg.datasets.builders import (  # noqa: F401
    TfjpegGan, TfjpegImagenet, TfjpegLsun, TfjpegVision, BUILDERS)
