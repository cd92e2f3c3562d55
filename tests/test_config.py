"""tfjpeg.config: sections, flat names, presets, flag parsing, the JSON a run resumes from."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import pytest

from tfjpeg import config as config_lib
from tfjpeg.codec import crops
from tfjpeg.codec import jpeg
from tfjpeg.core.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def test_default_preset_loads_and_survives_json():
  config = config_lib.load_preset(os.path.join(REPO, "configs", "default.py"))
  assert config.task.name == "cameras" and config.net == "hpf"
  changed = config_lib.override(
    config,
    synsets=("n01440764", "n02102040"),
    train_qfs=(50, 90),
    test_qfs=(None, 50),
    lattice_qf=100,
    double_qfs=(60,),
    test_first_qfs=(None, 70),
  )
  assert config_lib.Config.from_json(changed.to_json()) == changed


def test_each_setting_lives_in_one_section_under_its_flag_name():
  config = config_lib.make(
    task="imagenet",
    train_crop="aligned",
    test_qfs=(None, 50),
    epochs=3,
    strategy="mirrored",
    net="xception",
  )
  assert config.task.name == "imagenet" and config.jpeg.train_crop == "aligned"
  assert config.test.qfs == (None, 50) and config.schedule.epochs == 3
  assert config.runtime.strategy == "mirrored" and config.net == "xception"
  flat = config.flat()
  assert len(flat) == len(config_lib.FIELDS) == len(config_lib.BY_FLAG)
  assert flat["task"] == "imagenet" and flat["test_qfs"] == (None, 50)
  # Every flag name reaches its field and comes back.
  for field in config_lib.FIELDS:
    assert config_lib.replace(config, **{field.flag: field.get(config)}) == config
  with pytest.raises(config_lib.ConfigError, match="no such setting: colour"):
    config_lib.make(colour="red")


def test_the_vocabulary_is_the_codecs():
  assert config_lib.CROP_MODES == crops.MODES
  assert config_lib.CHROMAS == jpeg.CHROMA_MODES


def test_override_ignores_unset_flags():
  config = config_lib.make(epochs=7)
  assert config_lib.override(config, epochs=None, net="bayar") == config_lib.make(
    epochs=7, net="bayar"
  )


@pytest.mark.parametrize(
  "flag,text,value",
  [
    ("test_qfs", "none,50, 90", (None, 50, 90)),
    ("train_qfs", "none", ()),
    ("train_qfs", "50,90", (50, 90)),
    ("train_qfs", ["50", "90"], (50, 90)),
    ("lattice_qf", "none", None),
    ("lattice_qf", "100", 100),
    ("lr_patience", "none", None),
    ("stop_patience", "4", 4),
    ("shuffle_buffer", "auto", None),
    ("test_crops", "aligned16,realigned", ("aligned16", "realigned")),
    ("synsets", "none", None),
    ("synsets", "n01440764,n02102040", ("n01440764", "n02102040")),
    ("lattice_cache", "false", False),
    ("offset_periods", "8,16", (8, 16)),
  ],
)
def test_flag_text_is_read_by_type(flag, text, value):
  assert config_lib.parse(flag, text) == value


@pytest.mark.parametrize(
  "flag,text,message",
  [
    ("train_qfs", "abc", "--train_qfs: 'abc' is not a JPEG quality in 1..100"),
    ("train_qfs", "101", "--train_qfs: '101' is not a JPEG quality in 1..100"),
    ("lattice_qf", "0", "--lattice_qf: '0' is not a JPEG quality in 1..100"),
    ("epochs", "many", "--epochs: 'many' is not a whole number"),
    ("train_crop", "centre", "--train_crop: 'centre' is none of aligned, random, misaligned"),
    ("test_crops", "random16", "only aligned and misaligned crops take a grid of 16"),
    ("test_resaves", "twice", "--test_resaves: 'twice' is none of swap, common"),
    ("aug_fraction", "half", "--aug_fraction: 'half' is not a number"),
  ],
)
def test_a_wrong_flag_is_named_with_what_is_wrong(flag, text, message):
  with pytest.raises(config_lib.ConfigError) as error:
    config_lib.parse(flag, text)
  assert message in str(error.value) and "\n" not in str(error.value)


def test_no_lattice_has_one_spelling():
  unset = config_lib.make()
  given = config_lib.replace(unset, lattice_qf=config_lib.parse("lattice_qf", "none"))
  assert given == unset and given.jpeg.lattice_qf is None
  assert config_lib.default_workdir(given) == config_lib.default_workdir(unset)
  with pytest.raises(config_lib.ConfigError, match="lattice_qf=none"):
    config_lib.make(lattice_qf=0)


def test_bad_settings_are_refused():
  with pytest.raises(ValueError, match="train_crop"):
    config_lib.make(train_crop="centre")
  with pytest.raises(ValueError, match="1..100"):
    config_lib.make(test_qfs=(None, 101))
  with pytest.raises(ValueError, match="1..100"):
    config_lib.make(train_qfs=(90,), double_qfs=(120,))
  with pytest.raises(ValueError, match="needs train_qfs"):
    config_lib.make(double_qfs=(50,))
  with pytest.raises(ValueError, match="strategy"):
    config_lib.make(strategy="tpu")
  with pytest.raises(ValueError, match="recipe"):
    config_lib.make(recipe="magic")
  with pytest.raises(ValueError, match="select"):
    config_lib.make(select="best")
  with pytest.raises(ValueError, match="aug_fraction"):
    config_lib.make(aug_fraction=1.5)
  with pytest.raises(ValueError, match="cannot be combined"):
    config_lib.make(match_compression=True, train_qfs=(50,))
  with pytest.raises(config_lib.ConfigError, match="nope.py"):
    config_lib.load_preset("nope.py")
  with pytest.raises(config_lib.ConfigError, match="neither a file nor a preset.*default"):
    config_lib.load_preset("nope")


def test_default_workdir_names_the_settings():
  path = config_lib.default_workdir(
    config_lib.make(train_crop="aligned", lattice_qf=100, train_qfs=(50,), seed=3)
  )
  assert path == os.path.join("runs", "cameras_hpf_aligned_lattice100_qf50_seed3")


def test_training_label():
  config = config_lib.make(train_qfs=(90,), double_qfs=(50, 70))
  assert config.train_qf_label == "double50+70>90"
  assert config_lib.make(train_qfs=(50, 90)).train_qf_label == "50+90"
  assert config_lib.make(match_compression=True).train_qf_label == "matched"


def test_a_run_written_before_the_sections_still_loads(tmp_path):
  """config.json as runs wrote it before the nested config (flat, by flag
  name; tests/fixtures/flat_config.json is such a file, unedited)."""
  flat = json.loads((FIXTURES / "flat_config.json").read_text())
  assert isinstance(flat["task"], str)
  (tmp_path / "config.json").write_text(json.dumps(flat))
  config = config_lib.saved(str(tmp_path))
  read = {k: tuple(v) if isinstance(v, list) else v for k, v in flat.items()}
  added_since = {"image_size", "train_chain", "test_chains", "antialias", "antialias_filter"}
  assert read == {k: v for k, v in config.flat().items() if k not in added_since}
  assert config.task.image_size is None  # settings added since: their defaults
  assert (config.jpeg.train_chain, config.test.chains) == ("none", ())
  assert (config.antialias, config.antialias_filter) == ("none", 4)
  # Written again in this version's form, and read back the same.
  assert config_lib.Config.from_json(config.to_json()) == config
  assert isinstance(json.loads(config.to_json())["task"], dict)


def test_an_unreadable_config_is_one_line(tmp_path):
  (tmp_path / "config.json").write_text("{not json")
  with pytest.raises(config_lib.ConfigError, match="cannot be read as a run's config"):
    config_lib.saved(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="not a run directory"):
    config_lib.saved(str(tmp_path / "absent"))


def test_config_loads_without_tensorflow():
  """Flags are checked before TensorFlow starts: the config imports none of it."""
  code = (
    "import sys; from tfjpeg import config; config.load_preset('default'); "
    "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
  )
  out = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
  ).stdout
  assert out.strip() == "False False"


def test_sections_are_frozen():
  config = config_lib.make()
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.jpeg.train_crop = "aligned"  # type: ignore[misc]  # the point of the test


def test_every_preset_loads_starts_with_its_command_and_can_run():
  """Each configs/ file: its docstring opens with the command that runs it,
  and every config it makes passes the checks a run starts with."""
  for function in ("get_config", "get_study"):
    for name in config_lib.preset_names(function):
      path = config_lib.preset_path(name)
      text = pathlib.Path(path).read_text()
      assert "bin/" in text.split('"""')[1].split("\n\n")[1], f"{name}: no command up front"
      made = config_lib.load_preset(name, function)
      configs = [made] if function == "get_config" else [c for _, c in made.runs]
      assert configs, name
      for config in configs:
        config_lib.check_runnable(config)


