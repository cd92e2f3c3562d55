"""The nets: a registry of names to Keras models taking RGB patches in
0..255, each with its own preprocessing inside; batch-norm re-estimation.

May import: tfjpeg.core and the layers below it.
"""
