"""bin/benchmark's measurements run end to end (no speed is asserted in tests)."""

import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfjpeg.bench import benchmark
from tfjpeg.bench import decode_costs
from tfjpeg.bench import folders
from tfjpeg.bench import scale

import helpers as testing


def _assert_measured(report, names, positive=True):
  """Each of `names` begins a row of `report`; every row is a finite number,
  and with `positive` (rates, ratios) above zero."""
  rows = [name for name, _, _ in report.rows]
  for expected in names:
    assert any(n.startswith(expected) for n in rows), expected
  assert all(np.isfinite(v) and (v > 0 or not positive) for _, v, _ in report.rows)


def _two_originals(tmp_path, height, width):
  """A folder of two JPEGs standing in for camera originals (--sources)."""
  folder = tmp_path / "originals"
  folder.mkdir()
  for index in range(2):
    testing.write_image(folder / f"{index}.jpg", testing.synthetic_image(height, width, seed=index))
  return folder


def test_benchmark_measures_every_quantity(tmp_path):
  report = benchmark.run(
    str(tmp_path),
    patch_sizes=(64,),
    nets=("hpf",),
    seconds=0.5,
    train_batch=4,
    train_steps=2,
    log=lambda text: None,
    memory_sizes=(4, 8),
    num_sources=6,
    source_size=(96, 128),
    sections=("pipeline", "memory", "training"),
  )
  _assert_measured(
    report,
    (
      "(a) OpenCV",
      "(b) tfjpeg pipeline",
      "(c) Albumentations",
      "b/a at 64 px",
      "b/c at 64 px",
      "(d) hpf 96 px, real pipeline",
      "d_real/d_const hpf",
      "pipeline peak memory, 8 images",
      "memory_small/large",
    ),
  )
  assert "benchmark on" in report.text()
  assert len(list(tmp_path.rglob("*.jpg"))) == 6 + 4 + 8
  # The memory measure's datasets never become classes of the timed pipeline's folder.
  assert sorted(os.listdir(folders.source_dir(str(tmp_path)))) == ["class0", "class1"]
  assert folders.folder_task(folders.source_dir(str(tmp_path)), 64).num_classes == 2


def test_missed_goals_are_reported():
  report = benchmark.Report()
  report.ratio("b/a", 0.5, "b/a")
  report.ratio("b/c", 2.0, "b/c")
  assert report.failures == ["b/a = 0.50 < 0.9"]
  assert "MISSED" in report.text() and "met" in report.text()


def test_sources_can_be_real_photos(tmp_path):
  photos = [
    testing.write_image(
      tmp_path / "shared" / "kodak" / f"{i}.png", testing.synthetic_image(120, 150, seed=i)
    )
    for i in range(2)
  ]
  paths = folders.make_sources(str(tmp_path / "sources"), num_images=3, photos=photos)
  assert len(paths) == 3
  for path, photo in zip(paths, photos + photos[:1]):
    data = open(path, "rb").read()
    assert data[:3] == b"\xff\xd8\xff"
    decoded = tf.io.decode_jpeg(data, dct_method="INTEGER_ACCURATE").numpy().astype(float)
    original = cv2.imread(str(photo))[..., ::-1].astype(float)
    assert decoded.shape == original.shape and np.abs(decoded - original).mean() < 4


def test_scale_section_on_a_folder_of_camera_layouts_with_median_ratios(tmp_path):
  """--sources: any folder of JPEGs, as they are (here 4:2:2 and 4:4:0, as
  DSLRs and portrait phones write them); --repeats: the median of the runs."""
  folder = tmp_path / "originals"
  folder.mkdir()
  rng = np.random.default_rng(0)
  layouts = {
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "440": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440,
  }
  for name, layout in layouts.items():
    image = cv2.GaussianBlur(rng.integers(0, 256, (560, 600, 3), np.uint8), (5, 5), 0)
    cv2.imwrite(
      str(folder / f"camera_{name}.jpg"),
      image,
      [cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, layout],
    )
  report = benchmark.run(
    str(tmp_path / "work"),
    seconds=0.2,
    log=lambda text: None,
    sections=("scale",),
    sources=str(folder),
    repeats=2,
  )
  names = [name for name, _, _ in report.rows]
  assert sum(n.startswith("(e) tfjpeg pipeline") for n in names) == 2  # one per run
  median = [n for n in names if n.startswith("(e) no_lattice/decode_bound")]
  assert median and "median of 2" in median[0]
  links = sorted((tmp_path / "work").rglob("*.jpg"))
  assert len([p for p in links if p.is_symlink()]) == 2  # read where they are, not copied
  _assert_measured(
    report,
    (
      "(e) OpenCV decode + 10 crops",
      "(e) TensorFlow accurate decode + 10 crops",
      "(e) tfjpeg pipeline",
      "(e) no_lattice/decode_bound",
      "(f) OpenCV lattice work",
      "(f) tfjpeg pipeline, lattice 100 recomputed",
      "(f) tfjpeg pipeline, lattice 100 cached",
      "(f) lattice_cached/opencv_lattice",
      "(g) decode bound",
      "(g) tfjpeg pipeline, 1 patch of 224",
      "(g) one_patch/decode_bound",
    ),
  )
  assert len(list((tmp_path / "work" / "lattice_cache").rglob("*.jpg"))) == 2
  with pytest.raises(ValueError, match="unknown benchmark sections"):
    benchmark.run(str(tmp_path), sections=("speed",))


