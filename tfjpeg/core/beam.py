"""Runners of `bin/degrade` and `bin/predict`: this machine's cores, or
Apache Beam (an optional extra: `pip install -e '.[beam]'`).

`options` turns `--beam_options` into Beam's `PipelineOptions`: by default
Beam's local runner in multi-process mode, one worker process per core;
any of Beam's runners by their own flags (`--runner=FlinkRunner
--flink_master=...`, `--runner=SparkRunner ...`, `--runner=DataflowRunner
--project=... --region=... --temp_location=gs://...`). Nothing here imports
Beam or TensorFlow until a pipeline is built.
"""

import shlex
from collections.abc import Sequence
from typing import Any

from tfjpeg.core.errors import ConfigError

RUNNERS = ("local", "beam")
INSTALL = "pip install -e '.[beam]'"
# Beam's local runner, one process per core: what `--runner=beam` means
# without `--beam_options`.
LOCAL = (
  "--runner=DirectRunner",
  "--direct_running_mode=multi_processing",
  "--direct_num_workers=0",
)


def check_runner(runner: str) -> str:
  """`runner` if it is one of `RUNNERS` and can run here; else one line
  saying what to give or what to install (`ConfigError`)."""
  if runner not in RUNNERS:
    raise ConfigError(f"runner must be one of {', '.join(RUNNERS)}, got {runner!r}")
  if runner == "beam" and not available():
    raise ConfigError(f"--runner=beam needs Apache Beam, which is not installed: {INSTALL}")
  return runner


def available() -> bool:
  """Whether Apache Beam can be imported, without importing it."""
  import importlib.util  # pylint: disable=g-import-not-at-top

  return importlib.util.find_spec("apache_beam") is not None


def options(beam_options: str | Sequence[str] | None = None) -> Any:
  """Beam's `PipelineOptions` from `--beam_options` (one string of flags, or
  a list of them); Beam's local multi-process runner by default, whose
  settings a flag given here overrides."""
  check_runner("beam")
  import logging  # pylint: disable=g-import-not-at-top

  # Beam's import warns about Google Cloud clients nobody asked for.
  quiet = logging.getLogger().level
  logging.getLogger().setLevel(logging.ERROR)
  try:
    import apache_beam  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
  finally:
    logging.getLogger().setLevel(quiet)
  given = shlex.split(beam_options) if isinstance(beam_options, str) else list(beam_options or ())
  named = {flag.split("=")[0] for flag in given}
  defaults = [flag for flag in LOCAL if flag.split("=")[0] not in named]
  if "--runner" in named and not any(f.startswith("--runner=DirectRunner") for f in given):
    defaults = []  # another runner: none of the local runner's settings
  return pipeline_options.PipelineOptions(defaults + given)
