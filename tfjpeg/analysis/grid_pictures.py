"""Pictures of a grid map: the coloured vote map over the photo, and the mask.

Pure NumPy and OpenCV (no matplotlib): bin/grid writes one of each per image,
and PNG's encoder is deterministic, so the same input gives the same bytes.
"""

import cv2
import numpy as np

# The mask's values: a region's pixels by its kind.
MASK_VALUES = {"foreign": 255, "missing": 128}
# Box outlines (RGB): foreign grids magenta, missing grids cyan.
BOX_COLOURS = {"foreign": (255, 0, 255), "missing": (0, 200, 255)}


def grid_colours(main: int) -> np.ndarray:
  """[65, 3] uint8 RGB, indexed by vote + 1: no vote shows the photo, the main
  grid a pale grey-green, each other grid its own saturated hue."""
  hues = (np.arange(64) * 67) % 180  # OpenCV hues run 0..179; 67 spreads neighbours apart
  hsv = np.stack([hues, np.full(64, 255), np.full(64, 255)], -1).astype(np.uint8)
  colours = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]
  if 0 <= main < 64:
    colours[main] = (150, 190, 150)
  return np.concatenate([np.zeros((1, 3), np.uint8), colours])


def vote_picture(image: np.ndarray, votes: np.ndarray, main: int, regions) -> np.ndarray:
  """The photo in grey, each voting pixel tinted by its grid, regions boxed.

  Args:
    image: uint8 [H, W, 3] RGB.
    votes: int [H, W], dy * 8 + dx or -1.
    main: the main grid (dy * 8 + dx), or -1.
    regions: dicts with "kind" and "box" (y0, x0, y1, x1, ends exclusive).
  """
  grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
  base = np.repeat(grey[..., None], 3, -1).astype(np.float32)
  tint = grid_colours(main)[np.asarray(votes) + 1].astype(np.float32)
  voted = (np.asarray(votes) >= 0)[..., None]
  picture = np.where(voted, 0.45 * base + 0.55 * tint, 0.7 * base).round().astype(np.uint8)
  thickness = max(1, round(max(image.shape[:2]) / 400))
  for region in regions:
    y0, x0, y1, x1 = region["box"]
    cv2.rectangle(
      picture,
      (int(x0), int(y0)),
      (int(x1) - 1, int(y1) - 1),
      BOX_COLOURS[region["kind"]],
      thickness,
    )
  return picture


def mask_picture(region_mask: np.ndarray, kinds) -> np.ndarray:
  """uint8 [H, W]: MASK_VALUES by the kind of the region each pixel lies in, else 0."""
  values = np.array([MASK_VALUES[kind] for kind in kinds] + [0], np.uint8)
  index = np.asarray(region_mask)
  return values[np.where(index >= 0, index, len(kinds))]


def png(picture: np.ndarray) -> bytes:
  """PNG bytes of an RGB or grey uint8 picture."""
  if picture.ndim == 3:
    picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
  ok, data = cv2.imencode(".png", picture)
  if not ok:
    raise ValueError("OpenCV could not encode the picture as PNG")
  return data.tobytes()
