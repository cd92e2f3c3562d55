"""tfjpeg: train and evaluate CNNs in the presence of JPEG compression.

The stable public API is what this module names (`__all__`); everything else
lives in the layer subpackages (core, codec, data, pipeline, models, train,
serving, analysis, experiments) and may change between versions.

    import numpy as np
    import tfjpeg

    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), np.uint8)
    saved = tfjpeg.compress(image, 75)              # exact libjpeg, on the graph
    patch, offset = tfjpeg.crop(saved, 64, "aligned", seed=(0, 1))
    origin, confidence = tfjpeg.estimate_grid(saved[3:, 5:])  # -> (5, 3)

    config = tfjpeg.make_config(task="cameras", net="hpf", epochs=2)
    results = tfjpeg.train_and_evaluate(config, "runs/demo")

    augment = tfjpeg.layers.RandomJpegQuality(quality_range=(50, 100), seed=0)

Names load on first use, so `import tfjpeg` is instant and `tfjpeg.config`
works without TensorFlow.
"""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> (module, name there)
_EXPORTS = {
  # Exact JPEG on the graph (tfjpeg.codec.jpeg).
  "encode": ("tfjpeg.codec.jpeg", "encode"),
  "decode": ("tfjpeg.codec.jpeg", "decode"),
  "decode_crop": ("tfjpeg.codec.jpeg", "decode_crop"),
  "compress": ("tfjpeg.codec.jpeg", "compress"),
  # Any image file's bytes, JPEG exactly (tfjpeg.codec.images).
  "decode_image": ("tfjpeg.codec.images", "decode"),
  "random_compress": ("tfjpeg.codec.jpeg", "random_compress"),
  # Crops placed against the JPEG grid (tfjpeg.codec.crops).
  "crop": ("tfjpeg.codec.crops", "crop"),
  "crop_at": ("tfjpeg.codec.crops", "crop_at"),
  "choose_offset": ("tfjpeg.codec.crops", "choose_offset"),
  # The grid of a decoded image, and realignment (tfjpeg.codec.grid).
  "estimate_grid": ("tfjpeg.codec.grid", "estimate"),
  "realign": ("tfjpeg.codec.grid", "realign"),
  # Where the grid breaks: the local grid map (tfjpeg.codec.grid_map), of files (bin/grid).
  "grid_map": ("tfjpeg.codec.grid_map", "grid_map"),
  "map_grid_folder": ("tfjpeg.analysis.grid_maps", "map_folder"),
  # Pillow-exact resizing and scipy-exact blurring (tfjpeg.codec.resample).
  "resize": ("tfjpeg.codec.resample", "resize"),
  "resize_by": ("tfjpeg.codec.resample", "resize_by"),
  "gaussian_blur": ("tfjpeg.codec.resample", "gaussian_blur"),
  # Processing chains: parsed (tfjpeg.codec.chain_syntax), applied (tfjpeg.codec.chain_ops).
  "parse_chain": ("tfjpeg.codec.chain_syntax", "parse"),
  "apply_chain": ("tfjpeg.codec.chain_ops", "apply"),
  # A file's processing from its header (tfjpeg.codec.headers).
  "read_header": ("tfjpeg.codec.headers", "read"),
  # Settings (tfjpeg.config).
  "Config": ("tfjpeg.config", "Config"),
  "make_config": ("tfjpeg.config", "make"),
  "load_preset": ("tfjpeg.config", "load_preset"),
  # Data (tfjpeg.data).
  "Task": ("tfjpeg.data.tasks", "Task"),
  "get_task": ("tfjpeg.data.tasks", "get"),
  "audit_folder": ("tfjpeg.data.audit", "audit_folder"),
  "audit_task": ("tfjpeg.data.audit", "audit_task"),
  # Training and test patches (tfjpeg.pipeline).
  "PipelineConfig": ("tfjpeg.pipeline.input_pipeline", "PipelineConfig"),
  "Condition": ("tfjpeg.pipeline.input_pipeline", "Condition"),
  "train_dataset": ("tfjpeg.pipeline.input_pipeline", "train_dataset"),
  "eval_dataset": ("tfjpeg.pipeline.input_pipeline", "eval_dataset"),
  # Nets (tfjpeg.models).
  "build_net": ("tfjpeg.models.nets", "build"),
  # Training and testing a config (tfjpeg.experiments, tfjpeg.analysis).
  "train_and_evaluate": ("tfjpeg.experiments.run", "train_and_evaluate"),
  "evaluate_run": ("tfjpeg.analysis.evaluation", "evaluate_run"),
  "make_report": ("tfjpeg.analysis.report", "make"),
  # Any detector: files through the conditions, and anyone's scores (tfjpeg.analysis).
  "degrade_folder": ("tfjpeg.analysis.degrade", "degrade"),
  "report_from_scores": ("tfjpeg.analysis.file_report", "from_scores"),
  # Trained models (tfjpeg.serving).
  "load_classifier": ("tfjpeg.serving.classifier", "load"),
  "Preprocessing": ("tfjpeg.serving.classifier", "Preprocessing"),
  "load_run": ("tfjpeg.serving.classifier", "load_run"),
  "export_run": ("tfjpeg.serving.export", "export_run"),
  "predict_files": ("tfjpeg.serving.predict", "run"),
}