def test_decode_cost_section_fits_the_rule_and_scores_its_picks_per_layout(tmp_path):
  folder = tmp_path / "originals"
  folder.mkdir()
  image = testing.synthetic_image(528, 560, seed=1)[..., ::-1]
  for name in ("422", "440"):
    layout = getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{name}")
    params = [cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, layout]
    cv2.imwrite(str(folder / f"camera_{name}.jpg"), image, params)
  report = benchmark.run(
    str(tmp_path / "work"), log=lambda text: None, sections=("decode_costs",), sources=str(folder)
  )
  # 1, 2, 4 and 10 patches of 224 and of 512 for each of the two layouts.
  fits = ["(k) fitted entropy share, 2 files", "(k) fitted pixel share", "(k) fitted window"]
  _assert_measured(report, fits, positive=False)  # a least-squares fit may go below zero
  rows = {name: value for name, value, _ in report.rows}
  for layout in ("4:2:2", "4:4:0"):
    (picks,) = [
      v for n, v in rows.items() if n == f"(l) {layout}: rule picks the faster path, of 8 cases"
    ]
    (best,) = [v for n, v in rows.items() if n.startswith(f"(l) {layout}: best/rule")]
    assert picks in range(9) and 0 < best <= 1
    assert (picks == 8) == (best == 1)  # the faster path every time, or time lost


def test_decode_cost_fit_recovers_the_constants_it_was_made_with():
  entropy, pixel, overhead = 0.6, 0.4, 90_000.0
  height, width = 2000, 3000
  singles = [
    (width, bottom, pixels, (entropy * width * bottom + pixel * pixels + overhead) * 1e-8)
    for bottom, pixels in ((300, 80_000), (1200, 300_000), (2000, 300_000), (600, 90_000))
  ]
  files = [(height * width * 1e-8, height * width, singles, [])]
  np.testing.assert_allclose(decode_costs.fit(files), (entropy, pixel, overhead), rtol=1e-6)
  cases = [(224, 1, True, 1.0, 3.0), (512, 10, False, 5.0, 4.0), (512, 4, True, 2.0, 1.0)]
  assert decode_costs.rule_summary([(0, 0, [], cases)]) == (3, 2, (1 + 1 + 0.5) / 3)


def test_generated_camera_sources(tmp_path):
  paths = scale.make_camera_sources(str(tmp_path), num_images=2, size=(80, 120))
  assert [os.path.basename(os.path.dirname(p)) for p in paths] == ["class0", "class1"]
  assert cv2.imread(paths[0]).shape == (80, 120, 3)


def test_accelerator_section_times_nets_and_host_decoding(tmp_path):
  report = benchmark.run(
    str(tmp_path),
    nets=("minimal",),
    seconds=0.2,
    log=lambda text: None,
    sections=("accelerator",),
    scale_images=2,
    scale_size=(560, 600),
    net_patches=(64,),
  )
  names = [name for name, _, _ in report.rows]
  for patch in (64,):
    for precision in ("float32", "mixed"):
      assert any(n.startswith(f"(h) minimal {patch} px {precision}") for n in names)
  assert any(n.startswith("(i) host decode bound") and "10 x 512" in n for n in names)
  assert all(np.isfinite(v) and v > 0 for _, v, _ in report.rows)
  assert not (tmp_path / "sources").exists()  # no pipeline section: no pipeline sources


