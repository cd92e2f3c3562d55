"""Processing chains (tfjpeg.codec.chain_syntax, tfjpeg.codec.chain_ops) and their place
in the pipeline: parsed and refused in one line, each step three ways, a
chain condition equal to its steps applied by hand with Pillow, scipy and
OpenCV, the grid semantics, training augmentation, the published presets."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfjpeg import config as config_lib
from tfjpeg.codec import chain_ops
from tfjpeg.codec import chain_syntax
from tfjpeg.codec import grid
from tfjpeg.codec import jpeg
from tfjpeg.core.errors import ConfigError
from tfjpeg.pipeline import input_pipeline as ip

import helpers as testing

PATCH = 32


@pytest.mark.parametrize(
  "text,canonical",
  [
    ("resize:0.5>jpeg:75", "resize:0.5>jpeg:75"),
    (" resize:0.50/bicubic > jpeg:75 ", "resize:0.5>jpeg:75"),
    ("resize:200x180/lanczos>jpeg:65..100@0.5", "resize:200x180/lanczos>jpeg:65..100@0.5"),
    ("blur:0..3@0.1>jpeg:30|50|70", "blur:0..3@0.1>jpeg:30|50|70"),
    ("crop:160..2048>resize:200x200/auto>jpeg:65..100", None),
    ("none", "none"),
    ("corvi2023", "corvi2023"),
    ("gray@0.1>noise:0.015..0.075@0.3>fit:2048", None),
    ("rrc:256..512/bilinear|bicubic|lanczos@0.25", "rrc:256..512@0.25"),
    ("rrc:64/lanczos>centre:32>centre:20x30>fit:100/lanczos", None),
    ("aigenbench2025", "aigenbench2025"),
  ],
)
def test_chains_parse_to_one_canonical_spelling(text, canonical):
  parsed = chain_syntax.parse(text)
  assert parsed.text == (canonical or text)
  assert chain_syntax.parse(parsed.text) == parsed  # the spelling reads back as the same chain


@pytest.mark.parametrize(
  "text,message",
  [
    ("resize:0", "0 must be greater than 0"),
    ("jpeg:101", "101 is outside 1..100"),
    ("sharpen:2", "unknown step 'sharpen'"),
    ("jpeg", "jpeg needs a value"),
    ("resize:0.5/nearest", "then /kernel, one of bilinear"),
    ("jpeg:50@2", "2 is outside 0..1"),
    ("crop:0", "0 is below 1"),
    ("jpeg:90..30", "runs backwards"),
    ("blur:x", "'x' is not a number"),
    ("gray:2", "gray takes no value"),
    ("noise:2", "2 is outside 0..1"),
    ("rrc:64/nearest", "some of bilinear|bicubic|lanczos"),
    ("fit:100..200", "fit takes one longest side"),
  ],
)
def test_malformed_chains_are_one_line_errors_naming_the_step(text, message):
  with pytest.raises(ConfigError) as error:
    config_lib.parse("test_chains", f"resize:2,{text}")
  assert message in str(error.value) and "--test_chains" in str(error.value)
  assert "\n" not in str(error.value)
  with pytest.raises(ConfigError):
    config_lib.make(train_chain=text)


def test_presets_say_what_was_published():
  wang = chain_syntax.parse("wang2020_blur_jpeg_0.5")
  blur, save = wang.steps
  assert (blur.sigma.bounds(), blur.probability) == ((0.0, 3.0), 0.5)
  assert (save.quality.bounds(), save.probability) == ((30, 100), 0.5)
  assert chain_syntax.parse("wang2020_blur_jpeg_0.1").steps[0].probability == 0.1
  crop, resize, save = chain_syntax.parse("corvi2023").steps
  assert crop.size[0].bounds() == (160, 2048) and resize.kernel == "auto"
  assert save.quality.bounds() == (65, 100)


STEP_CHAINS = [
  "resize:0.5..1.5/bilinear",
  "resize:37x53/lanczos",
  "blur:0.2..2.5",
  "jpeg:40..95@0.7",
  "crop:20..40",
  "crop:160..2048>resize:200x200/auto>jpeg:65..100",
  "gray@0.5>fit:50/lanczos>centre:40x30",
  "rrc:20..40",
]


@pytest.mark.parametrize("way", testing.WAYS)
@pytest.mark.parametrize("text", STEP_CHAINS)
def test_each_step_three_ways_equals_the_same_steps_by_hand(text, way):
  image = testing.synthetic_image(61, 77, seed=3)
  chain = chain_syntax.parse(text)
  for draw in range(3):
    out, draws = testing.run(
      lambda x, s: (lambda o: (o[0], o[1]["draws"]))(chain_ops.apply(x, chain, s)),
      way,
      image,
      tf.constant([7, draw], tf.int64),
    )
    np.testing.assert_array_equal(
      out, testing.chain_by_hand(image, chain, draws), err_msg=f"draw {draw}"
    )


def test_draws_are_seeded_spread_and_kept_in_their_ranges():
  image = testing.synthetic_image(64, 64, seed=1)
  chain = chain_syntax.parse("blur:0..3@0.5>jpeg:30..100@0.5")
  seen = [chain_ops.apply(image, chain, (1, k))[1]["draws"].numpy() for k in range(60)]
  again = [chain_ops.apply(image, chain, (1, k))[1]["draws"].numpy() for k in range(60)]
  np.testing.assert_array_equal(seen, again)
  seen = np.array(seen)
  blurred, saved = seen[:, 0] > 0, seen[:, 2] > 0
  assert 0.25 < blurred.mean() < 0.75 and 0.25 < saved.mean() < 0.75
  assert 0 <= seen[blurred, 1].min() and seen[blurred, 1].max() <= 3
  assert set(seen[saved, 3].astype(int)) <= set(range(30, 101))
  assert len(set(seen[saved, 3].astype(int))) > 10


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  return testing.folder_task(
    tmp_path_factory.mktemp("chains"),
    (83, 101),
    PATCH,
    per_class=6,
    png_every=2,
    quality=93,
    patches_per_image=2,
  )


@pytest.mark.parametrize(
  "text",
  [
    "resize:0.75/lanczos>jpeg:80",
    "corvi2023",
    "blur:1.5>resize:1.5>jpeg:60..90",
    "jpeg:90>crop:50",
  ],
)
def test_a_chain_condition_equals_its_steps_applied_by_hand(folder, text):
  """Decode, chain (from the draws the evaluation writes down), crop: the
  same pixels as OpenCV, Pillow and scipy doing each step."""
  task, path_of, _ = folder
  config = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=2, batch_size=5)
  condition = ip.Condition("aligned", chain=text)
  chain = chain_syntax.parse(text)
  seen = 0
  for batch in ip.eval_dataset(task, "test", [condition], config):
    for image, offset, image_id, draws in zip(
      batch["image"].numpy(), batch["offset"].numpy(), batch["image_id"].numpy(), batch["draws"]
    ):
      source = cv2.imread(path_of[image_id.decode()], cv2.IMREAD_COLOR)[..., ::-1]
      expected = testing.chain_by_hand(source, chain, draws.numpy())
      y, x = offset
      np.testing.assert_array_equal(image, expected[y : y + PATCH, x : x + PATCH])
      seen += 1
  assert seen == task.num_images["test"] * 2


def test_aligned_crops_follow_the_grid_of_the_last_compression():
  """After resize then JPEG the grid starts at the top-left; a crop after the
  JPEG moves it, and aligned patches move with it: the blind estimator finds
  the grid at the patch's own corner."""
  image = testing.synthetic_image(180, 200, seed=5)
  data = tf.io.encode_png(image)
  config = ip.PipelineConfig.of(patch_size=64, patches_per_image=4)
  element = dict(encoded=data, label=tf.constant(0), image_id=tf.constant("x"))
  for text in ("resize:0.8>jpeg:70", "resize:0.9>jpeg:60>crop:150"):
    chain = chain_syntax.parse(text)
    for draw in range(3):
      cut = ip.cut_patches(
        element, config, ["aligned"], tf.constant([draw, 1], tf.int64), None, chain
      )
      for patch in cut["aligned"]["image"].numpy():
        origin, confidence = grid.estimate(patch)
        assert confidence >= grid.CONFIDENT, text
        assert tuple(origin.numpy()) == (0, 0), (text, cut["aligned"]["offset"].numpy())


