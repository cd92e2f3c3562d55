"""tfjpeg: train and evaluate CNNs in the presence of JPEG compression."""

__version__ = "0.1.0"
