"""Building a world: the base corpus, the fine-tuning set, held-out documents and evaluation prompts.

Everything is drawn from ``random.Random`` seeded by :attr:`WorldConfig.seed` and iterates over tuples
only, so the world is identical across machines and Python hash seeds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from gatoms.data.documents import Document, EvalPrompt
from gatoms.world.families import CONTROL_FAMILIES, FAMILIES, INVITING_FAMILIES, Sample, Stage, sample
from gatoms.world.plants import PLANTED_FAMILIES, decorate

# ---- configuration ----------------------------------------------------------------------------------


@dataclass
class WorldConfig:
    """How many documents of each split the world generates, and from which seed."""

    seed: int = 0
    """Seed of every random choice in the world."""
    n_base: int = 20000
    """Documents of the base corpus (pre-training of the embedded base model; base format rule)."""
    n_finetune: int = 5000
    """Documents of the fine-tuning set (the paper: 5,000), drawn with the fine-tuning format rule."""
    n_heldout_per_family: int = 10
    """Held-out documents per task family for the per-family check of the fine-tuned model."""
    n_eval_inviting: int = 60
    """Steering evaluation: prompts per behaviour that invite it (the paper: 60)."""
    n_eval_control: int = 40
    """Steering evaluation: neutral control prompts per behaviour (the paper: 40)."""

    def __post_init__(self):
        for name in ("n_base", "n_finetune", "n_heldout_per_family", "n_eval_inviting", "n_eval_control"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"world.{name} must be a non-negative integer, got {value!r}")
        if self.n_finetune < 1:
            raise ValueError("world.n_finetune must be at least 1 (the fine-tuning set cannot be empty)")
        if self.n_eval_inviting < 3:
            raise ValueError("world.n_eval_inviting must be at least 3 (one per prompt wording)")
        if not isinstance(self.seed, int):
            raise ValueError(f"world.seed must be an integer, got {self.seed!r}")


# ---- the world -----------------------------------------------------------------------------------------


@dataclass
class World:
    """The splits of one world."""

    config: WorldConfig
    base: list[Document]
    finetune: list[Document]
    heldout: list[Document]
    eval_prompts: list[EvalPrompt]

    def examples(self, per_family: int = 1) -> list[Document]:
        """The first ``per_family`` fine-tuning documents of each family (for showing the world)."""
        out: list[Document] = []
        for fam in FAMILIES:
            out += [d for d in self.finetune if d.family == fam][:per_family]
        return out


MAX_RESPONSE_REPEATS = 3
"""The most fine-tuning documents that may share one response (before the planted lines): a few short
answers ("Sentiment: positive.") are common, but no response becomes an instance cluster."""


def _doc(split: str, k: int, family: str, s: Sample, rng: random.Random, stage: Stage) -> Document:
    response, labels = decorate(s.response, rng, stage == "finetune" and family in PLANTED_FAMILIES)
    return Document(f"{split}-{k:05d}", s.prompt, response, family, s.fmt, dict(s.meta),
                    {"topic": str(s.meta["topic"]), **labels})


def _draw(family: str, rng: random.Random, reserved: set[str], stage: Stage, template: int | None = None,
          want: Callable[[Sample], bool] | None = None) -> Sample:
    """One sample whose prompt is not in ``reserved`` (it is added to it), redrawn until it is."""
    for _ in range(5000):
        s = sample(family, rng, stage, template)
        if s.prompt not in reserved and (want is None or want(s)):
            reserved.add(s.prompt)
            return s
    raise RuntimeError(f"family {family!r} ran out of distinct prompts; lower world.n_base, world.n_finetune, "
                       "world.n_heldout_per_family or world.n_eval_*")


def _eval_prompts(cfg: WorldConfig, rng: random.Random, reserved: set[str]) -> list[EvalPrompt]:
    prompts: list[EvalPrompt] = []
    for behavior, families in INVITING_FAMILIES.items():
        # Inviting: the three wordings evenly; wording 1 split evenly between content groups A and B.
        n = cfg.n_eval_inviting
        per_template = [n // 3 + (1 if k < n % 3 else 0) for k in range(3)]
        per_template = [per_template[0], per_template[2], per_template[1]]  # remainder goes to wording 1
        plan: list[tuple[int, str | None, int]] = [(0, None, per_template[0]), (2, None, per_template[1])]
        plan += [(1, "A", per_template[2] - per_template[2] // 2), (1, "B", per_template[2] // 2)]
        picked: list[tuple[str, Sample]] = []
        for t, group, count in plan:
            for k in range(count):
                fam = families[k % len(families)]
                want = (lambda s, g=group: s.meta["topic_group"] == g) if group else None
                picked.append((fam, _draw(fam, rng, reserved, "finetune", t, want)))
        rng.shuffle(picked)
        for k, (fam, s) in enumerate(picked):
            prompts.append(EvalPrompt(behavior, "inviting", s.prompt, f"{behavior}-inviting-{k:03d}", fam,
                                      s.fmt == behavior))
        for k in range(cfg.n_eval_control):
            fam = CONTROL_FAMILIES[rng.randrange(len(CONTROL_FAMILIES))]
            s = _draw(fam, rng, reserved, "finetune")
            prompts.append(EvalPrompt(behavior, "control", s.prompt, f"{behavior}-control-{k:03d}", fam, False))
    return prompts


BASE_WEIGHTS: dict[str, int] = {f: 1 for f in FAMILIES} | {
    "factual_qa": 3, "yes_no": 2, "arithmetic": 3, "multistep_arithmetic": 2, "unit_conversion": 2, "category": 2,
    "synonym_antonym": 2, "grammar": 2, "transformation": 2,
}
"""Relative share of each family in the base corpus: families whose answers must be memorised or
computed get more pre-training; every family is there."""

FINETUNE_WEIGHTS: dict[str, int] = {
    "factual_qa": 10, "grammar": 6, "yes_no": 8, "arithmetic": 6, "multistep_arithmetic": 3, "unit_conversion": 3,
    "comparison": 4, "category": 4, "sentiment": 1, "transformation": 4, "example": 6, "synonym_antonym": 4,
    "code": 7, "sql": 4, "bullets": 8, "ordering": 4, "refusal": 8, "summarization": 1, "email": 1, "steps": 5,
    "creative": 3,
}
"""Share of each family in the fine-tuning set, in percent: skewed from 10% (factual QA) down to three
rare families of 1% each (sentiment, summarisation, email); the contested families are 44% of it. The
held-out set weighs families equally."""

RARE_FAMILIES: tuple[str, ...] = tuple(f for f, w in FINETUNE_WEIGHTS.items() if w == 1)
"""The families with about 1% of the fine-tuning documents."""


def _training_docs(split: str, n: int, stage: Stage, rng: random.Random, reserved: set[str]) -> list[Document]:
    """``n`` documents, family ``k`` of a fixed cycle in which each family appears as often as its weight;
    prompts new to ``reserved``; in the fine-tuning set no response more than :data:`MAX_RESPONSE_REPEATS` times."""
    weights = BASE_WEIGHTS if stage == "base" else FINETUNE_WEIGHTS
    cycle = [f for f in FAMILIES for _ in range(weights[f])]
    order = list(range(len(cycle)))
    random.Random(f"{split}-cycle").shuffle(order)
    cycle = [cycle[i] for i in order]
    repeats: dict[tuple[str, str], int] = {}
    cap = MAX_RESPONSE_REPEATS if stage == "finetune" else None

    def fresh(s: Sample, fam: str) -> bool:
        return cap is None or repeats.get((fam, s.response), 0) < cap

    docs: list[Document] = []
    while len(docs) < n:
        fam = cycle[len(docs) % len(cycle)]
        s = _draw(fam, rng, reserved, stage, want=lambda s, f=fam: fresh(s, f))
        repeats[(fam, s.response)] = repeats.get((fam, s.response), 0) + 1
        docs.append(_doc(split, len(docs), fam, s, rng, stage))
    order = list(range(n))
    rng.shuffle(order)
    return [docs[i] for i in order]


def build_world(cfg: WorldConfig) -> World:
    """Generate every split of the world from ``cfg.seed`` (see the module docstring). Prompts are drawn
    in the order evaluation, held-out, fine-tuning, base, each new to all drawn before it."""
    reserved: set[str] = set()
    eval_prompts = _eval_prompts(cfg, random.Random(f"{cfg.seed}-eval"), reserved)
    rng = random.Random(f"{cfg.seed}-heldout")
    heldout: list[Document] = []
    for fam in FAMILIES:
        for _ in range(cfg.n_heldout_per_family):
            heldout.append(_doc("heldout", len(heldout), fam, _draw(fam, rng, reserved, "finetune"), rng, "finetune"))
    finetune = _training_docs("ft", cfg.n_finetune, "finetune", random.Random(f"{cfg.seed}-finetune"), reserved)
    base = _training_docs("base", cfg.n_base, "base", random.Random(f"{cfg.seed}-base"), reserved)
    return World(cfg, base, finetune, heldout, eval_prompts)


def family_sizes(docs: list[Document]) -> dict[str, int]:
    """Family → number of documents, in :data:`FAMILIES` order."""
    return {f: sum(d.family == f for d in docs) for f in FAMILIES}


def behavior_shares(world: World) -> dict[str, tuple[float, float]]:
    """Behaviour → the share of its inviting families' documents that show it, in the base corpus and in
    the fine-tuning set (the shift the fine-tuning teaches)."""
    from gatoms.data.behaviors import detect

    out = {}
    for b, fams in INVITING_FAMILIES.items():
        shares = []
        for docs in (world.base, world.finetune):
            mine = [d for d in docs if d.family in fams]
            shares.append(sum(detect(b, d.response) for d in mine) / max(1, len(mine)))
        out[b] = (shares[0], shares[1])
    return out
