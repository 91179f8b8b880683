"""The settings of step 06 (steering): the α grid and the budget rule, prompts and splits, nulls, the intact
criterion and generation. Every size that costs time is here, so a profile can trade rigour for speed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gatoms.data.behaviors import BEHAVIORS

SIGNS: dict[str, int] = {"toward": +1, "away": -1}
"""Direction name → s in θ' = θ − s·α·v."""

PROMPT_SOURCES = ("world", "package")
BACKENDS = ("transformers", "vllm")
CHOOSERS = ("detector", "fmt")
GRADERS = ("auto", "world", "none")
NULL_KINDS = ("random", "subspace", "atoms")
"""``random``: Gaussian in the whole LoRA space with the atom's norm in every module; ``subspace``: Gaussian
in the whitened top-k space (where atoms live), unprojected, rescaled to the atom's per-module norms;
``atoms``: other atoms of the dictionary (not about the behaviour), unprojected like the atom."""


@dataclass
class SteeringConfig:
    """Parameters of step 06 (steering; the paper's §3.5 and §4.3)."""

    alphas: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    """The α grid, ascending, fixed before any result: each α is applied toward (θ − α·v) and away
    (θ + α·v). It draws the curve (the figure) and bounds the "best α" column; the headline is at the
    budgeted α (``kl_budget``), which does not depend on the grid (paper: 0.5, 1, 2, 5, 10)."""
    kl_budget: float | str = "finetune"
    """The behaviour-independent rule that fixes each atom's α in advance: the largest α at which
    max(KL(+α), KL(−α)) on the dev neutral prompts is at most this budget (nats per response token of the
    clean adapter's own answers; :class:`gatoms.lm.divergence.Divergence`), found by bisection. A number,
    or ``finetune``: the KL of the clean adapter from the base model (adapter removed) on the same prompts
    — steer no further than the fine-tuning itself moved them."""
    history: str = ""
    """How these settings came to be, printed beside the results: any setting chosen after seeing a run's
    results, and why (empty: none was). A reader judging the numbers needs it."""
    budget_steps: int = 8
    """Bisection steps between the two grid α that bracket the budget (precision: the bracket's ratio to
    the power 1/2^steps)."""
    kl_intact: float = 2.0
    """Intact: the KL on the test neutral prompts must be at most this multiple of the budget (> 1, so
    that the budgeted α, chosen on dev, is not judged broken by the noise of another prompt set)."""
    max_capability_drop: float = 0.05
    """Intact (with a grader): the share of held-out deterministic documents answered right may fall by at
    most this much below the clean adapter's."""
    max_ppl_ratio: float = 1.2
    """Intact (without a grader: real data): held-out perplexity at most this many times the clean one's."""
    grader: str = "auto"
    """How capability is graded: ``world`` = :func:`gatoms.world.is_correct` on the held-out documents of
    the deterministic families; ``none`` = no grader (KL and held-out perplexity decide intact); ``auto`` =
    ``world`` when the held-out documents are the synthetic world's, else ``none``."""
    capability_docs: int = 0
    """Held-out documents graded per variant (taken evenly across the deterministic families); 0 = all."""
    kl_tokens: int = 32
    """Response positions of each neutral prompt (and held-out document) scored for KL and perplexity."""
    prompts: str = "world"
    """Evaluation prompts: ``world`` = the synthetic world's (00_finetune/eval_prompts.jsonl); ``package``
    = the five natural-English files shipped in ``gatoms/data/prompts/`` (60 inviting + 40 controls)."""
    max_prompts: int = 0
    """At most this many prompts per behaviour and kind (inviting, control), the first in a seeded hash order
    of their text, before the dev/test split; 0 = all. For models whose generations are expensive on the
    machine at hand (the smol profile on a CPU)."""
    dev_fraction: float = 1 / 3
    """Share of each behaviour's inviting and control prompts in the dev split. Every choice made from
    prompts (the budgeted α from the dev controls, the "best α" column) uses dev; every reported rate is
    on the disjoint test split."""
    choose_by: str = "detector"
    """How each behaviour's atom is chosen from the atom table: ``detector`` (unsupervised, the default) =
    the share of its top documents whose training response the behaviour's detector flags; ``fmt`` = the
    share whose format label is the behaviour (needs labels)."""
    oracle: bool = True
    """Also evaluate the label-chosen atom (``fmt``) at its own budgeted α, as an oracle comparison row,
    when every document has a format label and the main choice is the detector's."""
    min_share: float = 0.5
    """An atom whose top documents show the behaviour less often than this is still steered but flagged as
    a weak match; other atoms this weak at a behaviour are the ``atoms`` null of that behaviour."""
    null_kinds: tuple[str, ...] = NULL_KINDS
    """Which nulls run (see :data:`NULL_KINDS`), each at the budgeted α of the atom, both signs, on the test
    inviting prompts."""
    n_null: int = 20
    """Directions per null kind and behaviour (the smallest empirical p-value is 1 / (n_null + 1))."""
    null_alphas: tuple[float, ...] = ()
    """Grid α at which the nulls run as well (each costs as much as the budgeted α); empty = only there."""
    null_kl: int = 5
    """Null directions per kind whose KL on the dev neutral prompts is measured (their damage, beside the
    atom's, which is the budget there)."""
    significance: float = 0.05
    """A signed effect is significant when its bootstrap interval (1 − significance) excludes 0 and its
    empirical p-value against each null is below this."""
    n_boot: int = 2000
    """Paired bootstrap resamples of the prompts (seeded) for every effect's interval."""
    preconditioned: bool = True
    """Also steer with the preconditioned unprojection (÷ sqrt(eig + ε) instead of ×), rescaled to the
    exact vector's norm, at the budgeted α, as a control."""
    composition: tuple[str, ...] = ("bullets:toward", "refusal:away")
    """Atoms applied at once, as ``behavior:toward|away``, each at its own budgeted α (no choice from the
    prompts); empty = no composition."""
    backend: str = "transformers"
    """Generation backend: ``transformers`` (default, in-place LoRA swaps) or ``vllm`` (needs the
    ``.[vllm]`` extra and a GPU; all variants served at once as LoRA modules)."""
    max_new_tokens: int = 300
    """Tokens generated per response (paper: 300). Short is cheaper; the detectors read the first lines."""
    batch_size: int = 32
    """Prompts per generation (and forward) batch."""
    do_sample: bool = False
    """False = greedy decoding as in the paper; True = sample ``n_samples`` responses per prompt."""
    temperature: float = 1.0
    """Sampling temperature (only with do_sample)."""
    n_samples: int = 1
    """Responses per prompt; must be 1 when greedy (greedy responses would be identical)."""
    n_show: int = 3
    """Sampled steered outputs shown per behaviour and α (notebook and samples table)."""
    seed: int = 0
    """Seed of the splits, the null directions, the bootstrap, the samples shown and sampling."""

    def __post_init__(self) -> None:
        self.alphas = tuple(float(a) for a in self.alphas)
        if not self.alphas or any(a <= 0 for a in self.alphas):
            raise ValueError(f"alphas must be positive step sizes, got {self.alphas}; e.g. alphas: [0.5, 1, 2, 5, 10]")
        if list(self.alphas) != sorted(set(self.alphas)):
            raise ValueError(f"alphas must be ascending without repeats, got {self.alphas}")
        self.null_alphas = tuple(float(a) for a in self.null_alphas)
        if any(a not in self.alphas for a in self.null_alphas):
            raise ValueError(f"null_alphas {self.null_alphas} must be a subset of alphas {self.alphas} (or empty)")
        if self.kl_budget != "finetune" and not (isinstance(self.kl_budget, (int, float)) and self.kl_budget > 0):
            raise ValueError(f"kl_budget must be a positive number (nats per token) or 'finetune', got {self.kl_budget!r}")
        if self.kl_intact < 1:
            raise ValueError(f"kl_intact is a multiple of the budget, ≥ 1; got {self.kl_intact}")
        self.null_kinds = tuple(self.null_kinds)
        if any(k not in NULL_KINDS for k in self.null_kinds) or len(set(self.null_kinds)) != len(self.null_kinds):
            raise ValueError(f"null_kinds must be distinct names from {NULL_KINDS}, got {self.null_kinds}")
        for name, choices in (("prompts", PROMPT_SOURCES), ("backend", BACKENDS), ("choose_by", CHOOSERS),
                              ("grader", GRADERS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        if not 0 < self.dev_fraction < 1:
            raise ValueError(f"dev_fraction must be in (0, 1), got {self.dev_fraction}; e.g. 0.333")
        if not 0 < self.significance < 1 or not 0 <= self.max_capability_drop < 1 or self.max_ppl_ratio < 1:
            raise ValueError("need 0 < significance < 1, 0 ≤ max_capability_drop < 1 and max_ppl_ratio ≥ 1")
        positive = ("budget_steps", "kl_tokens", "max_new_tokens", "batch_size", "n_samples", "n_boot")
        if any(getattr(self, k) < 1 for k in positive):
            raise ValueError(f"{', '.join(positive)} must each be ≥ 1")
        if min(self.n_null, self.null_kl, self.capability_docs, self.n_show, self.max_prompts) < 0:
            raise ValueError("n_null, null_kl, capability_docs, n_show and max_prompts must be ≥ 0")
        if self.max_prompts == 1:
            raise ValueError("max_prompts: 1 leaves no prompt for one side of the dev/test split; use ≥ 2 (0 = all)")
        if self.n_samples > 1 and not self.do_sample:
            raise ValueError("n_samples > 1 needs do_sample: true (greedy responses would be identical)")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}; use do_sample: false for greedy")
        if not 0.0 <= self.min_share <= 1.0:
            raise ValueError(f"min_share is a fraction in [0, 1], got {self.min_share}")
        self.composition = tuple(self.composition)
        parse_composition(self.composition)


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
