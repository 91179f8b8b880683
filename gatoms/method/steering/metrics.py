"""What step 06 records: :class:`SteeringMetrics` in ``metrics.json``, with one :class:`SteeredAtom` per
behaviour (and per oracle row). Rates are fractions, on the test split, at the budgeted α unless a field
says otherwise; every interval is a 95% (1 − significance) pair [lo, hi]."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gatoms.build.metrics import MetricsError, StepMetrics
from gatoms.method.steering.nulls import NullResult


def _build(cls: type, data: dict[str, Any], where: str, nested: dict[str, Any] | None = None) -> Any:
    """``cls(**data)`` with unknown keys refused and nested dataclasses rebuilt (``nested``: field → builder)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise MetricsError(f"{where}: unknown metrics {unknown} of {cls.__name__} for step 06_steering; the artifacts "
                           "were made by another version of gatoms — rebuild the step with FORCE=1")
    values = dict(data)
    for key, builder in (nested or {}).items():
        if values.get(key) is not None:
            values[key] = builder(values[key])
    try:
        return cls(**values)
    except TypeError as e:
        raise MetricsError(f"{where}: {e}; rebuild step 06_steering with FORCE=1") from e


@dataclass
class BestCell:
    """The best α of one sign among a set of variants, chosen on the dev split, measured on test."""

    alpha: float
    """Signed α of the chosen variant."""
    rate: float
    """Its rate on the test inviting prompts."""
    ci: list[float]
    """Wilson 95% interval of ``rate``."""
    dev_rate: float
    """The dev rate it was chosen by."""
    intact: bool


@dataclass
class CurvePoint:
    """One point of the atom's curve (test inviting prompts)."""

    alpha: float
    """Signed α (0: the clean adapter)."""
    rate: float
    ci: list[float]
    """Wilson 95% interval."""
    degenerate: float
    """Share of responses that are loops (:func:`gatoms.data.behaviors.degenerate`)."""
    kl: float
    """KL from the clean adapter on the test neutral prompts."""
    capability: float | None
    """Share of the graded held-out documents answered right (None without a grader)."""
    intact: bool


@dataclass
class SteeredAtom:
    """One atom steering one behaviour, at its budgeted α."""

    atom: int
    coherence: float
    chosen_by: str
    """``detector`` (unsupervised) or ``fmt`` (labels: the oracle)."""
    share: float
    """Share of the atom's top documents that show the behaviour (by ``chosen_by``)."""
    accepted: bool
    """share ≥ min_share."""
    alpha: float
    """The budgeted α*: the largest α with max over signs of the KL on the dev neutral prompts ≤ kl_budget."""
    budget_reached: bool
    """False when no α tried reached the budget (α* is then the largest tried)."""
    kl_dev: float
    """max(KL(+α*), KL(−α*)) on the dev neutral prompts (≤ kl_budget by construction)."""
    n: int
    """Test inviting prompts the rates and effects are over."""
    base: float
    """Clean adapter's rate."""
    base_ci: list[float]
    toward: float
    """Rate at +α* (θ − α*·v)."""
    toward_ci: list[float]
    away: float
    """Rate at −α*."""
    away_ci: list[float]
    signed: float
    """Signed effect (r(+α*) − r(−α*)) / 2, per prompt, averaged."""
    signed_ci: list[float]
    """Paired bootstrap interval over prompts."""
    symmetric: float
    """Symmetric effect mean(r(±α*)) − base: what both signs do alike (damage moves it)."""
    symmetric_ci: list[float]
    toward_shift: float
    """r(+α*) − base."""
    toward_shift_ci: list[float]
    away_shift: float
    """r(−α*) − base."""
    away_shift_ci: list[float]
    control_base: float
    """Rate on the test control prompts: clean, at +α*, at −α* (the behaviour where it was not invited)."""
    control_toward: float
    control_away: float
    degenerate_toward: float
    """Share of loops among the test inviting responses at +α* and at −α*."""
    degenerate_away: float
    intact: bool
    """Both signs at α* keep the model intact (:mod:`gatoms.method.steering.intact`)."""
    kl: float
    """max over signs of the KL on the test neutral prompts at α*."""
    capability: float | None
    """min over signs of the share of graded held-out documents answered right (None: no grader)."""
    capability_clean: float | None
    ppl_ratio: float
    """max over signs of held-out perplexity ÷ the clean adapter's."""
    intact_reasons: list[str]
    significant: bool
    """The signed effect's interval lies above 0."""
    beats_nulls: bool | None
    """The empirical p-value against every null run is below the significance level (None: no null run)."""
    steered: bool
    """intact, significant and beats every null: steered by this standard."""
    verdict: str
    """The same, in words, with what failed."""
    nulls: dict[str, NullResult] = field(default_factory=dict)
    """Null kind → the atom's signed effect among that null's at α* (empty for an oracle row)."""
    best_toward: BestCell | None = None
    """Highest-rate intact variant of positive α (grid ∪ {α*}), chosen on dev; None if none is intact."""
    best_away: BestCell | None = None
    best_toward_any: BestCell | None = None
    """The same choice ignoring intactness (marked in the report when it is not intact)."""
    best_away_any: BestCell | None = None
    curve: list[CurvePoint] = field(default_factory=list)
    """Every signed α evaluated, ascending (the figure)."""
    preconditioned: dict[str, Any] = field(default_factory=dict)
    """The preconditioned unprojection at ±α*: signed, signed_ci, kl."""
    same_atom: bool = False
    """Oracle rows: the labels chose the same atom as the detector (the numbers are the main row's)."""

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "") -> SteeredAtom:
        def cell(d: dict[str, Any]) -> BestCell:
            return _build(BestCell, d, where)

        return _build(cls, data, where, {
            "nulls": lambda d: {k: _build(NullResult, v, where) for k, v in d.items()},
            "best_toward": cell, "best_away": cell, "best_toward_any": cell, "best_away_any": cell,
            "curve": lambda pts: [_build(CurvePoint, p, where) for p in pts]})


