"""Shared helpers with no knowledge of JPEG or tasks: stateless seeds,
progress bars, the run directory lock, metrics on labels and scores, the HTML
page head the reports share.

May import: nothing of tfjpeg (the bottom layer).
"""