def test_the_chain_presets_name_their_sources():
  wang = config_lib.load_preset("wang2020")
  assert wang.jpeg.train_chain == "wang2020_blur_jpeg_0.5" and wang.schedule.learning_rate == 1e-4
  study = config_lib.load_preset("resize", "get_study")
  trained = {c.jpeg.train_chain for _, c in study.runs}
  assert trained == {"none", "resize:0.5..1.5@0.5>jpeg:65..100@0.5"}
  assert {c.task.name for _, c in study.runs} == {"cameras", "real_history", "shapes"}


def test_a_chain_that_leaves_every_image_smaller_than_the_patch_is_refused_at_the_start():
  """A crop that always applies bounds the size as a fixed resize does."""
  from tfjpeg.codec import chain_syntax  # pylint: disable=g-import-not-at-top

  assert chain_syntax.largest_output(chain_syntax.parse("crop:100")) == (100, 100)
  assert chain_syntax.largest_output(chain_syntax.parse("crop:80..120x90>jpeg:75")) == (120, 90)
  assert chain_syntax.largest_output(chain_syntax.parse("crop:100@0.5")) is None
  assert chain_syntax.largest_output(chain_syntax.parse("crop:100>resize:2")) is None
  for flag in ("train_chain", "test_chains"):
    value = "crop:100" if flag == "train_chain" else ("crop:100",)
    config = config_lib.make(patch_size=128, **{flag: value})
    with pytest.raises(ConfigError, match=rf"^--{flag}: crop:100 leaves images of at most 100x100"):
      config_lib.check_runnable(config)
  config_lib.check_runnable(config_lib.make(patch_size=128, train_chain="crop:100@0.5"))
  config_lib.check_runnable(config_lib.make(patch_size=96, train_chain="crop:100"))
