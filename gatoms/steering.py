"""Steering with atoms (paper §4.3, Table 2, Figure 2; METHOD.md §5–6).

An atom d (a unit vector in the whitened EKFAC space, M·k entries) is unprojected by
:func:`gatoms.ekfac.unproject` into v ∈ R^D, a direction of the flat LoRA parameters (the order of
:class:`gatoms.layout.Layout`). Steering perturbs the LoRA factors A and B separately:

    θ' = θ − s·α·v          s = +1 "toward" (a training step on the atom's top documents), −1 "away"

so the change of the effective weight B·A is bilinear in α. For each atom this gives 2·len(alphas)
steered adapters plus the clean one (11 variants for the paper's grid 0.5, 1, 2, 5, 10), written in
peft's own format (:func:`export_adapter`, loadable by ``PeftModel.from_pretrained`` and by vLLM) or
swapped into a loaded model in place (:func:`apply_weights`, the transformers backend's fast path).

This module also chooses the atom of each behaviour from the atom table (:func:`choose_atoms` — never
hard-coded ids), draws the random-direction control (:func:`random_direction`), and turns detector hits
into rates with Wilson intervals, the Table 2 analogue and the Figure 2 analogue.

Usage (what ``notebooks/06_steering.ipynb`` does)::

    v = ekfac.unproject(dictionary.atoms[atom], basis)              # (D,)
    variants = steering_variants("bullets", v, cfg.alphas)           # clean + 10 steered
    export_variants(clean_adapter_dir, out_dir, layout, variants)    # peft folders (for vLLM)
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gatoms.behaviors import BEHAVIORS
from gatoms.layout import Layout

log = logging.getLogger(__name__)


SIGNS: dict[str, int] = {"toward": +1, "away": -1}
"""Direction name → s in θ' = θ − s·α·v."""

KINDS: tuple[str, ...] = ("inviting", "control", "all")
"""Prompt sets a rate is reported on: prompts that invite the behaviour, neutral controls, both."""

PAPER_TABLE2: dict[str, dict[str, Any]] = {
    "yes_no": {"atom": 415, "coherence": 0.647, "base": 0.39, "best_toward": 0.51, "best_away": 0.00},
    "code": {"atom": 64, "coherence": 0.201, "base": 0.42, "best_toward": 0.58, "best_away": 0.28},
    "refusal": {"atom": 161, "coherence": 0.111, "base": 0.50, "best_toward": 0.55, "best_away": 0.00},
    "bullets": {"atom": 469, "coherence": 0.103, "base": 0.33, "best_toward": 0.94, "best_away": 0.00},
    "numbered": {"atom": 299, "coherence": 0.103, "base": 0.58, "best_toward": 0.59, "best_away": 0.08},
}
"""The paper's Table 2 (rates over all 100 prompts, inviting and controls mixed; best over α and both
signs, since its atoms were not sign-oriented), printed beside ours."""

PROMPT_SOURCES = ("world", "package")
BACKENDS = ("transformers", "vllm")
CHOOSERS = ("auto", "fmt", "detector")


# ---- config ----------------------------------------------------------------------------------------


@dataclass
class SteeringConfig:
    """Parameters of step 06 (steering). See METHOD.md §5–6."""

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


# ---- variants --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One adapter to generate with: θ' = θ − alpha·direction (alpha signed: > 0 toward, < 0 away).

    ``direction`` None is the clean adapter. ``path``, once exported, is a peft adapter folder holding
    exactly these weights (the vLLM backend needs it; the transformers backend uses the direction).
    """

    name: str
    """Unique, filesystem-safe name, e.g. ``bullets-toward-2``."""
    behavior: str | None = None
    """The behaviour whose atom this is (None for the clean adapter)."""
    direction: torch.Tensor | None = field(default=None, repr=False, compare=False)  # (D,)
    alpha: float = 0.0
    """Signed α: θ' = θ − alpha·direction."""
    kind: str = "atom"
    """``clean``, ``atom``, ``random<seed>``, ``preconditioned`` or ``composition``."""
    path: Path | None = None

    @property
    def sign(self) -> int:
        return int(np.sign(self.alpha))


