"""Profiles: one YAML file per profile, one section per step, one dataclass per section.

``configs/<profile>.yaml`` looks like::

    world: {seed: 0, n_finetune: 5000}
    finetune: {lora_r: 8, epochs: 2}
    extract: {dtype: float32}
    ...

Each section is validated by its step's config dataclass (defined next to the code that uses it, e.g.
:class:`gatoms.method.ekfac.EkfacConfig`): an unknown key is an error that names the valid ones, and each
dataclass's ``__post_init__`` checks values. Each notebook has one ``parameters`` cell holding
``profile``, ``force`` and the sections it owns (:data:`STEP_SECTIONS`); the runner passes them from the
YAML file, and a notebook run by hand reads the same YAML and applies its parameters as overrides.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import typing
from pathlib import Path
from typing import Any

import yaml

from gatoms.build import paths, steps

SECTIONS: dict[str, str] = {
    "world": "gatoms.world.builder:WorldConfig",
    "model": "gatoms.lm.model:ModelConfig",
    "finetune": "gatoms.lm.finetune:FinetuneConfig",
    "extract": "gatoms.method.gradients.config:ExtractConfig",
    "ekfac": "gatoms.method.ekfac.eigenbasis:EkfacConfig",
    "atoms": "gatoms.method.atoms:AtomsConfig",
    "coherence": "gatoms.method.coherence:CoherenceConfig",
    "ablations": "gatoms.method.ablations:AblationsConfig",
    "steering": "gatoms.method.steering.config:SteeringConfig",
}
"""Section name → the dataclass that validates it (imported lazily)."""

STEP_SECTIONS: dict[str, tuple[str, ...]] = {s.name: s.sections for s in steps.TABLE}
"""Which profile sections are parameters of which notebook (from the step table)."""

COMMON_PARAMETERS: tuple[str, ...] = ("profile", "force")
"""Parameters every notebook has besides its sections."""


class ConfigError(ValueError):
    """A profile or section that cannot be used; the message says what to change."""


def section_class(section: str) -> type:
    if section not in SECTIONS:
        raise ConfigError(f"unknown profile section {section!r}; valid sections: {', '.join(SECTIONS)}")
    module, name = SECTIONS[section].split(":")
    return getattr(importlib.import_module(module), name)


def build_section(section: str, values: dict[str, Any] | None, where: str = "") -> Any:
    """Validate ``values`` against the section's dataclass and return an instance.

    Unknown keys raise :class:`ConfigError` naming the valid fields; missing keys take defaults.
    """
    cls = section_class(section)
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"{where}section {section!r}: unknown key(s) {unknown}; valid keys: {sorted(names)}"
        )
    hints = typing.get_type_hints(cls)
    for key, value in list(values.items()):
        # YAML has no tuples: coerce lists where the field is a tuple.
        if isinstance(value, list) and "tuple" in str(hints.get(key, "")):
            values[key] = tuple(value)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}section {section!r}: {e}") from e


SEED_SUFFIX = "@seed"
"""``<profile>@seed<K>``: the profile with every seed of every section offset by K (``make seeds``); its
artifacts go to ``artifacts/<profile>@seed<K>/``."""


def split_seed(profile: str) -> tuple[str, int]:
    """``"tiny@seed2"`` → ``("tiny", 2)``; a profile without the suffix → ``(profile, 0)``."""
    name, sep, k = str(profile).partition(SEED_SUFFIX)
    if not sep:
        return str(profile), 0
    if not k.isdigit() or not name:
        raise ConfigError(f"profile {profile!r}: write <profile>{SEED_SUFFIX}<K> with K a non-negative integer, "
                          f"e.g. tiny{SEED_SUFFIX}1")
    return name, int(k)


def offset_seeds(raw: dict[str, dict[str, Any]], offset: int) -> dict[str, dict[str, Any]]:
    """The sections with every seed field (``seed``, ``*_seed``) of every section's dataclass moved by
    ``offset`` from the profile's value or the field's default (world, model, fine-tuning, dictionary,
    maps, baselines and steering seeds together)."""
    out = {name: dict(values) for name, values in raw.items()}
    for section in SECTIONS:
        for f in dataclasses.fields(section_class(section)):
            if f.name == "seed" or f.name.endswith("_seed"):
                values = out.setdefault(section, {})
                values[f.name] = int(values.get(f.name, f.default)) + offset
    return out


def read_profile(profile: str | Path) -> dict[str, dict[str, Any]]:
    """Read ``configs/<profile>.yaml`` (or a path) as a dict of sections, checking section names;
    ``<profile>@seed<K>`` reads ``configs/<profile>.yaml`` and offsets its seeds (:func:`offset_seeds`)."""
    base, offset = split_seed(str(profile)) if not str(profile).endswith((".yaml", ".yml")) else (str(profile), 0)
    if offset or base != str(profile):
        return offset_seeds(read_profile(base), offset)
    path = Path(profile) if str(profile).endswith((".yaml", ".yml")) else paths.config_file(str(profile))
    if not path.exists():
        available = sorted(p.stem for p in (paths.root() / "configs").glob("*.yaml"))
        raise ConfigError(f"no profile file {path}; available profiles: {available}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; valid sections: {list(SECTIONS)}")
    for name, values in raw.items():
        if values is not None and not isinstance(values, dict):
            raise ConfigError(f"{path}: section {name!r} must be a mapping, got {values!r}")
    return {name: dict(values or {}) for name, values in raw.items()}


def load_section(profile: str, section: str, overrides: dict[str, Any] | None = None) -> Any:
    """The validated config of one section: the profile's YAML values, then ``overrides`` on top."""
    values = read_profile(profile).get(section, {})
    values.update(overrides or {})
    return build_section(section, values, where=f"profile {profile!r}: ")


def validate_profile(profile: str) -> dict[str, Any]:
    """Build every section of a profile (defaults for absent ones); raises on the first problem."""
    raw = read_profile(profile)
    return {s: build_section(s, raw.get(s), where=f"profile {profile!r}: ") for s in SECTIONS}


def step_parameters(profile: str, step: str, force: bool = False) -> dict[str, Any]:
    """The papermill parameters of one step's notebook, from the profile file."""
    raw = read_profile(profile)
    for section in STEP_SECTIONS[step]:
        build_section(section, raw.get(section), where=f"profile {profile!r}: ")
    params: dict[str, Any] = {"profile": profile, "force": force}
    params.update({s: raw.get(s, {}) for s in STEP_SECTIONS[step]})
    return params


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as plain JSON-able data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
