"""Whole experiments: one run trained then tested
(`run.train_and_evaluate`), and grids of runs (`study`).

May import: the layers below, up to tfjpeg.analysis.
"""
