"""The settings of step 06 (steering): which α, prompts, backend and controls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gatoms.data.behaviors import BEHAVIORS

SIGNS: dict[str, int] = {"toward": +1, "away": -1}
"""Direction name → s in θ' = θ − s·α·v."""

PROMPT_SOURCES = ("world", "package")
BACKENDS = ("transformers", "vllm")
CHOOSERS = ("auto", "fmt", "detector")


@dataclass
class SteeringConfig:
    """Parameters of step 06 (steering; the paper's §3.5 and §4.3)."""

    alphas: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    """Step sizes α > 0, ascending. Each is applied toward (θ − α·v) and away (θ + α·v); with the clean
    adapter that is 2·len(alphas) + 1 variants per atom (paper: 0.5, 1, 2, 5, 10 → 11)."""
    prompts: str = "world"
    """Evaluation prompts: ``world`` = the synthetic world's held-out sets (00_finetune/eval_prompts.jsonl,
    60 inviting + 40 controls per behaviour); ``package`` = the five natural-English files shipped in
    ``gatoms/prompts/`` (100 prompts each; for the paper profile)."""
    backend: str = "transformers"
    """Generation backend: ``transformers`` (default, in-place LoRA swaps) or ``vllm`` (needs the
    ``.[vllm]`` extra and a GPU; all variants of an atom served at once as LoRA modules)."""
    max_new_tokens: int = 300
    """Tokens generated per response (paper: 300)."""
    batch_size: int = 32
    """Prompts per generation batch (transformers backend)."""
    do_sample: bool = False
    """False = greedy decoding as in the paper; True = sample ``n_samples`` responses per prompt."""
    temperature: float = 1.0
    """Sampling temperature (only with do_sample)."""
    n_samples: int = 1
    """Responses per prompt; must be 1 when greedy (greedy responses would be identical)."""
    seed: int = 0
    """Seed of sampling and of the random-direction controls."""
    choose_by: str = "auto"
    """How the atom of a behaviour is chosen from the atom table: ``fmt`` = share of its top documents
    whose format label is the behaviour; ``detector`` = share whose response the behaviour's detector
    flags (works on unlabelled data); ``auto`` = fmt when every document has a format label, else detector."""
    min_share: float = 0.5
    """An atom whose top documents show the behaviour less often than this is still steered but flagged
    as a weak match (reported in the notebook and in metrics)."""
    random_seeds: int = 2
    """Random-direction controls per behaviour: directions with the atom vector's norm in every module."""
    control_alphas: tuple[float, ...] | None = None
    """α (a subset of ``alphas``) at which the random and preconditioned controls run, both signs;
    None = every α of the grid."""
    preconditioned: bool = True
    """Also steer with the preconditioned unprojection (÷ sqrt(eig + ε) instead of ×), rescaled to the
    exact vector's norm, as a control."""
    composition: tuple[str, ...] = ("bullets:toward", "refusal:away")
    """Atoms applied at once, as ``behavior:toward|away`` (each at the α where it alone did best on its
    inviting prompts); empty = no composition control."""

    def __post_init__(self) -> None:
        self.alphas = tuple(float(a) for a in self.alphas)
        if not self.alphas or any(a <= 0 for a in self.alphas):
            raise ValueError(f"alphas must be positive step sizes, got {self.alphas}; e.g. alphas: [0.5, 1, 2, 5, 10]")
        if list(self.alphas) != sorted(set(self.alphas)):
            raise ValueError(f"alphas must be ascending without repeats, got {self.alphas}")
        if self.control_alphas is not None:
            self.control_alphas = tuple(float(a) for a in self.control_alphas)
            missing = [a for a in self.control_alphas if a not in self.alphas]
            if missing or not self.control_alphas:
                raise ValueError(f"control_alphas {self.control_alphas} must be a non-empty subset of alphas "
                                 f"{self.alphas}; or null for the whole grid")
        if self.prompts not in PROMPT_SOURCES:
            raise ValueError(f"prompts must be one of {PROMPT_SOURCES}, got {self.prompts!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.choose_by not in CHOOSERS:
            raise ValueError(f"choose_by must be one of {CHOOSERS}, got {self.choose_by!r}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be ≥ 1")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be ≥ 1, got {self.n_samples}")
        if self.n_samples > 1 and not self.do_sample:
            raise ValueError("n_samples > 1 needs do_sample: true (greedy responses would be identical)")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}; use do_sample: false for greedy")
        if not 0.0 <= self.min_share <= 1.0:
            raise ValueError(f"min_share is a fraction in [0, 1], got {self.min_share}")
        if self.random_seeds < 0:
            raise ValueError(f"random_seeds must be ≥ 0, got {self.random_seeds}")
        self.composition = tuple(self.composition)
        parse_composition(self.composition)

    @property
    def grid(self) -> tuple[float, ...]:
        """The α at which the controls run."""
        return self.control_alphas if self.control_alphas is not None else self.alphas


def parse_composition(items: Sequence[str]) -> list[tuple[str, int]]:
    """``("bullets:toward", "refusal:away")`` → ``[("bullets", +1), ("refusal", -1)]``."""
    out: list[tuple[str, int]] = []
    for item in items:
        behavior, _, direction = str(item).partition(":")
        if behavior not in BEHAVIORS or direction not in SIGNS:
            raise ValueError(f"composition entry {item!r}: write behavior:toward or behavior:away with a "
                             f"behavior in {BEHAVIORS}")
        out.append((behavior, SIGNS[direction]))
    if len({b for b, _ in out}) != len(out):
        raise ValueError(f"composition {tuple(items)} names a behaviour twice")
    if len(out) == 1:
        raise ValueError("composition needs at least two atoms (or none)")
    return out
