"""Regions of votes: connected cells, their boxes and their NFA, on the graph.

ZERO grows regions pixel by pixel, joining votes for one grid that lie within
9 pixels of each other, and keeps a region when its votes are too many for
chance (`tfjpeg.codec.nfa`). Sequential region growing has no graph form, so
tfjpeg joins 8x8 cells instead: a cell belongs to grid g when at least
`MIN_CELL_VOTES` of its pixels vote for g, and cells of one grid that touch
(8-connectivity) form a region; one cell may belong to several grids. Votes in
touching cells lie within 15 pixels of each other, and single stray votes,
which percolate at ZERO's 9 pixels on never-compressed content, seed nothing.
The region's NFA is ZERO's: k = its votes / 64 among n = its bounding box's
pixels / 64, at p = 1/64.

Blocks of the main grid's lattice test (`tfjpeg.codec.grid_lattice`) are
joined the same way, with the image's own share of off-lattice blocks as the
chance rate (at least 1/64).
"""

from typing import Any
from typing import NamedTuple

import tensorflow as tf

from tfjpeg.codec import nfa

TensorLike = Any

MIN_CELL_VOTES = 2
MAX_AREA = 0.5  # of the image: a larger region is a second grid of the whole image
OUTLIER_VOTES = 16  # a grid holding this many of a cell's votes is no background there
GRIDS = 64
JUMPS = 2
CANDIDATES = 16  # grids labelled per evidence: those with the most votes


class Candidates(NamedTuple):
  """Regions found by one kind of evidence, the best `limit` by NFA, padded.

  box: [limit, 4] int32 (y0, x0, y1, x1), ends exclusive; grid: [limit] int32
  (dy * 8 + dx, -1 for none); log_nfa: [limit] float64, +inf where padded;
  cells: [h, w] int32 index of the region each cell belongs to, -1 for none.
  """

  box: tf.Tensor
  grid: tf.Tensor
  log_nfa: tf.Tensor
  cells: tf.Tensor


