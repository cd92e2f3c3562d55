"""Exact JPEG and the pixel-level operations on it: compress and decode
(`jpeg`), aligned and random crops (`crops`), reading any image file
(`images`), the JPEG grid estimator and realigner (`grid`), and header facts
(`headers`: IJG quality, chroma subsampling) without decoding pixels.

May import: tfjpeg.core.
"""
