"""The data cache: generated datasets, prepared real photos and lattice images,
each built once into a folder named by what made it."""

import hashlib
import json
import os
import pathlib
import shutil
import tempfile


def cache_root():
  """Where generated data lives: $TFJPEG_CACHE, else ~/.cache/tfjpeg."""
  return pathlib.Path(os.environ.get("TFJPEG_CACHE", pathlib.Path.home() / ".cache" / "tfjpeg"))


def build_once(root, prefix, spec, write, log=None):
  """`root/<prefix>-<hash of spec>`, made by `write(folder)` unless it exists.

  Generation goes to a temporary folder renamed into place when complete, so an
  interrupted generation never leaves a half-written dataset behind.
  """
  digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
  target = pathlib.Path(root) / f"{prefix}-{digest}"
  if (target / "spec.json").exists():
    return target
  if log:
    log(f"generating {prefix} into {target} (once)")
  target.parent.mkdir(parents=True, exist_ok=True)
  staging = pathlib.Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{prefix}-"))
  try:
    write(staging)
    (staging / "spec.json").write_text(json.dumps(spec, indent=1, sort_keys=True))
    try:
      staging.rename(target)
    except OSError:  # another process finished first
      if not (target / "spec.json").exists():
        raise
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return target
