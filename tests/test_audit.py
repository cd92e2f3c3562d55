"""The shortcut audit: JPEG quality read exactly from the quantisation tables,
every header attribute, and verdicts on hand-made folders with a known leak and
without one (and on the shared CNNDetection sample when present)."""

import io
import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tfjpeg
from tfjpeg.codec import headers
from tfjpeg.data import audit

import helpers as testing

REPO = pathlib.Path(__file__).resolve().parent.parent


def _opencv_jpeg(rgb, quality, sampling=None, progressive=False):
  params = [cv2.IMWRITE_JPEG_QUALITY, quality]
  if sampling is not None:
    params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling]
  if progressive:
    params += [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
  ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), params)
  assert ok
  return data.tobytes()


def _pil(rgb, fmt, **params):
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, fmt, **params)
  return buffer.getvalue()


@pytest.mark.parametrize("chroma", ["4:2:0", "4:4:4"])
def test_quality_exact_for_every_ijg_quality_from_opencv_and_pil(chroma):
  rgb = testing.synthetic_image(24, 40, seed=1)
  sampling = (
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
    if chroma == "4:4:4"
    else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
  )
  for quality in range(1, 101):
    for writer, data in (
      ("opencv", _opencv_jpeg(rgb, quality, sampling)),
      ("pil", _pil(rgb, "JPEG", quality=quality, subsampling=0 if chroma == "4:4:4" else 2)),
    ):
      header = headers.read(data)
      assert (header.quality, header.quality_exact, header.subsampling) == (
        quality,
        True,
        chroma,
      ), (writer, quality)


def test_tables_of_no_ijg_quality_give_the_nearest_and_say_so():
  luma = headers.ijg_table(90).copy()
  luma[5] += 3  # a camera maker's own table, close to IJG 90
  assert headers.estimate_quality(luma) == (90, False)
  rgb = testing.synthetic_image(32, 32, seed=2)
  custom = _pil(rgb, "JPEG", qtables=[list(luma), list(headers.ijg_table(90, chroma=True))])
  header = headers.read(custom)
  assert (header.quality, header.quality_exact) == (90, False)
  assert headers.estimate_quality(headers.ijg_table(37), headers.ijg_table(37, True)) == (37, True)


def test_every_header_attribute(tmp_path):
  rgb = testing.synthetic_image(40, 56, seed=3)
  cases = {
    "422": _opencv_jpeg(rgb, 80, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422),
    "440": _opencv_jpeg(rgb, 80, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440),
    "progressive": _opencv_jpeg(rgb, 80, progressive=True),
    "exif_icc": _pil(
      rgb, "JPEG", quality=95, exif=Image.Exif().tobytes() + b"", icc_profile=b"\0" * 200
    ),
    "gray": _pil(rgb[..., 0], "JPEG", quality=70),
    "png": _pil(rgb, "PNG"),
  }
  found = {name: headers.read(data) for name, data in cases.items()}
  assert found["422"].subsampling == "4:2:2" and found["440"].subsampling == "4:4:0"
  assert found["progressive"].progressive and not found["422"].progressive
  assert found["exif_icc"].icc and not found["422"].icc and not found["422"].exif
  assert found["gray"].subsampling == "gray" and found["gray"].mode == "L"
  png = found["png"]
  assert (png.format, png.width, png.height, png.bit_depth, png.quality, png.lossy) == (
    "png",
    56,
    40,
    8,
    None,
    False,
  )
  deep = tmp_path / "deep.png"
  cv2.imwrite(str(deep), (rgb.astype(np.uint16) * 257)[..., ::-1])
  assert headers.read(deep).bit_depth == 16
  with_exif = Image.Exif()
  with_exif[0x010F] = "tfjpeg"  # Make
  assert headers.read(_pil(rgb, "JPEG", quality=90, exif=with_exif.tobytes())).exif
  with pytest.raises(ValueError, match="unreadable image header"):
    headers.read(b"not an image at all")