__all__ = [  # the names of _EXPORTS (tests/test_api.py checks), and the version
  "Condition",
  "Config",
  "PipelineConfig",
  "Preprocessing",
  "Task",
  "apply_chain",
  "audit_folder",
  "audit_task",
  "build_net",
  "choose_offset",
  "compress",
  "crop",
  "crop_at",
  "decode",
  "decode_crop",
  "decode_image",
  "degrade_folder",
  "encode",
  "estimate_grid",
  "eval_dataset",
  "evaluate_run",
  "export_run",
  "gaussian_blur",
  "get_task",
  "grid_map",
  "load_classifier",
  "load_preset",
  "load_run",
  "make_config",
  "make_report",
  "map_grid_folder",
  "parse_chain",
  "predict_files",
  "random_compress",
  "read_header",
  "realign",
  "report_from_scores",
  "resize",
  "resize_by",
  "train_and_evaluate",
  "train_dataset",
  "__version__",
]


# Subpackages named as modules: `tfjpeg.layers.GridCrop` (Keras layers).
_SUBPACKAGES = ("layers",)


def __getattr__(name):
  """Loads a public name on first use (PEP 562)."""
  if name in _SUBPACKAGES:
    return importlib.import_module(f"tfjpeg.{name}")
  if name not in _EXPORTS:
    raise AttributeError(f"module 'tfjpeg' has no attribute {name!r}")
  module, attribute = _EXPORTS[name]
  value = getattr(importlib.import_module(module), attribute)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS) | set(_SUBPACKAGES))


if TYPE_CHECKING:  # what type checkers and the API reference see
  from tfjpeg.analysis.degrade import degrade as degrade_folder
  from tfjpeg.analysis.evaluation import evaluate_run
  from tfjpeg.analysis.file_report import from_scores as report_from_scores
  from tfjpeg.analysis.grid_maps import map_folder as map_grid_folder
  from tfjpeg.analysis.report import make as make_report
  from tfjpeg.codec.chain_ops import apply as apply_chain
  from tfjpeg.codec.chain_syntax import parse as parse_chain
  from tfjpeg.codec.crops import choose_offset
  from tfjpeg.codec.crops import crop
  from tfjpeg.codec.crops import crop_at
  from tfjpeg.codec.grid import estimate as estimate_grid
  from tfjpeg.codec.grid import realign
  from tfjpeg.codec.grid_map import grid_map
  from tfjpeg.codec.headers import read as read_header
  from tfjpeg.codec.images import decode as decode_image
  from tfjpeg.codec.jpeg import compress
  from tfjpeg.codec.jpeg import decode
  from tfjpeg.codec.jpeg import decode_crop
  from tfjpeg.codec.jpeg import encode
  from tfjpeg.codec.jpeg import random_compress
  from tfjpeg.codec.resample import gaussian_blur
  from tfjpeg.codec.resample import resize
  from tfjpeg.codec.resample import resize_by
  from tfjpeg.config import Config
  from tfjpeg.config import load_preset
  from tfjpeg.config import make as make_config
  from tfjpeg.data.audit import audit_folder
  from tfjpeg.data.audit import audit_task
  from tfjpeg.data.tasks import Task
  from tfjpeg.data.tasks import get as get_task
  from tfjpeg.experiments.run import train_and_evaluate
  from tfjpeg.models.nets import build as build_net
  from tfjpeg.pipeline.input_pipeline import Condition
  from tfjpeg.pipeline.input_pipeline import PipelineConfig
  from tfjpeg.pipeline.input_pipeline import eval_dataset
  from tfjpeg.pipeline.input_pipeline import train_dataset
  from tfjpeg.serving.classifier import Preprocessing
  from tfjpeg.serving.classifier import load as load_classifier
  from tfjpeg.serving.classifier import load_run
  from tfjpeg.serving.export import export_run
  from tfjpeg.serving.predict import run as predict_files