def test_training_with_a_chain_applies_it_per_image_and_per_epoch(folder):
  task, path_of, _ = folder
  config = ip.PipelineConfig.of(
    patch_size=PATCH, patches_per_image=2, batch_size=4, train_chain="resize:1.2..1.6/lanczos@0.5"
  )
  plain = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=2, batch_size=4)

  def patches(pipeline, epoch):
    out = {}
    for batch in ip.train_dataset(task, pipeline, epoch):
      for image, image_id, index, offset in zip(
        batch["image"].numpy(),
        batch["image_id"].numpy(),
        batch["patch_index"].numpy(),
        batch["offset"].numpy(),
      ):
        out[(image_id.decode(), int(index))] = (image, tuple(offset))
    return out

  chained, again, unchained = patches(config, 0), patches(config, 0), patches(plain, 0)
  assert chained.keys() == unchained.keys() == again.keys()
  for key in chained:
    np.testing.assert_array_equal(chained[key][0], again[key][0])
  # Resized images: offsets reach beyond the original's size for some, and
  # about half the images differ from the unchained pipeline's patches.
  changed = {k[0] for k in chained if not np.array_equal(chained[k][0], unchained[k][0])}
  assert 0.2 < len(changed) / task.num_images["train"] < 0.9
  bigger = max(max(o) for _, o in chained.values())
  assert bigger > max(max(o) for _, o in unchained.values())


