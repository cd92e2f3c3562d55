"""The input pipeline on tf.data: images of a task to training and test
patches under the study's JPEG conditions, on the graph.

May import: tfjpeg.core, tfjpeg.codec, tfjpeg.config, tfjpeg.data.
"""
