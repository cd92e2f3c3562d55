"""Saves a picture of a task's examples (and their high-pass residuals).

    tfjpeg-show_task --task=cameras --out=docs/cameras.png

(bin/show_task in a checkout.)
"""

from absl import flags

from tfjpeg import cli
from tfjpeg import config as config_lib

flags.DEFINE_string("task", "cameras", "Task name.")
flags.DEFINE_string("data_dir", None, "Data directory, for tasks that need one.")
flags.DEFINE_integer("per_class", 3, "Examples per class.")
flags.DEFINE_string("out", None, "PNG path.", required=True)


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.analysis import plotting  # pylint: disable=g-import-not-at-top
  from tfjpeg.data import tasks  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS
  task = tasks.get(config_lib.TaskConfig(name=f.task, data_dir=f.data_dir))
  print(plotting.task_examples(tasks.examples(task, f.per_class), f.out))


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
