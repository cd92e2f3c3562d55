"""bin/benchmark: speed as ratios against baselines run in the same process.

May import: every layer but tfjpeg.cli.
"""
