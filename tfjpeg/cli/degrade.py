"""Writes a labelled folder through the report's conditions as image files,
for any detector in any framework to score.

    tfjpeg-degrade --images=labelled/ --out=degraded/
    tfjpeg-degrade --images=labelled/ --out=degraded/ --chains=aigenbench2025 --only_chains
    tfjpeg-degrade --images=labelled/ --out=degraded/ --runner=beam     # on Apache Beam
    tfjpeg-predict --model=detector.onnx --input=resize ... degraded/ --out=scores.csv
    tfjpeg-report --scores=scores.csv --degraded=degraded/ --out=report/

(bin/degrade in a checkout.) OUT/<condition>/<class>/... holds each image as
stored, saved at each test QF, swapped, at the common QF, through the resize
x QF grid and through the protocols (--chains): the last save's JPEG bytes,
else lossless PNG, else the file as stored. OUT/manifest.csv lists every file
with its SHA-256; OUT/chain_draws.csv what each chain drew for each image.
The same seed writes the same bytes.
"""

from absl import flags

from tfjpeg import cli

flags.DEFINE_string("images", None, "Labelled images: DIR/<class>/...", required=True)
cli.must_exist("images")
flags.DEFINE_string("out", None, "Folder for the degraded files.", required=True)
flags.DEFINE_list("class_names", None, "Class order (default: the folders', sorted).")
flags.DEFINE_integer("seed", 0, "Seed of every draw (chains, swap).")
flags.DEFINE_enum("chroma", "4:2:0", ["4:2:0", "4:4:4"], "Chroma of the test-QF saves.")
flags.DEFINE_list("test_qfs", None, "QFs each image is saved at (default: 99,95,90,80,70,60,50).")
flags.DEFINE_list("resize_factors", None, "Resize factors (default: 0.25,0.5,0.75,1,1.5,2).")
flags.DEFINE_list(
  "resize_qfs", None, "QFs after resizing, none = not saved (default: none,90,75,50)."
)
flags.DEFINE_list("chains", None, "Chains or protocols (default: corvi2023).")
flags.DEFINE_bool("only_chains", False, "Write only --chains (no QF, swap or resize grid).")
cli.define_runner_flags("the writing")


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.analysis import degrade  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS
  grids = cli.condition_grids(f.test_qfs, f.resize_factors, f.resize_qfs, f.chains)
  summary = degrade.degrade(
    f.images,
    f.out,
    seed=f.seed,
    chroma=f.chroma,
    qualities=grids["qualities"],
    resize_factors=grids["resize_factors"],
    resize_qualities=grids["resize_qualities"],
    chains=grids["test_chains"],
    class_names=f.class_names,
    only_chains=f.only_chains,
    runner=f.runner,
    beam_options=f.beam_options,
  )
  print(
    f"wrote {summary['files']} files ({summary['bytes'] / 2**20:.1f} MiB) of "
    f"{summary['images']} images under {summary['conditions']} conditions to {f.out}"
  )
  if summary["bad"]:
    print(f"{summary['bad']} files could not be read: {f.out}/bad_files.csv names each problem")


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