def variant_name(behavior: str, kind: str, alpha: float) -> str:
    """``bullets-toward-2``, ``bullets-random1-away-0.5``, …; filesystem- and vLLM-safe."""
    if alpha == 0:
        return "clean"
    direction = "toward" if alpha > 0 else "away"
    prefix = behavior if kind == "atom" else f"{behavior}-{kind}"
    return f"{prefix}-{direction}-{abs(alpha):g}"


def clean_variant() -> Variant:
    return Variant(name="clean", kind="clean")


def steering_variants(
    behavior: str, v: torch.Tensor, alphas: Sequence[float], kind: str = "atom", clean: bool = True
) -> list[Variant]:
    """The clean adapter (if ``clean``) then θ − α·v (toward) and θ + α·v (away) for every α."""
    out = [clean_variant()] if clean else []
    for a in alphas:
        for s in (+1, -1):
            alpha = s * float(a)
            out.append(Variant(variant_name(behavior, kind, alpha), behavior, v, alpha, kind))
    return out


# ---- weights: in memory ----------------------------------------------------------------------------


def lora_weights(model: nn.Module, layout: Layout) -> dict[str, torch.Tensor]:
    """A detached copy of the model's current LoRA weights, keyed by layout module name."""
    return {k: w.detach().clone() for k, w in layout.weights(model).items()}


def steered_weights(
    clean: dict[str, torch.Tensor], layout: Layout, direction: torch.Tensor | None, alpha: float
) -> dict[str, torch.Tensor]:
    """θ' = θ − alpha·direction per module, computed in float32 and cast back to each weight's dtype."""
    if direction is None or alpha == 0:
        return {k: w.clone() for k, w in clean.items()}
    blocks = layout.unflatten(direction.detach().float().cpu())
    out = {}
    for m in layout:
        w = clean[m.name]
        out[m.name] = (w.float().cpu() - alpha * blocks[m.name]).to(dtype=w.dtype, device=w.device)
    return out


@torch.no_grad()
def apply_weights(model: nn.Module, layout: Layout, weights: dict[str, torch.Tensor]) -> None:
    """Copy LoRA weights into the model in place (no reload; the transformers backend's fast path)."""
    for name, w in layout.weights(model).items():
        if name not in weights:
            raise ValueError(f"no weight given for LoRA module {name}")
        if weights[name].shape != w.shape:
            raise ValueError(f"{name}: weight of shape {tuple(weights[name].shape)}, model has {tuple(w.shape)}")
        w.copy_(weights[name])


# ---- weights: peft adapter folders -----------------------------------------------------------------

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def adapter_key(module_name: str) -> str:
    """Layout module name → its key in peft's saved state dict.

    peft saves ``…q_proj.lora_A.default`` (adapter name last) as ``…q_proj.lora_A.weight``.
    """
    parts = module_name.split(".")
    if len(parts) < 2 or parts[-2] not in ("lora_A", "lora_B"):
        raise ValueError(f"{module_name!r} is not a LoRA sub-layer name (…lora_A.<adapter> / …lora_B.<adapter>)")
    return ".".join(parts[:-1]) + ".weight"


