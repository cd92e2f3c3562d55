"""Accuracy of blind JPEG-grid estimation on real photos, by QF, at all 64 offsets;
or, with --splices, how many splices bin/grid's map finds (and ZERO's C).

    tfjpeg-grid_accuracy --photos=../shared/data      # Kodak and McMaster, as in the README
    tfjpeg-grid_accuracy --photos=../shared/data --splices=30 [--zero=/path/to/zero]

(bin/grid_accuracy in a checkout.) --splices=N builds N images of each kind
(a block of another JPEG on another grid, the same saved again at QF 90-95,
a never-compressed block, an untouched JPEG) on the photos saved at QF 70-95
and on crops of the camera originals in ../shared/data/camera_jpegs, and
counts the blocks found (box IoU 0.5 or more) and the false regions; see
the docs page "Where the grid breaks".
"""

from absl import flags

from tfjpeg import cli

flags.DEFINE_string(
  "photos", None, "Folder of never-compressed photos (searched recursively).", required=True
)
cli.must_exist("photos")
flags.DEFINE_list("qualities", ["50", "60", "70", "80", "90", "95", "98", "100"], "QFs.")
flags.DEFINE_integer("crop", 256, "Crop side.")
flags.DEFINE_enum("chroma", "4:2:0", ["4:2:0", "4:4:4"], "Chroma subsampling.")
flags.DEFINE_integer(
  "splices", 0, "Score bin/grid's map on this many splices of each kind instead."
)
flags.DEFINE_list("hosts", ["photos", "camera"], "Splice hosts: photos (Kodak, McMaster), camera.")
flags.DEFINE_string(
  "zero", None, "A built ZERO binary (tinankh/ZERO) to score on the same splices."
)
cli.must_exist("zero")
flags.register_validator(
  "hosts", lambda v: set(v) <= {"photos", "camera"}, "hosts are photos and/or camera"
)
flags.DEFINE_integer("seed", 0, "Seed of the splices.")
flags.DEFINE_string("cases", None, "With --splices: also write every image's outcome to this CSV.")


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.codec import grid  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS
  if f.splices:
    splices_main(f)
    return
  count, table = grid.accuracy_on_folder(f.photos, [int(q) for q in f.qualities], f.crop, f.chroma)
  print(f"{count} photos, {f.crop}x{f.crop} crops at all 64 offsets, {f.chroma}")
  print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def splices_main(f):
  from tfjpeg.analysis import splices  # pylint: disable=g-import-not-at-top

  cases, summary = splices.evaluate(f.photos, f.splices, f.hosts, f.seed, f.zero)
  if f.cases:
    cases.to_csv(f.cases, index=False)
  print(f"{f.splices} splices of each kind, found at box IoU >= {splices.FOUND_IOU}")
  print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
