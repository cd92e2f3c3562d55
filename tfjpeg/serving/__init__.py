"""Trained models out of the project and back: SavedModel export with
the evaluation's preprocessing, loading any classifier, predicting on files.

May import: the layers below, up to tfjpeg.train.
"""
