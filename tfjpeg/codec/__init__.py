"""Exact JPEG and the pixel-level operations on it: compress and decode
(`jpeg`), aligned and random crops (`crops`), reading any image file
(`images`), the JPEG grid estimator and realigner (`grid`), the local grid
map of where the grid breaks (`grid_map`, over `grid_votes`, `grid_lattice`,
`grid_regions` and the a-contrario tests of `nfa`), and header facts
(`headers`: IJG quality, chroma subsampling) without decoding pixels.

May import: tfjpeg.core.
"""