def _folder(root, leak, scenes=24):
  """Classes 'real' and 'fake' of the same synthetic scenes; with `leak`, real
  JPEG at QF 96 and fake PNG (GenImage's layout); without, both JPEG at QF 75."""
  for i in range(scenes):
    for name in ("real", "fake"):
      rgb = testing.synthetic_image(48, 64, seed=1000 * (name == "fake") + i)
      if leak and name == "fake":
        testing.write_image(root / name / f"{i}.png", rgb)
      else:
        testing.write_image(root / name / f"{i}.jpg", rgb, quality=96 if leak else 75)
  return root


def test_audit_names_a_format_leak_and_finds_none_where_there_is_none(tmp_path):
  leaky = audit.audit(audit.folder_files(_folder(tmp_path / "leak", True)), "leak")
  assert leaky.leaks and leaky.overall["balanced_accuracy"] >= 0.95
  assert leaky.per_attribute.iloc[0]["balanced_accuracy"] == 1.0
  headline, first = leaky.verdict[0], leaky.verdict[1]
  assert "give the class away" in headline
  assert "'fake' is PNG in 100% of files" in first and "'real' is JPEG in 100% of files" in first
  assert "median QF 96" in first
  assert leaky.warning().startswith("WARNING: leak:")
  assert "bin/audit" in leaky.short_form()
  clean = audit.audit(audit.folder_files(_folder(tmp_path / "clean", False)), "clean")
  assert not clean.leaks and clean.warning() is None
  assert "no better than chance" in clean.verdict[0]
  by_class = clean.by_class.set_index(["split", "class_name"])
  assert by_class.loc[("all", "fake"), "formats"] == "jpeg 100%"
  assert by_class.loc[("all", "real"), "quality_median"] == 75


