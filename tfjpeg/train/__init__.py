"""Training: the paper's schedule (resumable, checkpoints written whole),
the reference baseline loop, distribution, preemption, the run directory.

May import: tfjpeg.core, codec, config, data, pipeline, models.
"""
