"""Where the JPEG grid breaks: a local grid map of each photo.

    tfjpeg-grid suspect.png --out=grids/suspect     # one photo
    tfjpeg-grid photos/ --out=grids/photos          # every image below a folder

(bin/grid in a checkout.) Each image gets, in --out, a JSON named after it
(the main grid, its log10 NFA, the regions: kind foreign or missing, box
[y0, x0, y1, x1] with ends exclusive, grid [dy, dx], log10 NFA), its mask
PNG and its coloured vote map; grid.csv has one line per image with its
verdict in words, and grid.html shows the flagged images first. See the
docs page "Where the grid breaks".
"""

import os

from absl import app
from absl import flags

from tfjpeg import cli
from tfjpeg.core.errors import MissingError

flags.DEFINE_string("out", None, "Folder for the maps, grid.csv and grid.html.", required=True)


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("name one image file or folder")
  if not os.path.exists(argv[1]):
    raise MissingError(f"no file or folder at {argv[1]}")
  # The library after the checks: TensorFlow starts only for a valid command.
  from tfjpeg.analysis import grid_maps  # pylint: disable=g-import-not-at-top

  table = grid_maps.map_folder(argv[1], flags.FLAGS.out)
  for line in grid_maps.summary_lines(table):
    print(line)
  for row in table[table["status"] == "flagged"].itertuples():
    print(f"{row.file}: {row.verdict}")
  print(f"wrote {flags.FLAGS.out}/{grid_maps.PAGE}")


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