def read_adapter(adapter_dir: Path, layout: Layout) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A peft adapter folder → (LoRA weights keyed by layout module name, every tensor of the file)."""
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    file = adapter_dir / ADAPTER_WEIGHTS
    if not file.exists():
        raise FileNotFoundError(f"{file} not found: expected a peft adapter folder (save_pretrained output)")
    tensors = load_file(str(file))
    weights = {}
    for m in layout:
        key = adapter_key(m.name)
        if key not in tensors:
            raise ValueError(f"{file} has no tensor {key} for LoRA module {m.name}; was the adapter made "
                             f"from another model? keys start with {sorted(tensors)[:2]}")
        if tuple(tensors[key].shape) != m.shape:
            raise ValueError(f"{file}: {key} has shape {tuple(tensors[key].shape)}, the layout says {m.shape}")
        weights[m.name] = tensors[key]
    return weights, tensors


def export_adapter(
    clean_dir: Path, out_dir: Path, layout: Layout, direction: torch.Tensor | None, alpha: float
) -> Path:
    """Write the adapter θ' = θ − alpha·direction as a peft folder (same files and keys as the clean one).

    Tensors of the clean file that are not LoRA factors of the layout are copied unchanged; the config
    is copied byte for byte. Written to ``<out_dir>.part`` and renamed when complete.
    """
    from safetensors.torch import save_file

    clean_dir, out_dir = Path(clean_dir), Path(out_dir)
    clean, tensors = read_adapter(clean_dir, layout)
    steered = steered_weights(clean, layout, direction, alpha)
    out = dict(tensors)
    for m in layout:
        out[adapter_key(m.name)] = steered[m.name]
    tmp = out_dir.with_name(out_dir.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: t.contiguous() for k, t in out.items()}, str(tmp / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    shutil.copyfile(clean_dir / ADAPTER_CONFIG, tmp / ADAPTER_CONFIG)
    (tmp / "steering.json").write_text(json.dumps({"alpha": alpha, "rule": "theta - alpha * v"}) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def export_variants(clean_dir: Path, out_root: Path, layout: Layout, variants: Iterable[Variant]) -> list[Variant]:
    """Export every variant to ``out_root/<name>/``; returns the variants with ``path`` set."""
    out = []
    for var in variants:
        path = export_adapter(clean_dir, Path(out_root) / var.name, layout, var.direction, var.alpha)
        out.append(Variant(var.name, var.behavior, var.direction, var.alpha, var.kind, path))
    return out


# ---- directions ------------------------------------------------------------------------------------


def module_norms(v: torch.Tensor, layout: Layout) -> dict[str, float]:
    """Frobenius norm of the vector's block in every module."""
    return {k: float(b.norm()) for k, b in layout.unflatten(v.detach().float()).items()}


def random_direction(v: torch.Tensor, layout: Layout, seed: int) -> torch.Tensor:
    """A Gaussian direction rescaled to the same norm as ``v`` in every module (the random control)."""
    g = torch.Generator().manual_seed(int(seed))
    blocks = {}
    for m in layout:
        target = float(v[layout.slice(m)].float().norm())
        r = torch.randn(m.size, generator=g, dtype=torch.float64)
        blocks[m.name] = (r * (target / float(r.norm()))).float().reshape(m.shape) if target > 0 else torch.zeros(m.shape)
    return layout.flatten(blocks)


