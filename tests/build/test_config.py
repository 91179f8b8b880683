"""Profiles: the shipped ones validate; unknown sections and keys are errors naming the valid ones; bad
values and files give messages that say what to change; a dropped-in profile file just works; the
papermill parameters of a step are exactly ``profile``, ``force`` and the step's sections."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from gatoms.__main__ import main as cli
from gatoms.build import config, paths

SHIPPED = ("smoke", "tiny", "paper")


@dataclass(frozen=True)
class ToyConfig:
    """A stand-in section config for these tests."""

    n: int = 3
    """How many."""
    sizes: tuple[int, ...] = (1, 2)
    """Some sizes (YAML lists become tuples)."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be ≥ 1, got {self.n}; set toy.n to a positive count")


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(config.SECTIONS, "toy", f"{__name__}:ToyConfig")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A throwaway repository root (configs/ and notebooks/) so profiles can be dropped in."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setenv("GATOMS_ROOT", str(tmp_path))
    return tmp_path


def write_profile(repo, name: str, text: str):
    path = repo / "configs" / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("profile", SHIPPED)
def test_shipped_profiles_validate(profile):
    built = config.validate_profile(profile)
    assert set(built) == set(config.SECTIONS)
    for section, cfg in built.items():
        assert dataclasses.is_dataclass(cfg), section


@pytest.mark.parametrize("profile", SHIPPED)
def test_shipped_profiles_name_only_known_sections(profile):
    assert set(config.read_profile(profile)) <= set(config.SECTIONS)


def test_every_section_belongs_to_exactly_one_step():
    owners = [s for sections in config.STEP_SECTIONS.values() for s in sections]
    assert sorted(owners) == sorted(config.SECTIONS)
    assert set(config.STEP_SECTIONS) == set(paths.STEPS)


def test_unknown_key_is_an_error_naming_the_valid_keys(toy):
    with pytest.raises(config.ConfigError, match=r"unknown key\(s\) \['m'\]; valid keys: \['n', 'sizes'\]"):
        config.build_section("toy", {"m": 4})


def test_bad_value_says_what_to_change(toy):
    with pytest.raises(config.ConfigError, match=r"section 'toy': n must be ≥ 1, got 0; set toy.n"):
        config.build_section("toy", {"n": 0})


def test_yaml_lists_become_tuples_and_missing_keys_take_defaults(toy):
    assert config.build_section("toy", {"sizes": [4, 5]}) == ToyConfig(n=3, sizes=(4, 5))
    assert config.build_section("toy", None) == ToyConfig()


def test_unknown_section_is_an_error(repo, toy):
    write_profile(repo, "mine", "toy: {n: 2}\nwrold: {seed: 1}\n")
    with pytest.raises(config.ConfigError, match=r"unknown section\(s\) \['wrold'\]; valid sections: .*'world'"):
        config.read_profile("mine")


def test_section_must_be_a_mapping(repo, toy):
    write_profile(repo, "mine", "toy: 3\n")
    with pytest.raises(config.ConfigError, match="section 'toy' must be a mapping"):
        config.read_profile("mine")


def test_invalid_yaml_names_the_file(repo):
    path = write_profile(repo, "mine", "toy: {n: [1,\n")
    with pytest.raises(config.ConfigError, match=f"{path}: not valid YAML"):
        config.read_profile("mine")


def test_missing_profile_lists_the_available_ones(repo):
    write_profile(repo, "alpha", "")
    write_profile(repo, "beta", "")
    with pytest.raises(config.ConfigError, match=r"no profile file .*gamma.yaml; available profiles: \['alpha', 'beta'\]"):
        config.read_profile("gamma")


def test_a_dropped_in_profile_is_used_with_overrides_on_top(repo, toy):
    write_profile(repo, "mine", "# my own profile\ntoy: {n: 7}\n")
    assert config.load_section("mine", "toy") == ToyConfig(n=7)
    assert config.load_section("mine", "toy", {"sizes": [9]}) == ToyConfig(n=7, sizes=(9,))
    with pytest.raises(config.ConfigError, match="profile 'mine': section 'toy': unknown key"):
        config.load_section("mine", "toy", {"typo": 1})


def test_empty_profile_means_every_default(repo, toy):
    write_profile(repo, "empty", "# nothing\n")
    assert config.read_profile("empty") == {}
    assert config.load_section("empty", "toy") == ToyConfig()


@pytest.mark.parametrize("profile", SHIPPED)
@pytest.mark.parametrize("step", paths.STEPS)
def test_step_parameters_are_profile_force_and_the_steps_sections(profile, step):
    params = config.step_parameters(profile, step, force=True)
    assert list(params) == ["profile", "force", *config.STEP_SECTIONS[step]]
    assert params["profile"] == profile and params["force"] is True
    raw = config.read_profile(profile)
    for section in config.STEP_SECTIONS[step]:
        assert params[section] == raw.get(section, {})


def test_step_parameters_refuse_a_bad_section_before_papermill_sees_it(repo, monkeypatch, toy):
    monkeypatch.setitem(config.STEP_SECTIONS, "03_atoms", ("toy",))
    write_profile(repo, "mine", "toy: {n: 2, extra: 1}\n")
    with pytest.raises(config.ConfigError, match="unknown key"):
        config.step_parameters("mine", "03_atoms")


def test_check_command(repo, toy, capsys):
    write_profile(repo, "mine", "toy: {n: 0}\n")
    assert cli(["check", "--profile", "mine"]) == 2
    assert "n must be ≥ 1" in capsys.readouterr().err
    assert cli(["check", "--profile", "nope"]) == 2
    assert "available profiles" in capsys.readouterr().err


def test_seed_profile_offsets_every_seed():
    from gatoms.build.config import ConfigError, read_profile, split_seed, validate_profile

    base, shifted = read_profile("tiny"), read_profile("tiny@seed2")
    assert split_seed("tiny@seed2") == ("tiny", 2) and split_seed("tiny") == ("tiny", 0)
    assert shifted["world"]["seed"] == base["world"]["seed"] + 2
    assert shifted["atoms"]["seed"] == base["atoms"]["seed"] + 2 == 44
    assert shifted["finetune"]["seed"] == base["finetune"]["seed"] + 2
    cfg = validate_profile("tiny@seed2")
    assert cfg["model"].seed == 2 and cfg["steering"].seed == 2 and cfg["extract"].fisher_seed == 2
    assert cfg["ekfac"] == validate_profile("tiny")["ekfac"]  # no seed there: unchanged
    assert validate_profile("tiny@seed0") == validate_profile("tiny")
    for bad in ("tiny@seed", "tiny@seedx", "@seed1"):
        with pytest.raises(ConfigError, match="@seed<K>"):
            read_profile(bad)
