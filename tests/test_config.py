"""tfjpeg.config: presets, overrides, flag parsing, and the JSON a run is resumed from."""

import dataclasses
import os

import pytest

from tfjpeg import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_default_preset_loads_and_survives_json():
  config = config_lib.load_preset(os.path.join(REPO, "configs", "default.py"))
  assert config.task == "cameras" and config.net == "hpf"
  changed = config_lib.override(config, synsets=("n01440764", "n02102040"),
                                train_qfs=(50, 90), test_qfs=(None, 50), lattice_qf=100,
                                double_qfs=(60,), test_first_qfs=(None, 70))
  assert config_lib.Config.from_json(changed.to_json()) == changed


def test_override_ignores_unset_flags():
  config = config_lib.Config(epochs=7)
  assert config_lib.override(config, epochs=None, net="bayar") == config_lib.Config(
      epochs=7, net="bayar")


def test_qf_parsing():
  assert config_lib.parse_qfs("none,50, 90") == (None, 50, 90)
  assert config_lib.parse_qfs("none", allow_none=False) == ()
  assert config_lib.parse_qfs("50,90", allow_none=False) == (50, 90)


def test_no_lattice_has_one_spelling():
  unset = config_lib.Config()
  given = dataclasses.replace(unset, **config_lib.parse_optional_ints(lattice_qf="none"))
  assert given == unset and given.lattice_qf is None
  assert config_lib.default_workdir(given) == config_lib.default_workdir(unset)
  assert config_lib.parse_optional_ints(lattice_qf="100") == dict(lattice_qf=100)
  with pytest.raises(ValueError, match="lattice_qf=none"):
    config_lib.Config(lattice_qf=0)


def test_optional_number_flags():
  assert config_lib.parse_optional_ints(lr_patience="none", stop_patience="4",
                                        shuffle_buffer="auto", epochs=None) == dict(
      lr_patience=None, stop_patience=4, shuffle_buffer=None)


def test_bad_settings_are_refused():
  with pytest.raises(ValueError, match="train_crop"):
    config_lib.Config(train_crop="centre")
  with pytest.raises(ValueError, match="1..100"):
    config_lib.Config(test_qfs=(None, 101))
  with pytest.raises(ValueError, match="1..100"):
    config_lib.Config(train_qfs=(90,), double_qfs=(120,))
  with pytest.raises(ValueError, match="needs train_qfs"):
    config_lib.Config(double_qfs=(50,))
  with pytest.raises(ValueError, match="strategy"):
    config_lib.Config(strategy="tpu")
  with pytest.raises(ValueError, match="recipe"):
    config_lib.Config(recipe="magic")
  with pytest.raises(ValueError, match="select"):
    config_lib.Config(select="best")
  with pytest.raises(FileNotFoundError, match="nope.py"):
    config_lib.load_preset("nope.py")


def test_split_settings_reach_the_task():
  options = config_lib.Config(test_fraction=0.3, validation_fraction=0.1,
                              synsets=("n01440764",), builtin_seed=4,
                              builtin_scenes=30).task_options()
  assert (options.test_fraction, options.validation_fraction) == (0.3, 0.1)
  assert (options.builtin_seed, options.num_scenes) == (4, 30)
  assert options.synsets == ("n01440764",)


def test_default_workdir_names_the_settings():
  path = config_lib.default_workdir(config_lib.Config(train_crop="aligned", lattice_qf=100,
                                                      train_qfs=(50,), seed=3))
  assert path == os.path.join("runs", "cameras_hpf_aligned_lattice100_qf50_seed3")


def test_double_compression_conditions_and_label():
  config = config_lib.Config(test_crops=("random",), test_qfs=(None, 90),
                             test_first_qfs=(None, 50), train_qfs=(90,), double_qfs=(50, 70))
  names = [c.name for c in config.conditions()]
  assert names == ["random_qfnone", "random_qf90", "random_qfnone_first50", "random_qf90_first50"]
  assert config.train_qf_label == "double50+70>90"
  assert config_lib.Config(train_qfs=(50, 90)).train_qf_label == "50+90"
