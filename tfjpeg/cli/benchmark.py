"""Measures the JPEG pipeline against OpenCV, Albumentations and a constant feed.

    tfjpeg-benchmark                       # everything, about 10 minutes on 2 cores
    tfjpeg-benchmark --sections=scale      # the paper's scale only: camera-size photos
    KERAS_BACKEND=jax tfjpeg-benchmark --sections=accelerator   # a GPU's side, no TF needed
    tfjpeg-benchmark --nets=efficientnetb0 --patch_sizes=224 --seconds=5
    tfjpeg-benchmark --sections=grid_map --zero=/path/to/zero   # bin/grid against ZERO's C

(bin/benchmark in a checkout.) Prints patches/s and steps/s, the ratios
against the baselines run in the same process, with the core count, and
names every goal missed. Timing ratios on a shared machine vary by about 20%
from run to run, so a missed goal is reported, not turned into an exit status.
"""

import os

from absl import flags

from tfjpeg import cli

cli.start_tensorflow_quietly()  # before the library, whose sections name the flag's values
from tfjpeg.bench import benchmark  # noqa: E402  pylint: disable=g-import-not-at-top

flags.DEFINE_string(
  "data_dir",
  os.path.join(os.path.expanduser("~"), ".cache", "tfjpeg", "benchmark"),
  "Where the benchmark makes its files (sources/, memory_N/).",
)
flags.DEFINE_list("patch_sizes", ["224", "512"], "Patch sizes for (a)-(c).")
flags.DEFINE_list(
  "nets", ["efficientnetb0", "efficientnetb4", "resnet50", "xception"], "Nets for (d), at 224 px."
)
flags.DEFINE_float("seconds", 10.0, "Duration of each of (a)-(c).")
flags.DEFINE_integer("train_batch", 4, "Batch size for (d).")
flags.DEFINE_integer("train_steps", 12, "Timed steps for (d).")
flags.DEFINE_list(
  "sections",
  list(benchmark.SECTIONS),
  "What to measure: pipeline ((a)-(c): OpenCV, tfjpeg, Albumentations), memory, "
  "training ((d): nets fed by the pipeline), scale ((e)-(g): 3008x2000 JPEGs, "
  "10 patches of 512 with and without a lattice, 1 patch of 224), decode_costs "
  "((k)-(l): the rule for windowed against whole decoding, measured on the scale "
  "section's files), audit ((j): the "
  "shortcut audit's header reading on 10,000 files), chains ((m): a resize-blur-JPEG "
  "training chain against Pillow and scipy), layers ((n): the Keras layers in a tf.data "
  "map against TensorFlow's and Keras's own ops), antialias ((p): a training step of "
  "each --antialias setting against the plain net's), grid_map ((q): bin/grid's map "
  "against NumPy, and ZERO's C with --zero); and, not by "
  "default, accelerator ((h)-(i): each net's training images/s in float32 and "
  "mixed precision, and the host's decode capacity; any Keras backend).",
)
flags.DEFINE_integer("scale_images", 12, "Camera-size sources for the scale section.")
flags.DEFINE_string(
  "sources",
  None,
  "Any folder of JPEGs (camera originals, as the cameras wrote them) as the sources of "
  "the pipeline, training, scale and decode_costs sections, instead of generated ones.",
)
cli.must_exist("sources")
flags.DEFINE_integer(
  "repeats",
  1,
  "Run the scale section's (e) and (f), the chains and the layers sections this many "
  "times; report median ratios.",
)
flags.DEFINE_string(
  "zero",
  None,
  "A built ZERO binary (github.com/tinankh/ZERO): the grid_map section times it on the "
  "same photos, against the goal of five times its speed.",
)
cli.must_exist("zero")
flags.DEFINE_bool(
  "real_photos",
  False,
  "Sources: the never-compressed photos of ../shared/data "
  "(or $TFJPEG_SHARED_DATA) saved as JPEG at QF 95, instead of procedural "
  "scenes; patch sizes must fit the smallest photo.",
)


def main(argv):
  del argv
  f = flags.FLAGS
  report = benchmark.run(
    f.data_dir,
    tuple(int(p) for p in f.patch_sizes),
    tuple(f.nets),
    f.seconds,
    f.train_batch,
    f.train_steps,
    log=lambda text: None,
    real_photos=f.real_photos,
    sections=tuple(f.sections),
    scale_images=f.scale_images,
    rows_log=lambda row: print(row, flush=True),
    sources=f.sources,
    repeats=f.repeats,
    zero=f.zero,
  )
  print(report.text())
  print("goals missed: " + "; ".join(report.failures) if report.failures else "all goals met")


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
