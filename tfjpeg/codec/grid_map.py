"""Where the JPEG grid breaks: a local grid map of one photo, on the graph.

`grid_map(image)` says which JPEG grid each part of a decoded image lies on,
and where that grid changes (a block pasted from another JPEG, on its own
grid: "foreign") or is absent (content never compressed inside a JPEG
photo, pasted from a PNG or filled by a generator: "missing"). Three kinds
of evidence, each an a-contrario test (`tfjpeg.codec.nfa`) whose number of
tests is ZERO's times 3, one for each kind:

1. zeros: ZERO's votes (`grid_votes`); regions voting for a grid other than
   the main one, at ZERO's chance rate 1/64. ZERO's foreign-grid detection.
2. resaved: each pixel's best window off the main grid, with a zero widened
   to |c| < `RESAVE_ZERO`, which a second compression leaves on a spliced
   block's own grid after it has blurred the exact zeros away. Grids next to
   the main one win such votes more often than 1/64 (a window one pixel off
   keeps most of a block), so chance is each grid's share of the votes
   outside the region, and the number of tests is 100 times more, the
   margin for a rate that is estimated. Bianchi and Piva's non-aligned
   double compression, read as votes.
3. lattice: blocks of the main grid whose coefficients are off its
   quantisation lattice (`grid_lattice`): the main grid's absence, at the
   image's own rate of off blocks (at least 1/64). Farid's ghosts and the
   aligned double-compression trace, read as a lattice.

A missing region overlapping a foreign one is the foreign block's own trace
(it is off the main lattice too) and is dropped; of overlapping foreign
regions the one of lower NFA stays. A missing region whose second-grid votes
favour one grid meaningfully is that grid's foreign block, saved again. A
region covering more than half the photo is a second grid of the whole
photo, not a region (`grid_log_nfa` shows every meaningful grid).
"""

from typing import Any

import numpy as np
import tensorflow as tf

from tfjpeg.codec import grid_lattice
from tfjpeg.codec import grid_regions
from tfjpeg.codec import grid_votes
from tfjpeg.codec import nfa

TensorLike = Any

FOREIGN, MISSING = 0, 1
KINDS = ("foreign", "missing")
EVIDENCE = ("zeros", "resaved", "lattice")
RESAVE_ZERO = 2.0  # the widened zero of the "resaved" evidence
LATTICE_VOTE = 1.0  # log10 likelihood ratio a block needs to vote either way
AGREE = 0.25  # share of a block's pixels voting the main grid to read steps from it
MAX_REGIONS = 8
MIN_SIDE = 16  # smaller images hold no 8x8 window of every phase
OVERLAP = 0.5  # of the smaller box: two regions this close are one
# log10 of the margin on tests whose chance rate is estimated from the photo
# itself (the second-grid votes), not known as ZERO's 1/64 is.
ESTIMATED = 2.0
_PADDING = {"box": 0, "log_nfa": float("inf"), "grid": -1, "kind": -1, "evidence": -1, "source": -1}


def _main_grid(votes, log_tests):
  """ZERO's global test: each grid's votes / 64 among H W / 64, at p = 1/64."""
  counts = tf.math.bincount(
    tf.boolean_mask(votes, votes >= 0), minlength=64, maxlength=64, dtype=tf.int32
  )
  height, width = tf.shape(votes)[0], tf.shape(votes)[1]
  log_nfa = nfa.log10_nfa(height * width // 64, counts // 64, log_tests)
  best = tf.argmax(counts, output_type=tf.int32)  # the lowest grid among ties
  return tf.where(log_nfa[best] < 0.0, best, -1), log_nfa


def _area(boxes):
  return tf.cast((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]), tf.float64)


def _overlaps(boxes):
  """[n, n] intersection over the smaller area of every pair of boxes [n, 4]."""
  a, b = boxes[:, None, :], boxes[None, :, :]
  height = tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0])
  width = tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1])
  inter = tf.cast(tf.maximum(height, 0) * tf.maximum(width, 0), tf.float64)
  smaller = tf.minimum(_area(boxes)[:, None], _area(boxes)[None, :])
  return inter / tf.maximum(smaller, 1.0)


