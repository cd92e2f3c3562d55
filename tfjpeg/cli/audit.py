"""Shortcut audit: do a dataset's files give the class away by how they were saved?

    tfjpeg-audit --images=DIR --out=audits/DIR     # DIR/<class>/<images>, headers only
    tfjpeg-audit --task=generated_confounded --out=audits/confounded
    tfjpeg-audit --task=folder --data_dir=DIR --out=a   # with the folder task's splits
    tfjpeg-audit --images=DIR --out=a --grids           # also: where the JPEG grid breaks

(bin/audit in a checkout.) Reads every file's header (format, JPEG quality
from the quantisation tables, subsampling, progressive coding, size, bit
depth, colour mode, EXIF, ICC; no pixel is decoded), cross-validates a
metadata-only classifier by source image, and writes OUT/audit.html (a
verdict in plain words first) with its tables as CSV. A registered task is
audited per split, a TFDS task from its stored file bytes. --grids also
maps every image's JPEG grid (decoding it) and counts per class the images
holding a region on another grid or without the main grid.
"""

from absl import flags

from tfjpeg import cli
from tfjpeg import config as config_lib

flags.DEFINE_string("images", None, "A folder DIR/<class>/<images>: every file's header.")
cli.must_exist("images")
flags.DEFINE_string("task", None, "Or a registered task (see tfjpeg.data.tasks).")
flags.DEFINE_string("data_dir", None, "The task's data directory, if it needs one.")
flags.DEFINE_string("out", None, "Folder for audit.html and its tables.", required=True)
flags.DEFINE_integer("workers", 8, "Threads reading headers.")
flags.DEFINE_integer("seed", 0, "Seed of the cross-validation folds and the bootstrap.")
flags.DEFINE_bool(
  "grids",
  False,
  "Also map every image's JPEG grid (bin/grid, decoding each file) and count per class "
  "the images where it breaks: splices, or generated regions pasted into photos.",
)
flags.register_validator(
  "images", lambda v: bool(v) != bool(flags.FLAGS.task), "give --images=DIR or --task=NAME"
)


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.data import audit  # pylint: disable=g-import-not-at-top
  from tfjpeg.data import tasks  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS
  if f.images:
    result = audit.audit_folder(f.images, workers=f.workers, seed=f.seed, grids=f.grids)
  else:
    task = tasks.get(config_lib.TaskConfig(name=f.task, data_dir=f.data_dir))
    result = audit.audit_task(task, workers=f.workers, seed=f.seed, grids=f.grids)
  page = audit.write(result, f.out)
  for line in result.verdict:
    print(line)
  print(f"wrote {page}")


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
