"""Runs a tf.data service server: the dispatcher, or a worker that does the
JPEG work of `tfjpeg-train --data_service=grpc://DISPATCHER:PORT`.

    tfjpeg-data_service --role=dispatcher --port=5050
    tfjpeg-data_service --role=worker --dispatcher=HOST:5050 [--port=5051]

(bin/data_service in a checkout.) What a cluster job runs: one dispatcher, and
workers on as many hosts' cores as the input needs; training jobs read from
the dispatcher, each epoch split across the workers so every image is seen
once. The server runs until the process is stopped.
"""

from absl import flags

from tfjpeg import cli

flags.DEFINE_enum("role", None, ["dispatcher", "worker"], "Which server.", required=True)
flags.DEFINE_integer("port", 0, "Port to listen on (0: any free one, printed).")
flags.DEFINE_string("dispatcher", None, "Workers: the dispatcher's host:port.")
flags.DEFINE_string(
  "worker_address",
  "localhost",
  "Workers: the host name the dispatcher and training jobs reach this worker by.",
)
flags.register_validator(
  "dispatcher", lambda v: v or flags.FLAGS.role != "worker", "a worker needs --dispatcher=HOST:PORT"
)


def main(argv):
  # The library after the flags: TensorFlow starts only for a valid command.
  from tfjpeg.pipeline import input_pipeline  # pylint: disable=g-import-not-at-top

  del argv
  f = flags.FLAGS
  input_pipeline.serve(
    f.role, f.port, f.dispatcher, f.worker_address, log=lambda line: print(line, flush=True)
  )


def run():
  cli.run(main, __name__)


if __name__ == "__main__":
  run()
