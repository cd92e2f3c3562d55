"""What a trained net does under JPEG: evaluation under test conditions,
per-offset sweeps, the robustness report, study tables, bin/grid's maps of
files and the splices they are scored on; plotting is a leaf.

May import: the layers below, up to tfjpeg.serving.
"""