WINDOW_CHAINS = [
  "resize:0.3..0.6/lanczos>jpeg:70",
  "resize:0.3..0.6@0.5>blur:0.5..3@0.5>jpeg:65..100@0.5",
  "blur:0>jpeg:75",
  "resize:1.2..1.8/bilinear>blur:0..2@0.5>jpeg:65..100",
  "crop:120..180>blur:1>jpeg:80",
  "resize:150x90/auto>jpeg:75",
  "jpeg:90>crop:100>resize:0.7/hamming",
  "blur:1.5>resize:60x250",
  "corvi2023",
]


@pytest.mark.parametrize("text", WINDOW_CHAINS)
def test_a_patch_through_windows_equals_the_whole_images_patch(text):
  """Each step on only the part of its input the patch needs (resize taps,
  blur radius, whole JPEG MCUs and one around), from a windowed decode:
  the same pixels as the chain on the whole image, corners included."""
  image = testing.synthetic_image(203, 271, seed=2)
  data = jpeg.encode(image, 92)
  source = jpeg.decode(data).numpy()
  chain = chain_syntax.parse(text)
  rng = np.random.default_rng(len(text))
  for draw in range(3):
    seed = tf.constant([draw, 5], tf.int64)
    whole = chain_ops.apply(source, chain, seed)[0].numpy()
    planned, _ = chain_ops.plan(tf.shape(source)[:2], chain, seed)
    height, width = whole.shape[:2]
    side = min(40, height, width)
    places = [(0, 0), (height - side, width - side)] + [
      (int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)))
      for _ in range(2)
    ]
    for y, x in places:
      patch = chain_ops.apply_window(
        lambda o, s: jpeg.decode_window(data, o, s), planned, (y, x), (side, side)
      )
      np.testing.assert_array_equal(
        patch.numpy(), whole[y : y + side, x : x + side], err_msg=f"{text} draw {draw} at {(y, x)}"
      )