@dataclass
class CompositionPart:
    """One atom of the composition: its behaviour alone at its α* and with the other atoms added."""

    direction: str
    """``toward`` or ``away``."""
    alpha: float
    """Its own budgeted α."""
    base: float
    alone: float
    """Its rate with this atom alone at that α and sign (test inviting prompts)."""
    combined: float
    """Its rate with every atom of the composition applied at once."""
    combined_ci: list[float]


@dataclass
class SteeringMetrics(StepMetrics):
    """Step 06's ``metrics.json``."""

    step: ClassVar[str] = "06_steering"
    behaviors: dict[str, SteeredAtom] = field(default_factory=dict)
    """Behaviour → its atom (chosen by ``choose_by``) at its budgeted α, with nulls, intactness, best cells
    and the curve. The headline numbers: ``alpha``, ``toward``/``away`` with intervals, ``signed``,
    ``signed_ci``, ``nulls[kind].percentile``, ``intact``, ``steered``."""
    oracle: dict[str, SteeredAtom] = field(default_factory=dict)
    """Behaviour → the label-chosen atom at its own budgeted α (comparison row; no nulls)."""
    composition: dict[str, CompositionPart] = field(default_factory=dict)
    composition_intact: bool | None = None
    """Whether the composition (every part at its α*) keeps the model intact (None: no composition)."""
    composition_kl: float | None = None
    steered: list[str] = field(default_factory=list)
    """Behaviours steered by this standard (intact, signed effect significant, every null beaten)."""
    not_steered: list[str] = field(default_factory=list)
    goals: dict[str, bool] = field(default_factory=dict)
    """The project's goals, each checked at the budgeted α with the model intact (none can be met by
    breaking the model)."""
    alphas: list[float] = field(default_factory=list)
    """The α grid."""
    kl_budget: float = 0.0
    """The KL budget that fixed every α* (nats per response token on the dev neutral prompts)."""
    kl_budget_rule: str = ""
    """How it was set: a number from the profile, or ``finetune`` (the fine-tuning's own KL there)."""
    history: str = ""
    """How the settings came to be (the profile's ``steering.history``): choices made after seeing results."""
    kl_max: float = 0.0
    """Intact: the largest KL on the test neutral prompts (kl_intact × the budget)."""
    intact_rule: str = ""
    """The intact criterion in words."""
    significance: float = 0.05
    null_kinds: list[str] = field(default_factory=list)
    n_null: int = 0
    null_alphas: list[float] = field(default_factory=list)
    """Grid α at which the nulls also ran (besides each atom's α*)."""
    kl_tokens: int = 0
    """Response positions per neutral prompt scored for the KL."""
    grader: str = "none"
    """``world`` (answers graded) or ``none`` (held-out perplexity)."""
    capability_clean: float | None = None
    """The clean adapter's share of graded held-out documents answered right."""
    n_capability: int = 0
    finetune_kl: float = 0.0
    """For scale: the KL of the clean adapter from the base model (adapter removed) on the test neutral
    prompts — how far the fine-tuning itself moved them."""
    n_prompts: dict[str, int] = field(default_factory=dict)
    """``dev_inviting``, ``dev_control``, ``test_inviting``, ``test_control`` → prompts over all behaviours."""
    n_responses: int = 0
    max_new_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    backend: str = "transformers"
    prompts: str = "world"

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "") -> SteeringMetrics:
        where = where or cls.__name__
        return _build(cls, data, where, {
            "behaviors": lambda d: {b: SteeredAtom.from_json(v, where) for b, v in d.items()},
            "oracle": lambda d: {b: SteeredAtom.from_json(v, where) for b, v in d.items()},
            "composition": lambda d: {b: _build(CompositionPart, v, where) for b, v in d.items()}})