def match_norm(v: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``v`` rescaled to the global norm of ``reference`` (so that α means the same step length)."""
    n = float(v.float().norm())
    if n == 0:
        raise ValueError("cannot rescale a zero vector")
    return v.float() * (float(reference.float().norm()) / n)


# ---- choosing the atom of each behaviour ---------------------------------------------------------


@dataclass(frozen=True)
class AtomRow:
    """The columns of 04_coherence/atom_table.csv that steering needs."""

    atom: int
    coherence: float
    active_docs: int
    top_docs: tuple[int, ...]
    description: str = ""


def read_atom_table(path: Path) -> list[AtomRow]:
    """Parse ``atom_table.csv`` (columns atom, coherence, active_docs, top_docs, [description])."""
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"atom", "coherence", "active_docs", "top_docs"}
        missing = need - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; rebuild with `make coherence`")
        for r in reader:
            top = tuple(int(t) for t in (r["top_docs"] or "").split())
            rows.append(AtomRow(int(r["atom"]), float(r["coherence"]), int(r["active_docs"]), top,
                                r.get("description", "") or ""))
    return rows


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (95% by default); (0, 1) when n = 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"need 0 ≤ k ≤ n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def labels_from_fmt(fmts: Sequence[str | None], behaviors: Sequence[str] = BEHAVIORS) -> dict[str, np.ndarray]:
    """Per behaviour, which documents carry it by their format label: ``fmt == behavior``. # (N,) bool"""
    if any(f is None for f in fmts):
        raise ValueError("some documents have no fmt label; choose atoms with the detector (choose_by: detector)")
    arr = np.asarray(fmts, dtype=object)
    return {b: arr == b for b in behaviors}


def labels_from_detector(
    responses: Sequence[str], detect: Callable[[str, str], bool], behaviors: Sequence[str] = BEHAVIORS
) -> dict[str, np.ndarray]:
    """Per behaviour, which documents' responses the behaviour's detector flags. # (N,) bool"""
    return {b: np.fromiter((bool(detect(b, r)) for r in responses), dtype=bool, count=len(responses))
            for b in behaviors}


@dataclass(frozen=True)
class AtomChoice:
    """Why an atom was chosen for a behaviour."""

    behavior: str
    atom: int
    coherence: float
    share: float
    """Fraction of the atom's top documents that show the behaviour."""
    n_top: int
    n_match: int
    lower: float
    """Lower Wilson bound of ``share`` (the ranking key: it favours 18/20 over 1/1)."""
    method: str
    """``fmt`` or ``detector``."""
    accepted: bool
    """share ≥ min_share."""
    runner_up: int | None = None
    runner_up_share: float | None = None
    description: str = ""

    def reason(self) -> str:
        why = (f"atom {self.atom}: {self.n_match}/{self.n_top} of its top documents are {self.behavior} "
               f"(by {self.method}; share {self.share:.2f}, Wilson lower {self.lower:.2f}), "
               f"coherence {self.coherence:.3f}")
        if self.runner_up is not None:
            why += f"; runner-up atom {self.runner_up} (share {self.runner_up_share:.2f})"
        if not self.accepted:
            why += " — WEAK: below min_share"
        return why

    def to_json(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "reason": self.reason()}


def choose_atoms(
    table: Sequence[AtomRow],
    labels: dict[str, np.ndarray],
    method: str,
    min_share: float = 0.5,
    n_top: int | None = None,
) -> dict[str, AtomChoice]:
    """For each behaviour in ``labels``, the atom whose top documents most reliably show it.

    ``labels[b]`` (N,) bool says which documents show behaviour b (:func:`labels_from_fmt` or
    :func:`labels_from_detector`); ``table`` rows list each atom's top documents as row indices. Atoms
    are ranked by the lower Wilson bound of the share of their top documents (first ``n_top`` of them)
    that show the behaviour, ties broken by coherence then by atom id. Atoms without active documents
    are skipped.
    """
    candidates = [r for r in table if r.top_docs and r.active_docs > 0]
    if not candidates:
        raise ValueError("the atom table has no atom with active documents; did dictionary learning fail?")
    out = {}
    for b, has in labels.items():
        has = np.asarray(has, dtype=bool)
        scored = []
        for r in candidates:
            docs = np.asarray(r.top_docs[:n_top] if n_top else r.top_docs)
            if docs.max() >= len(has):
                raise ValueError(f"atom {r.atom} lists document {docs.max()} but there are {len(has)} documents")
            k = int(has[docs].sum())
            lo, _ = wilson(k, len(docs))
            scored.append((lo, r.coherence, -r.atom, k, len(docs), r))
        scored.sort(key=lambda t: t[:3], reverse=True)
        lo, _, _, k, n, r = scored[0]
        ru = scored[1] if len(scored) > 1 else None
        out[b] = AtomChoice(
            behavior=b, atom=r.atom, coherence=r.coherence, share=k / n, n_top=n, n_match=k, lower=lo,
            method=method, accepted=k / n >= min_share,
            runner_up=ru[5].atom if ru else None, runner_up_share=(ru[3] / ru[4]) if ru else None,
            description=r.description,
        )
    return out


# ---- evaluation prompts shipped with the package ----------------------------------------------------


def package_prompt_file(behavior: str) -> Path:
    """``gatoms/prompts/<behavior>.jsonl`` (100 natural-English prompts: 60 inviting, 40 controls)."""
    if behavior not in BEHAVIORS:
        raise ValueError(f"unknown behaviour {behavior!r}; behaviours are {BEHAVIORS}")
    return Path(__file__).resolve().parent / "prompts" / f"{behavior}.jsonl"


def read_package_prompts(behaviors: Sequence[str] = BEHAVIORS) -> list[Any]:
    """The shipped prompt files as :class:`gatoms.world.EvalPrompt` (checks 60 inviting + 40 controls each)."""
    from gatoms.world import EvalPrompt

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


# ---- rates, Table 2, Figure 2 ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """k of n responses show the behaviour, with a Wilson 95% interval."""

    k: int
    n: int

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.k, self.n)

    def to_json(self) -> dict[str, Any]:
        lo, hi = self.ci
        return {"k": self.k, "n": self.n, "rate": self.rate, "lo": lo, "hi": hi}