def test_the_pipeline_cuts_the_same_patches_window_by_window(monkeypatch):
  """Training patches of a large JPEG through a chain: the windowed path the
  pipeline takes equals the whole-image path it takes otherwise."""
  image = testing.synthetic_image(320, 420, seed=9)
  element = dict(encoded=jpeg.encode(image, 90), label=tf.constant(1), image_id=tf.constant("x"))
  config = ip.PipelineConfig.of(patch_size=32, patches_per_image=3)
  chain = chain_syntax.parse("resize:0.6..1.4@0.5>blur:0..2@0.5>jpeg:65..100")
  modes = ["random", "aligned"]
  seeds = [tf.constant([3, k], tf.int64) for k in range(4)]  # resized or not, blurred or not

  def cut():
    return [one(seed) for seed in seeds]

  def one(seed):
    out = ip.cut_patches(element, config, modes, seed, None, chain)
    return {
      m: (out[m]["image"].numpy(), out[m]["offset"].numpy(), out[m]["draws"].numpy()) for m in modes
    }

  windowed = cut()
  monkeypatch.setattr(ip, "_chain_windows_pay", lambda *args: tf.constant(False))
  whole = cut()
  applied = {tuple(w["random"][2][0][[0, 3]]) for w in windowed}
  assert len(applied) > 1  # the seeds cover more than one case of the coins
  for mine_all, theirs_all in zip(windowed, whole):
    for mode in modes:
      for mine, theirs in zip(mine_all[mode], theirs_all[mode]):
        np.testing.assert_array_equal(mine, theirs)


def test_tables_written_before_chains_read_with_none(tmp_path):
  from tfjpeg.analysis import evaluation  # pylint: disable=g-import-not-at-top
  from tfjpeg.train import rundir  # pylint: disable=g-import-not-at-top

  old = tmp_path / "results.csv"
  old.write_text(
    "task,net,train_crop,train_qf,test_crop,test_grid,test_qf,test_first_qf,test_resave,"
    "balanced_accuracy\ncameras,hpf,random,none,aligned,8,none,none,none,0.9\n"
  )
  table = rundir.read_table(str(old))
  assert list(table.columns[: len(evaluation.SETTING_COLUMNS)]) == list(evaluation.SETTING_COLUMNS)
  assert table.loc[0, "train_chain"] == "none" and table.loc[0, "test_chain"] == "none"


def test_a_chain_that_shrinks_images_below_a_patch_loses_them_from_its_own_condition(
  folder, tmp_path
):
  """Images a test chain leaves smaller than a patch are left out of that
  condition alone (n_images counts the rest), never out of the others."""
  import keras  # pylint: disable=g-import-not-at-top
  import pandas as pd  # pylint: disable=g-import-not-at-top

  from tfjpeg.analysis import evaluation  # pylint: disable=g-import-not-at-top

  task, _, _ = folder
  inputs = keras.Input((PATCH, PATCH, 3))
  pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
  model = keras.Model(inputs, keras.layers.Dense(task.num_classes, activation="softmax")(pooled))
  config = config_lib.make(task="folder", patch_size=PATCH, patches_per_image=2)
  # Widths drawn in 1..40: for this seed one test image's is below 32.
  some = "resize:40x1..40"
  conditions = [
    ip.Condition("aligned"),
    ip.Condition("aligned", chain="resize:0.3"),  # 25x30 < 32: every image
    ip.Condition("random", chain=some),  # below 32 px tall for some images
  ]
  draws_path = tmp_path / "draws.csv"
  results, _ = evaluation.evaluate(
    model, task, config, conditions=conditions, draws_path=str(draws_path)
  )
  counts = results["n_images"].tolist()
  assert counts[0] == task.num_images["test"] and counts[1] == 0
  drawn = pd.read_csv(draws_path).query("test_chain == @some")
  assert counts[2] == (drawn["0_resize_width"] >= PATCH).sum() == drawn["valid"].sum()
  assert 0 < counts[2] < counts[0]
  assert np.isnan(results["balanced_accuracy"].iloc[1])


def test_a_chains_draws_do_not_depend_on_the_pipelines_own_saves_before_it():
  """The lattice QF, a double compression's first save or a swap go before
  a chain as `given` steps: they draw nothing and shift no step's seed."""
  chain = chain_syntax.parse("resize:0.5..1.5>jpeg:30..100")
  seed = tf.constant([4, 2], tf.int64)
  width = len(chain_syntax.draw_columns(chain))
  alone = chain_ops.plan((200, 240), chain, seed)[1]["draws"].numpy()
  for given in (100, tf.constant(90), tf.constant(0)):
    steps = [chain_syntax.Step("jpeg", given=given)] + list(chain.steps)
    after = chain_ops.plan((200, 240), steps, seed)[1]["draws"].numpy()
    np.testing.assert_array_equal(after[-width:], alone)