def cell_counts(votes: TensorLike, cell: int = 8) -> tf.Tensor:
  """Votes per grid in each `cell` x `cell` square, [ceil(H / cell), ceil(W / cell), 64]."""
  votes = tf.convert_to_tensor(votes, tf.int32)
  height, width = tf.shape(votes)[0], tf.shape(votes)[1]
  rows, columns = (height + cell - 1) // cell, (width + cell - 1) // cell
  cell_of = (tf.range(height)[:, None] // cell) * columns + tf.range(width)[None, :] // cell
  voted = votes >= 0
  ids = tf.boolean_mask(cell_of * GRIDS + votes, voted)
  counts = tf.math.bincount(ids, minlength=rows * columns * GRIDS, dtype=tf.int32)
  return tf.reshape(counts[: rows * columns * GRIDS], [rows, columns, GRIDS])


def components(member: TensorLike) -> tf.Tensor:
  """Labels of the 8-connected components of each channel of `member` [h, w, c].

  A member cell's label is the smallest flat cell index (row * w + column) in
  its component of its channel; other cells get -1. Each round, every cell
  hooks the root of its label onto the smallest label among its neighbours
  (a scatter-min), then labels jump to their roots' labels (Shiloach and
  Vishkin's scheme): tens of rounds, where spreading labels one cell a round
  takes as many rounds as a component is long.
  """
  member = tf.convert_to_tensor(member, tf.bool)
  rows, columns, channels = tf.shape(member)[0], tf.shape(member)[1], tf.shape(member)[2]
  size = rows * columns
  index = tf.broadcast_to(tf.reshape(tf.range(size), [rows, columns, 1]), tf.shape(member))
  channel = tf.broadcast_to(tf.range(channels)[None, None, :], tf.shape(member))
  start = tf.where(member, index, size)

  def entry(labels):  # the flat (cell, channel) entry a label names
    return tf.minimum(labels, size - 1) * channels + channel

  def round_(labels):
    # The smallest label among the 3x3 neighbours, as a max-pool of negated
    # labels (whole numbers below 2^24: exact in float32).
    negated = -tf.cast(labels, tf.float32)[None]
    smallest = tf.cast(-tf.nn.max_pool2d(negated, 3, 1, "SAME")[0], tf.int32)
    # Hook: the root each cell's label names takes the smallest neighbouring label.
    flat = tf.reshape(labels, [-1])
    hooks = tf.boolean_mask(
      tf.stack([tf.reshape(entry(labels), [-1]), tf.reshape(smallest, [-1])], -1),
      tf.reshape(member & (smallest < labels), [-1]),
    )
    flat = tf.tensor_scatter_nd_min(flat, hooks[:, :1], hooks[:, 1])
    for _ in range(JUMPS):
      labels = tf.reshape(
        tf.gather(flat, tf.reshape(entry(tf.reshape(flat, tf.shape(labels))), [-1])),
        tf.shape(labels),
      )
      flat = tf.reshape(tf.where(member, labels, size), [-1])
    return tf.reshape(flat, tf.shape(labels))

  def changed(labels, previous):
    return tf.reduce_any(tf.not_equal(labels, previous))

  def body(labels, previous):
    return round_(labels), labels

  labels, _ = tf.while_loop(
    changed, body, (round_(start), start), maximum_iterations=rows + columns + 2
  )
  return tf.ensure_shape(tf.where(member, labels, -1), member.shape)


def _bridged(member: tf.Tensor, barrier: tf.Tensor | None = None) -> tf.Tensor:
  """`member` [h, w, c] grown by one cell (a 3x3 dilation), except into `barrier`:
  regions join across a gap of one or two silent cells, as ZERO's 9 pixels do."""
  grown = tf.nn.max_pool2d(tf.cast(member, tf.float32)[None], 3, 1, "SAME")[0] > 0
  return grown if barrier is None else grown & tf.logical_not(barrier)


def _supported(member: tf.Tensor) -> tf.Tensor:
  """Member cells with at least two member neighbours: a region's cells have
  many, a stray cell of chance seldom more than one; bridging strays would
  carry a region's box across the photo."""
  cells = tf.cast(member, tf.float32)[None]
  around = tf.nn.avg_pool2d(cells, 3, 1, "SAME")[0] * 9.0 - cells[0]
  return member & (around >= 1.5)


def _boxes_and_scores(segment, count, y, x, segments):
  """Per segment: how many pixels (or blocks), and their bounding box."""
  ones = tf.ones_like(segment)
  total = tf.math.unsorted_segment_sum(ones, segment, segments)
  y0 = tf.math.unsorted_segment_min(y, segment, segments)
  x0 = tf.math.unsorted_segment_min(x, segment, segments)
  y1 = tf.math.unsorted_segment_max(y, segment, segments) + count
  x1 = tf.math.unsorted_segment_max(x, segment, segments) + count
  return total, tf.stack([y0, x0, y1, x1], -1)


def _best(log_nfa, box, grid, limit):
  """The `limit` segments of lowest NFA (padding: +inf, empty box, grid -1)."""
  padding = tf.maximum(limit - tf.shape(log_nfa)[0], 0)
  log_nfa = tf.pad(log_nfa, [[0, padding]], constant_values=float("inf"))
  box = tf.pad(box, [[0, padding], [0, 0]])
  grid = tf.pad(grid, [[0, padding]], constant_values=-1)
  _, order = tf.math.top_k(-log_nfa, k=limit)
  chosen = tf.gather(log_nfa, order)
  meaningful = chosen < 0.0
  return (
    order,
    tf.where(meaningful[:, None], tf.gather(box, order), 0),
    tf.where(meaningful, tf.gather(grid, order), -1),
    tf.where(meaningful, chosen, float("inf")),
  )


def _cell_map(segment_of_cell, order, log_nfa, shape):
  """[h, w] index of the chosen region each cell belongs to (the best wins)."""
  wanted = tf.where(log_nfa < 0.0, order, -2)  # -2 matches no segment
  hits = tf.equal(segment_of_cell[..., None], wanted[None, None, None, :])  # [h, w, c, limit]
  hit_any = tf.reduce_any(hits, axis=2)
  first = tf.argmax(tf.cast(hit_any, tf.int32), axis=-1, output_type=tf.int32)
  return tf.reshape(tf.where(tf.reduce_any(hit_any, -1), first, -1), shape)


def background_shares(counts: TensorLike) -> tf.Tensor:
  """Each grid's share of the votes of the cells where it holds under
  OUTLIER_VOTES of them, float64 [64].

  The image's own share of a grid would count a large region on that grid as
  chance (a 200-pixel block in a 384-pixel photo is 30% of it); cells where a
  grid holds a quarter of the votes are not its background.
  """
  counts = tf.cast(tf.reshape(counts, [-1, GRIDS]), tf.float64)
  totals = tf.reduce_sum(counts, axis=1, keepdims=True)
  background = counts < OUTLIER_VOTES
  grid_votes = tf.reduce_sum(tf.where(background, counts, 0.0), axis=0)
  all_votes = tf.reduce_sum(tf.where(background, totals, 0.0), axis=0)
  return grid_votes / tf.maximum(all_votes, 1.0)


def _cell_minimum(shares: tf.Tensor) -> tf.Tensor:
  """Per grid, the fewest votes of a 64-pixel cell that chance gives under 1% of
  the time at the grid's background share (at least MIN_CELL_VOTES): stray
  votes then seed no region, however many a grid gets everywhere."""
  share = tf.maximum(tf.cast(shares, tf.float64), 1e-4)
  candidates = tf.range(1, 65, dtype=tf.float64)
  tails = nfa.log10_binomial_tail(64.0, candidates[None, :], share[:, None])  # [grid, m]
  rare = tf.cast(tails <= -2.0, tf.int32)
  first = tf.argmax(rare, axis=1, output_type=tf.int32) + 1
  return tf.maximum(first, MIN_CELL_VOTES)


def vote_regions(
  votes: TensorLike,
  exclude: TensorLike,
  log_tests: TensorLike,
  limit: int,
  chance: str = "zero",
) -> Candidates:
  """Regions of cells voting for one grid other than `exclude` (-1: none).

  A region whose box covers more than MAX_AREA of the image is no region but
  a second grid of the whole image (`grid_map`'s `grid_log_nfa` has those).

  Args:
    votes: int32 [H, W], grid dy * 8 + dx or -1.
    exclude: the main grid, whose votes make no region.
    log_tests: log10 of the number of tests (`nfa.log10_tests`, plus the kinds
      of evidence tested).
    limit: how many regions to return at most.
    chance: the probability of a vote for the region's grid by chance:
      "zero", ZERO's 1/64; "rest", the grid's share of the votes outside the
      region (at least 1/64), for votes that favour some grids everywhere.
  """
  votes = tf.ensure_shape(tf.convert_to_tensor(votes, tf.int32), [None, None])
  counts = cell_counts(votes)
  rows, columns = tf.shape(counts)[0], tf.shape(counts)[1]
  cell_totals = tf.reduce_sum(counts, axis=2)
  totals = tf.reduce_sum(counts, axis=[0, 1])
  grid_shares = tf.cast(totals, tf.float64)
  minimum = _cell_minimum(background_shares(counts))
  # Only the CANDIDATES grids with the most votes are labelled: a region needs
  # hundreds of votes, and most grids have few; a quarter of the work.
  totals = tf.where(tf.equal(tf.range(GRIDS), exclude), -1, totals)
  _, chosen = tf.math.top_k(totals, k=CANDIDATES)
  counts = tf.gather(counts, chosen, axis=2)
  member = (counts >= tf.gather(minimum, chosen)) & (tf.gather(totals, chosen) > 0)
  member = _supported(member)
  labels = tf.where(member, components(_bridged(member)), -1)  # [h, w, CANDIDATES]
  # A segment per (component, candidate): label * CANDIDATES + candidate index.
  slot = tf.broadcast_to(tf.range(CANDIDATES)[None, None, :], tf.shape(labels))
  segment_of_cell = tf.where(labels >= 0, labels * CANDIDATES + slot, -1)
  segments = rows * columns * CANDIDATES
  # A grid's candidate index, or -1 for the others.
  slot_of_grid = tf.tensor_scatter_nd_update(
    -tf.ones([GRIDS], tf.int32), chosen[:, None], tf.range(CANDIDATES)
  )
  # Each voting pixel joins the region of its cell for its grid, if any.
  height, width = tf.shape(votes)[0], tf.shape(votes)[1]
  ys, xs = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
  pixel_slot = tf.gather(slot_of_grid, tf.maximum(votes, 0))
  cell_flat = (ys // 8) * columns + xs // 8
  flat_segments = tf.reshape(segment_of_cell, [-1])
  pixel_segment = tf.gather(flat_segments, cell_flat * CANDIDATES + tf.maximum(pixel_slot, 0))
  pixel_segment = tf.where((votes >= 0) & (pixel_slot >= 0), pixel_segment, -1)
  keep = pixel_segment >= 0
  segment = tf.boolean_mask(pixel_segment, keep)
  total, box = _boxes_and_scores(
    segment, 1, tf.boolean_mask(ys, keep), tf.boolean_mask(xs, keep), segments
  )
  area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
  grid = tf.gather(chosen, tf.range(segments) % CANDIDATES)
  if chance == "rest":
    # All votes in the region's cells, then the grid's share of the others.
    inside = tf.math.unsorted_segment_sum(
      tf.broadcast_to(cell_totals[..., None], tf.shape(segment_of_cell)),
      segment_of_cell,
      segments,
    )
    rest = tf.cast(tf.reduce_sum(totals) - inside, tf.float64)
    own = tf.gather(grid_shares, grid) - tf.cast(total, tf.float64)
    rate = tf.maximum(own / tf.maximum(rest, 1.0), 1.0 / GRIDS)
  else:
    rate = tf.constant(1.0 / GRIDS, tf.float64)
  log_nfa = nfa.log10_nfa(tf.maximum(area, 0) // 64, total // 64, log_tests, rate)
  whole = tf.cast(tf.shape(votes)[0] * tf.shape(votes)[1], tf.float64)
  small = tf.cast(area, tf.float64) <= MAX_AREA * whole
  log_nfa = tf.where((total > 0) & small, log_nfa, float("inf"))
  order, box, grid, log_nfa = _best(log_nfa, box, grid, limit)
  cells = _cell_map(segment_of_cell, order, log_nfa, [rows, columns])
  return Candidates(box, grid, log_nfa, cells)


def block_regions(
  off: TensorLike, voting: TensorLike, origin: TensorLike, log_tests: TensorLike, limit: int
) -> Candidates:
  """Regions of touching blocks off the lattice, [rows, columns] of the grid at `origin`.

  `off` marks blocks that vote "never compressed here", `voting` all blocks
  that vote either way. k = off blocks of the region among n = voting blocks
  of its box, at p = the image's share of off blocks (at least 1/64).
  """
  off = tf.ensure_shape(tf.convert_to_tensor(off, tf.bool), [None, None])
  voting = tf.ensure_shape(tf.convert_to_tensor(voting, tf.bool), [None, None])
  origin = tf.cast(origin, tf.int32)
  rows, columns = tf.shape(off)[0], tf.shape(off)[1]
  on = voting & tf.logical_not(off)
  labels = components(_bridged(off[..., None], on[..., None]))[..., 0]
  labels = tf.where(off, labels, -1)
  segments = tf.maximum(rows * columns, 1)
  bys, bxs = tf.meshgrid(tf.range(rows), tf.range(columns), indexing="ij")
  keep = labels >= 0
  total, blocks_box = _boxes_and_scores(
    tf.boolean_mask(labels, keep),
    1,
    tf.boolean_mask(bys, keep),
    tf.boolean_mask(bxs, keep),
    segments,
  )
  # Voting blocks inside each box, from a summed-area table.
  table = tf.pad(tf.cumsum(tf.cumsum(tf.cast(voting, tf.int32), 0), 1), [[1, 0], [1, 0]])
  blocks_box = tf.clip_by_value(blocks_box, 0, tf.stack([rows, columns, rows, columns]))
  y0, x0, y1, x1 = tf.unstack(blocks_box, axis=-1)
  corner = lambda y, x: tf.gather_nd(table, tf.stack([y, x], -1))  # noqa: E731
  inside = corner(y1, x1) - corner(y0, x1) - corner(y1, x0) + corner(y0, x0)
  chance = tf.maximum(
    tf.reduce_sum(tf.cast(off, tf.float64))
    / tf.maximum(tf.reduce_sum(tf.cast(voting, tf.float64)), 1.0),
    1.0 / 64.0,
  )
  log_nfa = nfa.log10_nfa(inside, total, log_tests, chance)
  log_nfa = tf.where(total > 0, log_nfa, float("inf"))
  box = blocks_box * 8 + tf.stack([origin[0], origin[1], origin[0], origin[1]])
  order, box, grid, log_nfa = _best(log_nfa, box, -tf.ones([segments], tf.int32), limit)
  cells = _cell_map(labels[..., None], order, log_nfa, [rows, columns])
  return Candidates(box, grid, log_nfa, cells)