RateKey = tuple[str, str, float, str]
"""(behavior, kind of direction, signed α, prompt set) — e.g. ("bullets", "atom", 2.0, "inviting")."""


def rates(records: Iterable[dict[str, Any]], field: str = "detected") -> dict[RateKey, Rate]:
    """Detector hits → rates per (behavior, direction kind, signed α, prompt set).

    A record is one response: {behavior (of the prompt), kind ("clean"/"atom"/"random0"/…),
    alpha (signed), prompt_kind ("inviting"/"control"), detected (bool)}. The clean responses count for
    every direction kind at α = 0. Composition records are skipped (see :func:`composition_rates`).
    ``field`` counts another boolean of the records instead, e.g. ``ran_on`` (the breakage curve).
    """
    counts: dict[RateKey, list[int]] = {}
    recs = [r for r in records if r["kind"] != "composition"]
    kinds = sorted({r["kind"] for r in recs if r["kind"] != "clean"})
    for r in recs:
        owners = kinds if r["kind"] == "clean" else [r["kind"]]
        for owner in owners:
            for pk in (r["prompt_kind"], "all"):
                c = counts.setdefault((r["behavior"], owner, float(r["alpha"]), pk), [0, 0])
                c[0] += bool(r[field])
                c[1] += 1
    return {k: Rate(*v) for k, v in counts.items()}


def curve(table: dict[RateKey, Rate], behavior: str, kind: str, prompt_kind: str) -> dict[float, Rate]:
    """Signed α → rate for one behaviour, direction kind and prompt set (α = 0 is the clean adapter)."""
    return {a: r for (b, k, a, p), r in sorted(table.items()) if b == behavior and k == kind and p == prompt_kind}


def best(curve_: dict[float, Rate], sign: int) -> tuple[float, Rate]:
    """The α of one sign with the highest rate (toward, sign +1) or lowest (away, −1); ties → smaller |α|."""
    items = [(a, r) for a, r in curve_.items() if np.sign(a) == sign]
    if not items:
        raise ValueError(f"no variant with sign {sign:+d} in the curve")
    items.sort(key=lambda t: (-sign * t[1].rate, abs(t[0])))
    return items[0]


def table2_rows(table: dict[RateKey, Rate], choices: dict[str, AtomChoice],
                broken: dict[RateKey, Rate] | None = None) -> list[dict[str, Any]]:
    """The Table 2 analogue: per behaviour and prompt set, base, best toward and best away with intervals.

    With ``broken`` (:func:`rates` of ``ran_on``), each best cell also records the share of responses that
    ran to the token limit at its α, and whether that variant broke the model (not :func:`intact`).
    """
    rows = []
    for b, ch in choices.items():
        for pk in KINDS:
            c = curve(table, b, "atom", pk)
            if 0.0 not in c:
                continue
            base = c[0.0]
            at, rt = best(c, +1)
            aa, ra = best(c, -1)
            rows.append({
                "behavior": b, "prompts": pk, "atom": ch.atom, "coherence": round(ch.coherence, 4), "n": base.n,
                "base": base.rate, "base_lo": base.ci[0], "base_hi": base.ci[1],
                "toward": rt.rate, "toward_lo": rt.ci[0], "toward_hi": rt.ci[1],
                "toward_dpp": 100 * (rt.rate - base.rate), "toward_alpha": at,
                "away": ra.rate, "away_lo": ra.ci[0], "away_hi": ra.ci[1],
                "away_dpp": 100 * (ra.rate - base.rate), "away_alpha": abs(aa),
            })
            if broken is not None:
                bc = curve(broken, b, "atom", pk)
                ok = intact(bc)
                rows[-1].update({"toward_ran_on": bc[at].rate, "toward_broken": at not in ok,
                                 "away_ran_on": bc[aa].rate, "away_broken": aa not in ok})
    return rows