def _condition_draws(task, config, text):
  """{image_id: what the chain condition `text` drew for it}, over the
  training split (the most images)."""
  out = {}
  for batch in ip.eval_dataset(task, "train", [ip.Condition("random", chain=text)], config):
    for image_id, draws in zip(batch["image_id"].numpy(), batch["draws"].numpy()):
      out.setdefault(image_id.decode(), []).append(tuple(draws))
  return out


def test_a_chain_draws_the_same_with_the_lattice_cached_or_not_and_in_any_order(folder, tmp_path):
  """Draws depend only on the seed, the image and the step: not on a lattice
  QF before the chain, whether the lattice is read from its cache or
  computed, nor the order the split is read in (a TFDS task reads another)."""
  import dataclasses  # pylint: disable=g-import-not-at-top

  from tfjpeg.data import lattice  # pylint: disable=g-import-not-at-top

  task = folder[0]
  text = "resize:0.5..1.5>jpeg:30..100"
  plain = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=2, batch_size=8)
  with_lattice = ip.PipelineConfig.of(
    patch_size=PATCH, patches_per_image=2, batch_size=8, lattice_qf=100
  )
  cached = lattice.cached_task(task, 100, root=tmp_path, log=lambda line: None)
  reordered = dataclasses.replace(
    task, images=lambda split, shuffle_seed=None: task.images(split, shuffle_seed=(7, 7))
  )
  base = _condition_draws(task, plain, text)
  assert len({d for v in base.values() for d in v}) == len(base) > 3  # each image its own
  order = [i for i in base]
  assert order != list(_condition_draws(reordered, plain, text))  # the order did change
  for other in (
    _condition_draws(task, with_lattice, text),  # the lattice computed before the chain
    _condition_draws(cached, plain, text),  # the lattice read from its cache
    _condition_draws(reordered, plain, text),
  ):
    assert other == base


def test_a_training_chain_draws_the_same_after_a_first_save():
  image = testing.synthetic_image(120, 150, seed=3)
  element = dict(encoded=tf.io.encode_png(image), label=tf.constant(0), image_id=tf.constant("a"))
  config = ip.PipelineConfig.of(patch_size=PATCH, patches_per_image=2)
  chain = chain_syntax.parse("resize:0.5..1.5>jpeg:30..100")
  seed = ip.image_chain_seed(tf.constant([1, 2], tf.int64), element["image_id"])
  draws = [
    ip.patch_sources(element, config, ["random"], (0, 0), first, chain, chain_seed=seed)["random"][
      "draws"
    ].numpy()
    for first in (None, tf.constant(80), 90)
  ]
  np.testing.assert_array_equal(draws[0], draws[1])
  np.testing.assert_array_equal(draws[0], draws[2])


def test_training_patches_through_a_chain_are_the_same_with_the_lattice_cached_or_computed(
  folder, tmp_path
):
  """bin/train's training pipeline end to end: the lattice computed before
  the chain, or read from its cache (whose pipeline has no lattice step and
  may take the windowed chain path), gives the same patches at the same
  places: the chain drew the same for every image."""
  from tfjpeg.data import lattice  # pylint: disable=g-import-not-at-top

  task = folder[0]
  chain = "resize:0.6..1.4>jpeg:40..95"
  settings = dict(patch_size=PATCH, patches_per_image=2, batch_size=8, train_chain=chain)
  computed = ip.PipelineConfig.of(lattice_qf=100, **settings)
  cached_task = lattice.cached_task(task, 100, root=tmp_path, log=lambda line: None)
  cached = ip.PipelineConfig.of(**settings)

  def patches(source, config):
    out = {}
    for batch in ip.train_dataset(source, config, 1):
      for image, offset, image_id, index in zip(
        batch["image"].numpy(),
        batch["offset"].numpy(),
        batch["image_id"].numpy(),
        batch["patch_index"].numpy(),
      ):
        out[(image_id.decode(), int(index))] = (tuple(offset), image)
    return out

  mine, theirs = patches(task, computed), patches(cached_task, cached)
  assert mine.keys() == theirs.keys() and len(mine) == 2 * task.num_images["train"]
  for key in mine:
    assert mine[key][0] == theirs[key][0], key
    np.testing.assert_array_equal(mine[key][1], theirs[key][1], err_msg=str(key))