def test_audit_section_reads_every_header(tmp_path, monkeypatch):
  made = benchmark.make_audit_sources(str(tmp_path / "audit_sources"), count=40)
  assert sum(p.endswith(".png") for p in made) == 10 and len(set(made)) == 40
  real = benchmark.make_audit_sources
  monkeypatch.setattr(benchmark, "make_audit_sources", lambda d, count: real(d, 40))
  real_matching = benchmark.matching_rates
  monkeypatch.setattr(
    benchmark, "matching_rates", lambda d, seconds: real_matching(d, seconds, scenes=8)
  )
  report = benchmark.run(str(tmp_path), sections=("audit",), log=lambda text: None, seconds=0.5)
  rows = {name: value for name, value, _ in report.rows}
  assert rows["(j) audit: file headers read, 40 files"] > 0
  assert rows["(j) baseline: the same files' bytes read, one thread"] > 0
  assert "audit files/s" in rows
  assert rows["(k) the same with --match_compression"] > 0 and rows["(k) matched / plain"] > 0


def test_chain_section_times_the_pipeline_against_pillow_on_scenes_and_sources(tmp_path):
  """(m): a resize-blur-JPEG chain, the pipeline against Pillow and scipy per
  sample, on generated scenes and on a folder of JPEGs."""
  folder = _two_originals(tmp_path, 600, 700)
  report = benchmark.run(
    str(tmp_path / "work"),
    seconds=0.3,
    log=lambda text: None,
    sections=("chains",),
    sources=str(folder),
    num_sources=4,
    source_size=(500, 600),  # halved, still wider than the 224 patch
  )
  _assert_measured(
    report,
    (
      "(m) tfjpeg pipeline, chain, generated scenes",
      "(m) Pillow+scipy, ",
      "chain/pillow on generated scenes",
      "(m) tfjpeg pipeline, chain, --sources",
      "chain/pillow on --sources",
    ),
  )


def test_layer_section_times_the_keras_layers_against_tensorflow_and_keras(tmp_path):
  """(n): the JPEG layer, a crop through a JPEG chain and a resize-blur-JPEG
  chain layer in a tf.data map, each against what a Keras user would write,
  on generated scenes and on a folder of JPEGs."""
  folder = _two_originals(tmp_path, 480, 500)
  report = benchmark.run(
    str(tmp_path / "work"),
    seconds=0.3,
    log=lambda text: None,
    sections=("layers",),
    sources=str(folder),
    num_sources=2,
  )
  _assert_measured(
    report,
    (
      "(n1) RandomJpegQuality, generated scenes",
      "(n1) tf.image.random_jpeg_quality, --sources",
      "layer_jpeg/tf on generated scenes",
      "layer_jpeg_crop/tf on --sources",
      "(n3) Keras Resizing, RandomGaussianBlur, random_jpeg_quality, generated scenes",
      "layer_chain/keras on --sources",
    ),
  )


def test_degrade_section_times_bin_degrade_against_pillow_writing_the_same_pixels(tmp_path):
  """(o): corvi2023 through bin/degrade's library call and through Pillow
  on every core from its draws, on generated scenes and on a folder of
  JPEGs (two originals, linked in turn to make four files)."""
  folder = _two_originals(tmp_path, 420, 380)
  report = benchmark.run(
    str(tmp_path / "work"),
    log=lambda text: None,
    sections=("degrade",),
    sources=str(folder),
    num_sources=4,
    source_size=(300, 360),
  )
  _assert_measured(
    report,
    (
      "(o) bin/degrade corvi2023, writing, generated scenes",
      "(o) bin/degrade corvi2023, checks included, --sources",
      "(o) Pillow, ",
      "(o) writing alone, bin/degrade / Pillow, generated scenes",
      "(o) whole command, bin/degrade / Pillow, --sources",
      "degrade/pillow on --sources",
    ),
  )
  same = {name: value for name, value, _ in report.rows if name.startswith("(o) the same pixels")}
  assert same == {
    "(o) the same pixels, generated scenes": 1.0,
    "(o) the same pixels, --sources": 1.0,
  }


def test_antialias_section_times_each_setting_against_the_plain_net(tmp_path, monkeypatch):
  """(p): training steps of the blur and aps nets against the plain net's,
  in turns in one process (here on the smallest net, briefly)."""
  from tfjpeg.bench import antialias  # pylint: disable=g-import-not-at-top

  monkeypatch.setattr(antialias, "NETS", ("minimal",))
  monkeypatch.setattr(antialias, "BATCH", 2)
  report = benchmark.run(str(tmp_path), seconds=0.3, log=lambda text: None, sections=("antialias",))
  _assert_measured(
    report,
    (
      "(p) minimal, plain",
      "(p) minimal, --antialias=blur",
      "(p) minimal, --antialias=aps",
      "(p) minimal blur: step time / plain's",
      "(p) minimal aps: step time / plain's",
    ),
  )