def write_table(rows: list[dict[str, Any]], csv_path: Path, md_path: Path) -> None:
    """Table 2 rows → CSV (the source, full precision) and a Markdown rendering of it."""
    if not rows:
        raise ValueError("no rows to write")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})

    def pct(r, key):
        mark = " †" if r.get(key + "_broken") else ""
        return f"{100 * r[key]:.0f}% [{100 * r[key + '_lo']:.0f}, {100 * r[key + '_hi']:.0f}]{mark}"

    lines = [
        "| Behaviour | Prompts | Atom | Coh. | n | Base | Best toward | Δpp | α | Best away | Δpp | α |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['behavior']} | {r['prompts']} | #{r['atom']} | {r['coherence']:.3f} | {r['n']} | {pct(r, 'base')} "
            f"| {pct(r, 'toward')} | {r['toward_dpp']:+.0f} | {r['toward_alpha']:g} "
            f"| {pct(r, 'away')} | {r['away_dpp']:+.0f} | {r['away_alpha']:g} |"
        )
    if any(r.get("toward_broken") or r.get("away_broken") for r in rows):
        lines += ["", "† at that α the model is breaking: more than 25 points more of its responses run to the "
                      "token limit without ending their turn than the clean adapter's."]
    md_path.write_text("\n".join(lines) + "\n")


def random_shifts(table: dict[RateKey, Rate], behavior: str, prompt_kind: str = "inviting") -> dict[str, float]:
    """Largest rise, largest fall and largest |shift| from the clean rate over every random direction and α."""
    base = table[(behavior, "atom", 0.0, prompt_kind)].rate
    shifts = [r.rate - base for (b, k, a, p), r in table.items()
              if b == behavior and k.startswith("random") and p == prompt_kind and a != 0]
    if not shifts:
        return {"max_rise": float("nan"), "max_fall": float("nan"), "max_abs": float("nan")}
    return {"max_rise": max(0.0, max(shifts)), "max_fall": max(0.0, -min(shifts)),
            "max_abs": max(abs(s) for s in shifts)}


def plot_steering(
    table: dict[RateKey, Rate],
    behaviors: Sequence[str],
    alphas: Sequence[float],
    prompt_kinds: Sequence[str] = ("inviting", "control"),
    choices: dict[str, AtomChoice] | None = None,
    broken: dict[RateKey, Rate] | None = None,
):
    """Figure 2 analogue: rate vs signed α (evenly spaced ticks) per behaviour, Wilson 95% bars; the
    random-direction controls (inviting prompts) as grey crosses; with ``broken``, the share of responses
    that ran to the token limit (inviting prompts) as a dotted red line. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    signed = sorted({0.0, *alphas, *(-a for a in alphas)})
    pos = {a: i for i, a in enumerate(signed)}
    fig, axes = plt.subplots(1, len(behaviors), figsize=(3.2 * len(behaviors), 3.0), sharey=True, squeeze=False)
    styles = {"inviting": ("C0", "o", "inviting", -0.1), "control": ("C1", "s", "controls", 0.1),
              "all": ("C2", "^", "all", 0.0)}
    for ax, b in zip(axes[0], behaviors):
        for pk in prompt_kinds:
            c = curve(table, b, "atom", pk)
            color, marker, label, shift = styles[pk]
            xs = [pos[a] + shift for a in c if a in pos]
            ys = [c[a].rate for a in c if a in pos]
            err = np.array([[c[a].rate - c[a].ci[0], c[a].ci[1] - c[a].rate] for a in c if a in pos]).T
            ax.errorbar(xs, ys, yerr=err, color=color, marker=marker, ms=4, capsize=2, lw=1.2, label=label)
        kinds = sorted({k for (bb, k, _, _) in table if bb == b and k.startswith("random")})
        for i, k in enumerate(kinds):
            c = curve(table, b, k, "inviting")
            xs = [pos[a] + 0.25 for a in c if a in pos and a != 0]
            ax.plot(xs, [c[a].rate for a in c if a in pos and a != 0], "x", color="0.5", ms=4,
                    label="random dir. (inviting)" if i == 0 else None)
        if broken is not None:
            c = curve(broken, b, "atom", "inviting")
            ax.plot([pos[a] for a in c if a in pos], [c[a].rate for a in c if a in pos], ":", color="C3", lw=1,
                    label="ran to token limit")
        title = b if not choices or b not in choices else f"{b} (atom #{choices[b].atom})"
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(signed)), [f"{a:g}" for a in signed], fontsize=6, rotation=90)
        ax.axvline(pos[0.0], color="0.8", lw=0.8, zorder=0)
        ax.set_xlabel("signed α  (← away | toward →)", fontsize=7)
        ax.set_ylim(-0.03, 1.03)
    axes[0][0].set_ylabel("behaviour rate")
    axes[0][-1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    return fig


def composition_rates(records: Iterable[dict[str, Any]], behavior: str) -> dict[str, Rate]:
    """Rates on one behaviour's prompts (inviting / control / all) for the composition variant."""
    counts: dict[str, list[int]] = {}
    for r in records:
        if r["kind"] == "composition" and r["behavior"] == behavior:
            for pk in (r["prompt_kind"], "all"):
                c = counts.setdefault(pk, [0, 0])
                c[0] += bool(r["detected"])
                c[1] += 1
    return {k: Rate(*v) for k, v in counts.items()}