def _corvi_by_pillow(image, y, x, side, quality):
  """Corvi et al.'s test operations written with Pillow alone, from the draws
  (DMimageDetection's csv_operations.py): crop, resize to 200x200 with
  Lanczos (its antialiasing filter) when the crop is larger, bicubic when
  smaller, then a Pillow JPEG at the QF."""
  import io  # pylint: disable=g-import-not-at-top

  from PIL import Image  # pylint: disable=g-import-not-at-top

  cropped = Image.fromarray(image).crop((x, y, x + side, y + side))
  kernel = Image.Resampling.LANCZOS if side > 200 else Image.Resampling.BICUBIC
  resized = cropped.resize((200, 200), kernel)
  buffer = io.BytesIO()
  resized.save(buffer, "JPEG", quality=quality)
  return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def test_corvi_equals_an_independent_pillow_implementation_shrinking_and_enlarging():
  """On photos larger than 200 px both branches run: crops above 200 are
  shrunk with Lanczos, crops below enlarged with bicubic."""
  chain = chain_syntax.parse("corvi2023")
  shrunk = enlarged = 0
  for number, size in enumerate([(330, 410), (260, 520), (480, 300)]):
    image = testing.synthetic_image(*size, seed=number)
    for draw in range(4):
      out, record = chain_ops.apply(image, chain, tf.constant([number, draw], tf.int64))
      columns = dict(zip(chain_syntax.draw_columns(chain), record["draws"].numpy()))
      y, x, side = (int(columns[f"0_crop_{k}"]) for k in ("y", "x", "height"))
      quality = int(columns["2_jpeg_qf"])
      expected = _corvi_by_pillow(image, y, x, side, quality)
      np.testing.assert_array_equal(out.numpy(), expected, err_msg=f"{size} draw {draw}")
      shrunk += side > 200
      enlarged += side < 200
  assert shrunk and enlarged


def test_presets_save_as_their_protocols_do_whatever_the_runs_chroma():
  image = testing.synthetic_image(230, 250, seed=4)
  seed = tf.constant([3, 1], tf.int64)
  for name in ("corvi2023", "wang2020_blur_jpeg_0.5"):
    preset = chain_syntax.parse(name)
    assert {s.chroma for s in preset.steps if s.name == "jpeg"} == {"4:2:0"}
    runs = [chain_ops.apply(image, preset, seed, chroma)[0].numpy() for chroma in jpeg.CHROMA_MODES]
    np.testing.assert_array_equal(runs[0], runs[1])
  spelled = chain_syntax.parse("jpeg:75")  # written out: the run's chroma
  runs = [chain_ops.apply(image, spelled, seed, chroma)[0].numpy() for chroma in jpeg.CHROMA_MODES]
  assert not np.array_equal(runs[0], runs[1])
  np.testing.assert_array_equal(runs[1], testing.opencv_compress(image, 75, "4:4:4"))


def test_aigenbench_follows_its_source_as_it_runs_and_as_described():
  """ai_genbench_pipeline.py (mandatory_val_preprocessing): the crop of
  RandomCropIfLarge(1080) is random as the code runs; data_augment_cmp
  draws the QF from the list [50, 101] (101: libjpeg's 100)."""
  run = chain_syntax.parse("aigenbench2025")
  assert [s.name for s in run.steps] == ["crop", "gray", "jpeg", "noise", "jpeg", "rrc", "jpeg"]
  assert [s.probability for s in run.steps] == [1.0, 0.1, 0.5, 0.3, 0.2, 0.25, 0.1]
  assert {s.quality.choices for s in run.steps if s.name == "jpeg"} == {(50, 100)}
  noise, rrc = run.steps[3], run.steps[5]
  assert noise.std.bounds() == (0.015, 0.075)
  assert rrc.side.bounds() == (256, 512) and rrc.kernel == "bilinear|bicubic|lanczos"
  described = chain_syntax.parse("aigenbench2025_described")
  assert described.steps[0].name == "centre"
  assert {s.quality.bounds() for s in described.steps if s.name == "jpeg"} == {(50, 100)}
  assert not run.windowable  # noise and rrc: whole images only