def test_unreadable_headers_are_counted_not_dropped(tmp_path):
  root = _folder(tmp_path / "data", False, scenes=6)
  (root / "real" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nothing more")
  found = audit.audit(audit.folder_files(root), "broken")
  assert len(found.files) == 13 and (found.files["problem"] != "").sum() == 1
  assert "1 file(s) have headers that cannot be read" in found.verdict[-1]


def test_compression_profile_pools_the_other_classes_qfs(tmp_path):
  table = pd.DataFrame(
    dict(
      class_name=["real"] * 4 + ["fake"] * 4 + ["other"] * 2,
      format=["jpeg"] * 4 + ["png"] * 4 + ["jpeg"] * 2,
      quality=[90, 90, 95, 95, None, None, None, None, 70, 70],
      problem="",
      split=["train", "test"] * 5,
    )
  )
  # In the model's order, not sorted: pools follow the order given.
  profile = audit.compression_profile(table, ["real", "fake", "other"])
  # 'other' is the most compressed; 'fake' (lossless) and 'real' get swapped.
  assert profile.swap_qfs == ((70, 70), (70, 70, 90, 90, 95, 95), ())
  assert profile.common_qf == 90
  assert profile.match_qfs == (70, 90, 95)  # the training split's JPEG files only


def test_verdicts_on_folders_with_nothing_to_tell(tmp_path):
  root = tmp_path / "one"
  for i in range(4):
    testing.write_image(root / "only" / f"{i}.jpg", testing.synthetic_image(32, 32, i))
  assert audit.audit(audit.folder_files(root)).verdict == [
    "Only one class has readable files: there is no class to tell apart."
  ]
  broken = tmp_path / "broken"
  for name in ("a", "b"):
    (broken / name).mkdir(parents=True)
    (broken / name / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 nothing more")
  found = audit.audit(audit.folder_files(broken))
  assert found.verdict == [
    "No file has a readable header: nothing to audit.",
    "2 file(s) have headers that cannot be read (see files.csv).",
  ]
  page = audit.write(found, str(tmp_path / "out"), command="bin/audit")
  assert "nothing to audit" in open(page).read()
  assert json.loads((tmp_path / "out" / "summary.json").read_text())["balanced_accuracy"] is None


def test_a_size_leak_is_named_once(tmp_path):
  for i in range(12):
    for name, size in (("small", 48), ("large", 64)):
      testing.write_image(
        tmp_path / name / f"{i}.jpg", testing.synthetic_image(size, size, i), quality=90
      )
  found = audit.audit(audit.folder_files(tmp_path), "sizes")
  assert found.leaks
  size_lines = [line for line in found.verdict if "'large': 64x64 px" in line]
  assert len(size_lines) == 1 and "'small': 48x48 px" in size_lines[0]


@pytest.fixture(scope="module")
def audit_page(tmp_path_factory):
  """bin/audit's output on a folder whose format gives the class away."""
  tmp_path = tmp_path_factory.mktemp("audit_page")
  root = _folder(tmp_path / "leak", True, scenes=10)
  out = tmp_path / "out"
  done = subprocess.run(
    [sys.executable, str(REPO / "bin" / "audit"), f"--images={root}", f"--out={out}"],
    capture_output=True,
    text=True,
    check=True,
  )
  return out, done.stdout


def test_bin_audit_writes_its_page_and_tables(audit_page, tmp_path):
  out, stdout = audit_page
  assert "give the class away" in stdout
  summary = json.loads((out / "summary.json").read_text())
  assert summary["leaks"] and len(summary["fingerprint"]) == 64
  for table in ("files", "by_class", "distribution", "attributes"):
    assert len(pd.read_csv(out / f"{table}.csv"))
  page = (out / "audit.html").read_text()
  assert summary["fingerprint"] in page and "bin/audit" in page
  refused = subprocess.run(
    [
      sys.executable,
      str(REPO / "bin" / "audit"),
      f"--images={tmp_path / 'absent'}",
      f"--out={out}",
    ],
    capture_output=True,
    text=True,
  )
  assert refused.returncode != 0 and "Traceback" not in refused.stderr
  assert refused.stderr.strip().splitlines()[-1] == (
    f"audit: flag --images={tmp_path / 'absent'}: no such file or folder"
  )


def test_the_audit_page_opens_in_a_browser(audit_page, tmp_path):
  out, _ = audit_page
  screenshot = tmp_path / "page.png"
  console = testing.open_in_chromium(out / "audit.html", screenshot, height=1600)
  assert not console, console
  assert screenshot.stat().st_size > 20_000


def test_no_processing_leak_in_the_shared_cnndetection_sample():
  root = (testing.shared_data_dir() or pathlib.Path("/nonexistent")) / "cnndetection"
  if not root.is_dir():
    pytest.skip("../shared/data/cnndetection is absent")
  found = audit.audit(audit.folder_files(root), "cnndetection")
  assert not found.leaks and "no better than chance" in found.verdict[0]
  jpeg = found.files[found.files["format"] == "jpeg"]
  assert len(jpeg) == len(found.files)
  assert set(jpeg["quality"]) == {75} and set(jpeg["subsampling"]) == {"4:2:0"}


def test_grids_count_generated_regions_pasted_into_photos(tmp_path):
  """'real' photos as JPEGs; 'generated' ones the same JPEG photos with a
  never-compressed region pasted in, stored as PNG: --grids counts them."""
  for index in range(8):
    photo = tfjpeg.compress(testing.synthetic_image(160, 192, seed=60 + index), 80).numpy()
    (tmp_path / "real").mkdir(exist_ok=True)
    (tmp_path / "real" / f"{index}.jpg").write_bytes(tfjpeg.encode(photo, 80).numpy())
    inserted = photo.copy()
    inserted[37:117, 45:141] = testing.synthetic_image(80, 96, seed=80 + index)
    testing.write_image(tmp_path / "generated" / f"{index}.png", inserted)
  (tmp_path / "generated" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
  result = audit.audit_folder(str(tmp_path), grids=True)
  grids = result.grids.set_index("class_name")
  # A flat insert may keep too few coefficients to tell (one of these eight).
  assert grids.loc["generated", "with_missing"] >= 7 and grids.loc["generated", "unreadable"] == 1
  assert grids.loc["real", "flagged"] == 0 and grids.loc["real", "no_grid"] == 0
  (line,) = [line for line in result.verdict if line.startswith("Grid maps: ")]
  assert "of 8 (0 on another grid" in line and "'real' 0 of 8" in line
  assert any("The classes differ in where the grid breaks" in line for line in result.verdict)
  page = audit.write(result, str(tmp_path / "out"))
  assert "Where the JPEG grid breaks, per class" in open(page).read()
  assert len(pd.read_csv(tmp_path / "out" / "grids.csv")) == 17
