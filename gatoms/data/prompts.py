"""The natural-English steering evaluation prompts shipped with the package (``gatoms/data/prompts/``),
for profiles whose documents are not the synthetic world's (the paper profile, your own model)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from gatoms.data.behaviors import BEHAVIORS
from gatoms.data.documents import EvalPrompt


def package_prompt_file(behavior: str) -> Path:
    """``gatoms/prompts/<behavior>.jsonl`` (100 natural-English prompts: 60 inviting, 40 controls)."""
    if behavior not in BEHAVIORS:
        raise ValueError(f"unknown behaviour {behavior!r}; behaviours are {BEHAVIORS}")
    return Path(__file__).resolve().parent / "prompts" / f"{behavior}.jsonl"


def read_package_prompts(behaviors: Sequence[str] = BEHAVIORS) -> list[EvalPrompt]:
    """The shipped prompt files as :class:`gatoms.world.EvalPrompt` (checks 60 inviting + 40 controls each)."""
    out = []
    for b in behaviors:
        path = package_prompt_file(b)
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        kinds = [r.get("kind") for r in rows]
        if kinds.count("inviting") != 60 or kinds.count("control") != 40 or len(rows) != 100:
            raise ValueError(f"{path}: expected 60 inviting + 40 control prompts, found {len(rows)} lines "
                             f"({kinds.count('inviting')} inviting, {kinds.count('control')} control)")
        for i, r in enumerate(rows):
            if not isinstance(r.get("prompt"), str) or not r["prompt"].strip():
                raise ValueError(f"{path}:{i + 1}: missing prompt text")
            out.append(EvalPrompt(b, r["kind"], r["prompt"], r.get("id", f"{b}-{i:03d}")))
    return out