def test_aigenbench_without_its_noise_equals_pillow_and_opencv_from_its_draws():
  """Every step but the per-pixel noise, from the draws, on images larger
  than its 1080-pixel crop and smaller: a random resized crop of 256..512
  with each kernel, grayscale, the saves."""
  chain = chain_syntax.parse(
    chain_syntax.PRESETS["aigenbench2025"].replace(">noise:0.015..0.075@0.3", "")
  )
  seen = set()
  for number, size in enumerate([(1150, 1210), (300, 420)]):
    image = testing.synthetic_image(*size, seed=number)
    for draw in range(12):
      out, record = chain_ops.apply(image, chain, tf.constant([number, draw], tf.int64))
      draws = record["draws"].numpy()
      np.testing.assert_array_equal(out.numpy(), testing.chain_by_hand(image, chain, draws))
      columns = dict(zip(chain_syntax.draw_columns(chain), draws))
      seen |= {k for k, v in columns.items() if k.endswith("applied") and v}
      if columns["4_rrc_applied"]:
        seen.add(f"kernel{int(columns['4_rrc_kernel'])}")
  assert {"1_gray_applied", "4_rrc_applied", "5_jpeg_applied"} <= seen


def test_noise_spreads_and_clips_as_albumentations_gauss_noise():
  """Its draws are not albumentations' (OpenCV's generator), its effect is:
  the noise cut to whole levels towards zero, then added and clipped."""
  import albumentations  # pylint: disable=g-import-not-at-top

  image = np.full((300, 300, 3), 128, np.uint8)
  image[:, :30] = 0  # clipped at 0 where the noise is negative
  out, record = chain_ops.apply(image, "noise:0.02..0.06", tf.constant([5, 5], tf.int64))
  std = float(record["draws"][1])
  assert 0.02 <= std <= 0.06
  noise = albumentations.GaussNoise(std_range=(std, std), p=1.0)
  theirs = albumentations.Compose([noise], seed=0)(image=image)["image"]  # seeded: no flakes
  for region in (np.s_[:, 30:], np.s_[:, :30]):
    mine, reference = out.numpy()[region].astype(float), theirs[region].astype(float)
    assert abs(mine.std() - reference.std()) < 0.03 * reference.std(), region
    # Two independent means of the same noise: six standard errors apart at most.
    standard_error = reference.std() * np.sqrt(2 / reference.size)
    assert abs(mine.mean() - reference.mean()) < 6 * standard_error, region
    # The share left untouched (noise cut to 0): six standard errors apart at most.
    untouched = np.mean(reference == image[region])
    spread = np.sqrt(2 * untouched * (1 - untouched) / reference.size)
    assert abs(np.mean(mine == image[region]) - untouched) < max(6 * spread, 1e-3), region
  again, _ = chain_ops.apply(image, "noise:0.02..0.06", tf.constant([5, 5], tf.int64))
  np.testing.assert_array_equal(out, again)  # seeded


def test_fit_shrinks_only_images_larger_than_its_side():
  chain = chain_syntax.parse("fit:100")
  small = testing.synthetic_image(80, 60, seed=1)
  out, record = chain_ops.apply(small, chain, tf.constant([0, 0], tf.int64))
  np.testing.assert_array_equal(out, small)
  assert record["draws"][0] == 0  # not applied
  large = testing.synthetic_image(150, 331, seed=2)
  out, _ = chain_ops.apply(large, chain, tf.constant([0, 0], tf.int64))
  assert out.shape[:2] == (45, 100)
  assert chain_syntax.largest_output(chain_syntax.parse("resize:2>fit:100")) == (100, 100)
