"""Shared pytest setup: quiet TensorFlow, and one thread per TensorFlow pool.

The suite runs on two workers (-n 2) on a 2-core machine: TensorFlow's
default pools (a thread per core each, spinning while they wait) would have
each worker's threads fight the other's. One intra-op and one inter-op thread
per process, inherited by the binaries the tests start, keeps the cores busy
with work. Set them yourself to override.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