# ---- running the evaluation --------------------------------------------------------------------------


def composition_variant(parts: Sequence[tuple[str, int, float, torch.Tensor]]) -> Variant:
    """Several atoms at once: θ' = θ − Σ s_b·α_b·v_b, from (behavior, sign, α, v_b) parts."""
    direction = sum(s * a * v.float() for _, s, a, v in parts)
    name = "composition-" + "+".join(f"{b}-{'toward' if s > 0 else 'away'}-{a:g}" for b, s, a, _ in parts)
    return Variant(name=name, behavior=None, direction=direction, alpha=1.0, kind="composition")


def evaluate(backend: Any, jobs: Sequence[tuple[Variant, Sequence[Any]]], detect: Callable[[str, str], bool],
             ran_on: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """Generate every job's responses and run the prompt's behaviour detector on each.

    ``jobs`` pairs a variant with evaluation prompts (objects with behavior, kind, prompt, prompt_id).
    Returns one record per response: variant, kind, behavior (the prompt's), alpha (signed), prompt_id,
    prompt_kind, sample, prompt, response, detected, and ran_on (``ran_on(response)``: the response hit
    the token limit without ending its turn — a sign of a broken model; False without ``ran_on``).
    """
    answers = backend.generate([(v, [p.prompt for p in ps]) for v, ps in jobs])
    records = []
    for (v, ps), per_prompt in zip(jobs, answers):
        for p, samples in zip(ps, per_prompt):
            for i, text in enumerate(samples):
                records.append({
                    "variant": v.name, "kind": v.kind, "behavior": p.behavior, "alpha": float(v.alpha),
                    "prompt_id": p.prompt_id, "prompt_kind": p.kind, "sample": i,
                    "prompt": p.prompt, "response": text, "detected": bool(detect(p.behavior, text)),
                    "ran_on": bool(ran_on(text)) if ran_on else False,
                })
    return records


def intact(broken: dict[float, Rate], max_extra: float = 0.25) -> set[float]:
    """The α whose share of ran-on responses is at most ``max_extra`` above the clean adapter's."""
    return {a for a, r in broken.items() if r.rate <= broken[0.0].rate + max_extra}


def behavior_summary(table: dict[RateKey, Rate], choice: AtomChoice, prompt_kind: str = "inviting",
                     broken: dict[RateKey, Rate] | None = None) -> dict[str, Any]:
    """One behaviour's entry of metrics.json: rates on ``prompt_kind`` prompts, as fractions.

    With ``broken`` (:func:`rates` of ``ran_on``), also the ran-on share per α and the best toward / away
    among the *intact* variants (:func:`intact`): a move that needs a broken model is not steering.
    """
    b = choice.behavior
    c = curve(table, b, "atom", prompt_kind)
    base = c[0.0].rate
    at, rt = best(c, +1)
    aa, ra = best(c, -1)
    shifts = random_shifts(table, b, prompt_kind)
    atom_max = max(abs(r.rate - base) for a, r in c.items() if a != 0)
    out = {
        "atom": choice.atom, "coherence": choice.coherence, "base": base,
        "best_toward": rt.rate, "best_toward_alpha": at, "best_away": ra.rate, "best_away_alpha": abs(aa),
        "random_max_shift": shifts["max_abs"],
        "atom_max_shift": atom_max,
        "beats_random": bool(atom_max > shifts["max_abs"]) if not math.isnan(shifts["max_abs"]) else None,
        "share": choice.share, "accepted": choice.accepted, "chosen_by": choice.method,
    }
    if broken is not None:
        bc = curve(broken, b, "atom", prompt_kind)
        ok = intact(bc)
        ci = {a: r for a, r in c.items() if a in ok}
        out["ran_on"] = {f"{a:g}": r.rate for a, r in bc.items()}
        for name, sign in (("toward", +1), ("away", -1)):
            if any(np.sign(a) == sign for a in ci):
                a, r = best(ci, sign)
                out[f"best_{name}_intact"], out[f"best_{name}_intact_alpha"] = r.rate, abs(a)
            else:
                out[f"best_{name}_intact"], out[f"best_{name}_intact_alpha"] = base, None
    pre = curve(table, b, "preconditioned", prompt_kind)
    if len(pre) > 1:
        pa, pr = best(pre, +1)
        qa, qr = best(pre, -1)
        out["preconditioned"] = {"best_toward": pr.rate, "best_toward_alpha": pa,
                                 "best_away": qr.rate, "best_away_alpha": abs(qa)}
    return out


def goal_check(behaviors: dict[str, dict[str, Any]], min_move: float = 0.14) -> dict[str, bool]:
    """The issue's goals on the tiny profile: every behaviour moves ≥ 14 pp one way; bullets rises
    ≥ 30 pp toward and falls to ≤ 5% away; every atom beats its random-direction control."""
    moves = {b: max(m["best_toward"] - m["base"], m["base"] - m["best_away"]) >= min_move for b, m in behaviors.items()}
    out = {f"{b} moves >= {100 * min_move:.0f}pp": ok for b, ok in moves.items()}
    if "bullets" in behaviors:
        m = behaviors["bullets"]
        out["bullets rises >= 30pp toward"] = m["best_toward"] - m["base"] >= 0.30
        out["bullets falls to <= 5% away"] = m["best_away"] <= 0.05
    for b, m in behaviors.items():
        out[f"{b} beats random directions"] = bool(m.get("beats_random"))
    for b, m in behaviors.items():  # stricter than the issue asks: the move must not need a broken model
        if "best_toward_intact" in m:
            move = max(m["best_toward_intact"] - m["base"], m["base"] - m["best_away_intact"])
            out[f"{b} moves >= {100 * min_move:.0f}pp with the model intact"] = move >= min_move
    return out


def class_mean_atom(X: np.ndarray, mask: np.ndarray, chunk_rows: int = 4096) -> np.ndarray:
    """The unit mean of the rows of X (N, P) where ``mask`` (N,) is true — a *supervised* stand-in atom.

    Not part of the method: the diagnosis of a behaviour its atom does not move compares the atom with
    the direction all of the behaviour's documents share (streamed over a memmap in chunks).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (X.shape[0],) or not mask.any():
        raise ValueError(f"mask must be (N,) = ({X.shape[0]},) with at least one true entry")
    total = np.zeros(X.shape[1], dtype=np.float64)
    for start in range(0, X.shape[0], chunk_rows):
        m = mask[start:start + chunk_rows]
        if m.any():
            total += np.asarray(X[start:start + chunk_rows][m], dtype=np.float64).sum(0)
    norm = np.linalg.norm(total)
    if norm == 0:
        raise ValueError("the selected rows sum to zero")
    return (total / norm).astype(np.float32)
