"""Accuracy of blind JPEG-grid estimation on real photos, by QF, at all 64 offsets.

    tfjpeg-grid_accuracy --photos=../shared/data      # Kodak and McMaster, as in the README

(bin/grid_accuracy in a checkout.)
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


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.codec import grid  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS
  count, table = grid.accuracy_on_folder(f.photos, [int(q) for q in f.qualities], f.crop, f.chroma)
  print(f"{count} photos, {f.crop}x{f.crop} crops at all 64 offsets, {f.chroma}")
  print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