def _merge(found):
  """One list of every evidence's candidates, overlaps removed, best NFA
  first, padded to MAX_REGIONS (kind -1).

  Foreign candidates are taken first (lowest NFA first), then missing ones;
  a candidate overlapping a kept one by OVERLAP of the smaller box is dropped.
  """
  fields = {
    "box": tf.concat([c.box for c, _, _ in found], 0),
    "log_nfa": tf.concat([c.log_nfa for c, _, _ in found], 0),
    "grid": tf.concat([c.grid for c, _, _ in found], 0),
    "kind": tf.concat([tf.fill(tf.shape(c.grid), kind) for c, kind, _ in found], 0),
    "evidence": tf.concat([tf.fill(tf.shape(c.grid), e) for c, _, e in found], 0),
    "source": tf.concat([tf.range(tf.shape(c.grid)[0]) for c, _, _ in found], 0),
  }
  log_nfa = fields["log_nfa"]
  total = int(log_nfa.shape[0])
  order = tf.argsort(tf.cast(fields["kind"], tf.float64) * 1e6 + tf.minimum(log_nfa, 1e5))
  close = _overlaps(fields["box"]) > OVERLAP

  def take(step, kept):
    candidate = order[step]
    clear = tf.logical_not(tf.reduce_any(close[candidate] & kept))
    chosen = (log_nfa[candidate] < 0.0) & clear
    return step + 1, kept | (chosen & tf.equal(tf.range(total), candidate))

  _, kept = tf.while_loop(lambda step, kept: step < total, take, (0, tf.zeros([total], tf.bool)))
  ranked = tf.argsort(tf.where(kept, tf.minimum(log_nfa, 1e5), 1e6))[:MAX_REGIONS]
  valid = tf.gather(kept, ranked)
  merged = {}
  for key, values in fields.items():
    values = tf.gather(values, ranked)
    mask = valid[:, None] if values.shape.rank == 2 else valid
    merged[key] = tf.where(mask, values, tf.cast(_PADDING[key], values.dtype))
  return merged


