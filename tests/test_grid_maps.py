"""bin/grid: the files it writes per image and per folder, bad files, and
the same bytes from the same input."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

import tfjpeg
from tfjpeg.analysis import grid_maps
from tfjpeg.analysis import grid_pictures

import helpers as testing


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """A spliced PNG, an untouched JPEG file (in a subfolder), a never-compressed
  PNG, and a file that is no image."""
  root = tmp_path_factory.mktemp("photos")
  host = tfjpeg.compress(testing.synthetic_image(160, 192, seed=31), 75).numpy()
  other = tfjpeg.compress(testing.synthetic_image(160, 192, seed=32), 90).numpy()
  spliced = host.copy()
  spliced[43:123, 51:131] = other[8:88, 16:96]  # 80x80 at (43, 51): its grid at (3, 3)
  testing.write_image(root / "spliced.png", spliced)
  (root / "camera").mkdir()
  (root / "camera" / "untouched.jpg").write_bytes(
    tfjpeg.encode(testing.synthetic_image(96, 128, seed=33), 85).numpy()
  )
  testing.write_image(root / "raw.png", testing.synthetic_image(64, 64, seed=34))
  (root / "notes.jpg").write_bytes(b"not a photo")
  return root


@pytest.fixture(scope="module")
def mapped(folder, tmp_path_factory):
  out = tmp_path_factory.mktemp("grids")
  lines = []
  table = grid_maps.map_folder(str(folder), str(out), report=lines.append)
  return out, table, lines


def test_one_line_per_image_and_a_bad_file_counted(mapped):
  out, table, lines = mapped
  csv = pd.read_csv(out / grid_maps.CSV)
  assert list(csv.columns) == list(grid_maps.CSV_COLUMNS)
  by_file = csv.set_index("file")
  assert sorted(by_file.index) == ["camera__untouched.jpg", "notes.jpg", "raw.png", "spliced.png"]
  assert by_file.loc["notes.jpg", "status"] == "error"
  assert "not an image" in by_file.loc["notes.jpg", "verdict"]
  assert len(lines) == 1 and lines[0].startswith("grid: ") and "notes.jpg" in lines[0]
  spliced = by_file.loc["spliced.png"]
  assert spliced["status"] == "flagged" and spliced["foreign"] == 1
  assert (
    spliced["verdict"].startswith("a region of ")
    and "saved on another grid (3, 3)" in spliced["verdict"]
  )
  untouched = by_file.loc["camera__untouched.jpg"]
  assert untouched["verdict"] == "one JPEG grid at (0, 0), nothing else found"
  assert by_file.loc["raw.png", "verdict"].startswith("no JPEG grid found")


def test_the_json_mask_and_vote_map_of_a_splice(mapped, folder):
  out, _, _ = mapped
  value = json.loads((out / "spliced.png.json").read_text())
  assert value["main_grid"] == [0, 0] and value["main_log_nfa"] < 0
  (region,) = value["regions"]
  assert region["kind"] == "foreign" and region["grid"] == [3, 3]
  y0, x0, y1, x1 = region["box"]
  assert abs(y0 - 43) <= 8 and abs(x0 - 51) <= 8 and abs(y1 - 123) <= 8 and abs(x1 - 131) <= 8
  assert region["log_nfa"] < 0 and region["evidence"] in ("zeros", "resaved")
  mask = cv2.imread(str(out / "spliced.png.mask.png"), cv2.IMREAD_UNCHANGED)
  assert mask.shape == (160, 192) and set(np.unique(mask)) == {0, 255}
  assert (mask[y0:y1, x0:x1] == 255).mean() > 0.5 and (mask[:30] == 0).all()
  votes = cv2.imread(str(out / "spliced.png.votes.png"))
  assert votes.shape == (160, 192, 3)
  # The region's box is drawn in the foreign colour (RGB magenta; BGR read here).
  assert tuple(votes[y0, (x0 + x1) // 2]) == grid_pictures.BOX_COLOURS["foreign"][::-1]


def test_the_page_puts_flagged_images_first(mapped):
  out, _, _ = mapped
  page = (out / grid_maps.PAGE).read_text()
  assert (
    "4 images: 1 with a region where the grid breaks, 2 without, 1 that could not be read" in page
  )
  assert page.index("spliced.png") < page.index("notes.jpg") < page.index("raw.png")
  assert 'src="spliced.png.votes.png"' in page


def test_same_input_same_bytes(mapped, folder, tmp_path):
  out, _, _ = mapped
  grid_maps.map_folder(str(folder), str(tmp_path), report=lambda line: None)
  written = sorted(p.name for p in out.iterdir())
  assert written == sorted(p.name for p in tmp_path.iterdir())
  for name in written:
    assert (out / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_bin_grid_on_one_file(folder, tmp_path):
  done = subprocess.run(
    [sys.executable, str(testing.REPO / "bin" / "grid"), str(folder / "spliced.png"),
     f"--out={tmp_path}"],
    capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert done.returncode == 0, done.stderr
  assert "1 images: 1 with a region where the grid breaks" in done.stdout
  assert "spliced.png: a region of " in done.stdout
  assert (tmp_path / "spliced.png.json").exists() and "grid maps: 1/1" in done.stderr
