"""Saves a picture of a task's examples (and their high-pass residuals).

    tfjpeg-show_task --task=cameras --out=docs/cameras.png

(bin/show_task in a checkout.)
"""

from absl import flags

from tfjpeg import cli  # first: TensorFlow starts quietly
from tfjpeg.analysis import plotting
from tfjpeg.data import tasks

flags.DEFINE_string("task", "cameras", "Task name.")
flags.DEFINE_string("data_dir", None, "Data directory, for tasks that need one.")
flags.DEFINE_integer("per_class", 3, "Examples per class.")
flags.DEFINE_string("out", None, "PNG path.", required=True)


def main(argv):
  del argv
  f = flags.FLAGS
  task = tasks.get(f.task, tasks.TaskOptions(data_dir=f.data_dir))
  print(plotting.task_examples(tasks.examples(task, f.per_class), f.out))


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