def _name_grids(regions, resaved, main, shares):
  """Kinds and grids of the merged regions, missing ones renamed foreign when
  one grid's second-grid votes in the box are meaningful at that grid's share
  of the image (63 grids tested): a splice saved again lacks the main grid's
  first lattice and keeps a trace of its own grid."""

  def counts(box):
    part = resaved[box[0] : box[2], box[1] : box[3]]
    return tf.math.bincount(
      tf.boolean_mask(part, part >= 0), minlength=64, maxlength=64, dtype=tf.int32
    )

  per_box = tf.map_fn(counts, regions["box"], fn_output_signature=tf.int32)  # [regions, 64]
  per_box = tf.where(tf.equal(tf.range(64), main)[None, :], 0, per_box)
  best = tf.argmax(per_box, axis=1, output_type=tf.int32)
  votes = tf.gather(per_box, best, batch_dims=1)
  area = tf.cast(_area(regions["box"]), tf.int32)
  score = nfa.log10_nfa(area // 64, votes // 64, float(np.log10(63.0)), tf.gather(shares, best))
  rename = (score < 0.0) & tf.equal(regions["kind"], MISSING)
  return tf.where(rename, FOREIGN, regions["kind"]), tf.where(rename, best, regions["grid"])


def _resaved_chance(resaved, main):
  """Each grid's chance rate for the second-grid votes, at least 1/64.

  Grids next to the main one (a pixel off on either axis) win such votes
  from the main grid's own blocks, in smooth areas more than elsewhere: their
  rate is their share of the whole image at least. Other grids' rate leaves
  out the cells they dominate, so that a large spliced block does not raise
  its own grid's chance.
  """
  counts = grid_regions.cell_counts(resaved)
  whole = tf.cast(tf.reduce_sum(counts, axis=[0, 1]), tf.float64)
  whole /= tf.maximum(tf.reduce_sum(whole), 1.0)
  grids = tf.range(64)
  step_y = tf.abs((grids // 8 - main // 8 + 4) % 8 - 4)
  step_x = tf.abs((grids % 8 - main % 8 + 4) % 8 - 4)
  beside = (tf.maximum(step_y, step_x) == 1) & (main >= 0)
  background = grid_regions.background_shares(counts)
  return tf.maximum(tf.where(beside, tf.maximum(background, whole), background), 1.0 / 64.0)


def _share_voting(votes, grid, origin, blocks):
  """Per block of the grid at `origin`, the share of its pixels voting `grid`."""
  part = tf.cast(tf.equal(votes, grid), tf.float32)[origin[0] :, origin[1] :]
  part = part[: blocks[0] * 8, : blocks[1] * 8]
  return tf.nn.avg_pool2d(part[None, :, :, None], 8, 8, "VALID")[0, :, :, 0]


def _cells_to_pixels(cells, origin, height, width):
  """[h, w] values of 8x8 cells from `origin` to [H, W], -1 outside them."""
  pixels = tf.repeat(tf.repeat(cells, 8, axis=0), 8, axis=1)
  after = tf.maximum(tf.stack([height, width]) - origin - tf.shape(pixels), 0)
  pixels = tf.pad(pixels, [[origin[0], after[0]], [origin[1], after[1]]], constant_values=-1)
  return pixels[:height, :width]


def _region_mask(found, merged, origin, height, width):
  """[H, W]: the merged region each pixel lies in (its cells or blocks), -1 for none."""
  mask = -tf.ones([height, width], tf.int32)
  for candidates, kind, evidence in found:
    # Which merged region each of this evidence's candidates became, or -1.
    became = tf.reduce_max(
      tf.where(
        tf.equal(merged["evidence"], evidence)[None, :]
        & tf.equal(merged["source"][None, :], tf.range(MAX_REGIONS)[:, None]),
        tf.range(MAX_REGIONS)[None, :],
        -1,
      ),
      axis=1,
    )
    cells = tf.where(candidates.cells >= 0, tf.gather(became, tf.maximum(candidates.cells, 0)), -1)
    cell_origin = origin if kind == MISSING else tf.zeros([2], tf.int32)
    pixels = _cells_to_pixels(cells, cell_origin, height, width)
    mask = tf.where(mask < 0, pixels, mask)
  return mask


def _lattice_regions(image, luma, constant, votes, main, log_tests):
  """Missing regions: blocks of the main grid off its estimated lattice."""
  origin = tf.where(main >= 0, tf.stack([main // 8, main % 8]), [0, 0])
  blocks = grid_lattice.block_coefficients(luma, origin)
  shape = tf.shape(blocks)[:2]
  # Clipped blocks, and blocks constant along rows or columns (whose rounding
  # errors add up along the constant axis), are off the lattice by nature.
  flat = constant[origin[0] :: 8, origin[1] :: 8][: shape[0], : shape[1]]
  usable = tf.logical_not(grid_lattice.clipped_blocks(image, origin) | flat)
  # The steps are read where the zeros agree with the main grid: a large
  # never-compressed region would otherwise blur the lattice it is tested on.
  agree = _share_voting(votes, main, origin, shape) >= AGREE
  steps = grid_lattice.estimate_steps(blocks, usable & agree)
  evidence = grid_lattice.block_evidence(blocks, steps)
  usable &= main >= 0  # without a main grid every block stays silent
  off = usable & (evidence > LATTICE_VOTE)
  voting = usable & (tf.abs(evidence) > LATTICE_VOTE)
  regions = grid_regions.block_regions(off, voting, origin, log_tests, MAX_REGIONS)
  return regions, tf.where(main >= 0, steps, 0.0), origin


def _one(image):
  image = tf.ensure_shape(tf.convert_to_tensor(image), [None, None, None])
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  tf.debugging.assert_greater_equal(
    tf.minimum(height, width), MIN_SIDE, message="grid_map needs an image of 16x16 or more"
  )
  log_tests = nfa.log10_tests(height, width)
  luma = grid_votes.luminance(image)
  scores = grid_votes.window_scores(luma, (0.5, RESAVE_ZERO))
  constant = grid_votes.constant_windows(luma)
  votes = grid_votes.votes_from_scores(scores[..., 0], constant)
  main, grid_log_nfa = _main_grid(votes, log_tests)
  resaved = grid_votes.votes_from_scores(scores[..., 1], constant, exclude=main)
  shares = _resaved_chance(resaved, main)
  kind_tests = log_tests + float(np.log10(len(EVIDENCE)))
  lattice, steps, origin = _lattice_regions(image, luma, constant, votes, main, kind_tests)
  found = [
    (grid_regions.vote_regions(votes, main, kind_tests, MAX_REGIONS), FOREIGN, 0),
    (
      grid_regions.vote_regions(resaved, main, kind_tests + ESTIMATED, MAX_REGIONS, "rest"),
      FOREIGN,
      1,
    ),
    (lattice, MISSING, 2),
  ]
  merged = _merge(found)
  kind, grid = _name_grids(merged, resaved, main, shares)
  grid_pairs = tf.where(grid[:, None] >= 0, tf.stack([grid // 8, grid % 8], -1), -1)
  return {
    "votes": votes,
    "main_grid": tf.where(main >= 0, tf.stack([main // 8, main % 8]), [-1, -1]),
    "main_log_nfa": tf.where(main >= 0, grid_log_nfa[tf.maximum(main, 0)], float("inf")),
    "grid_log_nfa": tf.reshape(grid_log_nfa, [8, 8]),
    "steps": tf.reshape(steps, [8, 8]),
    "region_count": tf.reduce_sum(tf.cast(kind >= 0, tf.int32)),
    "region_kind": kind,
    "region_evidence": merged["evidence"],
    "region_box": merged["box"],
    "region_grid": grid_pairs,
    "region_log_nfa": merged["log_nfa"],
    "region_mask": _region_mask(found, merged, origin, height, width),
  }


_SIGNATURE = {
  "votes": tf.int32, "main_grid": tf.int32, "main_log_nfa": tf.float64,
  "grid_log_nfa": tf.float64, "steps": tf.float64, "region_count": tf.int32,
  "region_kind": tf.int32, "region_evidence": tf.int32, "region_box": tf.int32,
  "region_grid": tf.int32, "region_log_nfa": tf.float64, "region_mask": tf.int32,
}  # fmt: skip


_TRACED: list = []


def traced() -> Any:
  """`grid_map` as one `tf.function` for one RGB image of any size (uint8
  [None, None, 3]), traced once per process and shared by bin/grid, the
  audit and the report: tracing costs seconds, a map of a photo a fraction."""
  if not _TRACED:
    _TRACED.append(
      tf.function(
        grid_map,
        input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)],
        autograph=False,  # no Python control flow on tensors here: a third of the tracing
      )
    )
  return _TRACED[0]


def grid_map(image: TensorLike) -> dict[str, tf.Tensor]:
  """The local JPEG-grid map of a decoded image, or of a batch of equal-sized ones.

  Args:
    image: uint8 RGB [H, W, 3] (or [H, W, 1] luminance), at least 16x16, or a
      batch [B, H, W, C]; decoded pixels, as `tfjpeg.decode_image` gives them.

  Returns:
    A dict of tensors (with a leading batch axis for a batch):
      votes [H, W] int32: ZERO's per-pixel vote, dy * 8 + dx, -1 for none;
      main_grid [2] int32: the main grid's origin (dy, dx), (-1, -1) when no
        grid is meaningful; main_log_nfa: its log10 NFA (+inf when none);
      grid_log_nfa [8, 8]: every grid's log10 NFA, meaningful below 0;
      steps [8, 8]: the quantisation steps estimated on the main grid (0 unknown);
      region_count: how many regions; then, padded to MAX_REGIONS, best first:
      region_kind (0 foreign, 1 missing, -1 padding), region_evidence (index of
      EVIDENCE), region_box (y0, x0, y1, x1, ends exclusive), region_grid
      (dy, dx; -1 for missing), region_log_nfa; region_mask [H, W] int32: the
      index of the region each pixel lies in, -1 for none.

  Examples:
    >>> photo = np.random.default_rng(0).integers(0, 256, (96, 96, 3), np.uint8)
    >>> result = tfjpeg.grid_map(tfjpeg.compress(photo, 75)[3:, 5:])
    >>> [int(v) for v in result["main_grid"]], int(result["region_count"])
    ([5, 3], 0)
  """
  image = tf.convert_to_tensor(image)
  if image.shape.rank == 4:
    spec = {key: tf.TensorSpec(None, dtype) for key, dtype in _SIGNATURE.items()}
    return tf.map_fn(_one, image, fn_output_signature=spec)
  return _one(image)
