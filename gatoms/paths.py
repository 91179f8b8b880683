"""Every artifact path, spelled once.

Layout::

    artifacts/<profile>/<NN_step>/<file>      step outputs (+ config.json sidecar, metrics.json)
    artifacts/<profile>/notebooks/<NN_step>.ipynb   executed notebooks
    figures/<profile>/<name>.{png,pdf,csv,md}  figures and tables (committed for the default profile)

``$GATOMS_ARTIFACTS`` and ``$GATOMS_FIGURES`` move the two trees (the tests point them at temporary
folders so that they never touch the committed figures). The repository root is ``$GATOMS_ROOT`` if set, else the nearest folder above the working directory
that holds ``configs/`` and ``notebooks/`` (so notebooks run from ``notebooks/`` find it), else the
working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

STEPS: tuple[str, ...] = (
    "00_finetune",
    "01_extract",
    "02_ekfac",
    "03_atoms",
    "04_coherence",
    "05_ablations",
    "06_steering",
)
"""The pipeline's steps in order; each is a notebook ``notebooks/<step>.ipynb`` and a make target
named after it without the number."""

UPSTREAM: dict[str, tuple[str, ...]] = {
    "00_finetune": (),
    "01_extract": ("00_finetune",),
    "02_ekfac": ("01_extract",),
    "03_atoms": ("02_ekfac",),
    "04_coherence": ("03_atoms",),
    "05_ablations": ("04_coherence",),
    "06_steering": ("04_coherence",),
}
"""Direct upstream steps whose artifacts each step reads."""

# ---- file names inside a step folder ---------------------------------------------------------------
CONFIG = "config.json"  # sidecar: the config that made the step's artifacts
METRICS = "metrics.json"  # written last: its presence marks the step complete

# 00_finetune
BASE_MODEL = "base_model"  # save_pretrained folder of the embedded base model
TOKENIZER = "tokenizer"  # tokenizer with chat template
ADAPTER = "adapter"  # peft save_pretrained folder of the fine-tuned LoRA adapter
TRAIN_DOCS = "train.jsonl"  # the fine-tuning documents, one JSON object per line
HELDOUT_DOCS = "heldout.jsonl"  # held-out documents for the per-family check
EVAL_PROMPTS = "eval_prompts.jsonl"  # steering evaluation prompts (behaviour, kind, prompt)
LOSS_CURVE = "loss.csv"  # fine-tuning (and base-training) loss per step

# 01_extract
GRADS = "grads.npy"  # (N, D) raw per-document gradients, memmap
GRADS_META = "grads.json"  # layout: module names, shapes, offsets, doc ids, dtype
FACTORS = "factors.safetensors"  # Kronecker factors A_m, S_m per module
EXTRACT_CHECKPOINT = "checkpoint.rank{rank}.safetensors"  # resume state of one rank (removed when complete)

# 02_ekfac
EIGEN = "eigen.safetensors"  # Q_A, Q_S, eigenvalues and top-k indices per module
Z = "Z.npy"  # (N, M*k) whitened projections
X = "X.npy"  # (N, M*k) unit-normalised rows of Z

# 03_atoms
ATOMS = "atoms.safetensors"  # (n_atoms, M*k) dictionary, sign-oriented
CODES = "codes.npz"  # (N, n_atoms) sparse codes (scipy.sparse CSR)

# 04_coherence
COHERENCE = "coherence.npy"  # (n_atoms,) coherence per atom
ATOM_TABLE = "atom_table.csv"  # every atom: coherence, active docs, description

# 05_ablations
SPARSITY = "sparsity.csv"  # Table 1 analogue: per α, docs per atom and coherence counts
METHODS = "methods.csv"  # preconditioning ablation and baselines on the ground-truth metrics

# 06_steering
STEERED = "adapters"  # folder of steered peft adapters
GENERATIONS = "generations.jsonl"  # every generated response with its variant and detector result
CHOICES = "choices.json"  # which atom steers each behaviour, and why
CONTROL_ADAPTERS = "control_adapters"  # random/preconditioned control adapters (exported for vLLM only)


def root() -> Path:
    """The repository root (see module docstring)."""
    env = os.environ.get("GATOMS_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "configs").is_dir() and (d / "notebooks").is_dir():
            return d
    return here


def config_file(profile: str) -> Path:
    """``configs/<profile>.yaml``."""
    return root() / "configs" / f"{profile}.yaml"


def notebook(step: str) -> Path:
    return root() / "notebooks" / f"{step}.ipynb"


def artifacts(profile: str) -> Path:
    """``artifacts/<profile>/`` (``$GATOMS_ARTIFACTS/<profile>/`` if set, e.g. by the tests)."""
    base = os.environ.get("GATOMS_ARTIFACTS")
    return (Path(base) if base else root() / "artifacts") / profile


def step_dir(profile: str, step: str) -> Path:
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; steps are {', '.join(STEPS)}")
    return artifacts(profile) / step


def executed_notebook(profile: str, step: str) -> Path:
    return artifacts(profile) / "notebooks" / f"{step}.ipynb"


def run_record(profile: str, step: str) -> Path:
    """``artifacts/<profile>/notebooks/<step>.run.json``: the runner's wall time and peak memory of a step."""
    return artifacts(profile) / "notebooks" / f"{step}.run.json"


def report_file(profile: str) -> Path:
    """``figures/<profile>/RESULTS.md``: the results report (written by :mod:`gatoms.report`)."""
    return figures(profile) / "RESULTS.md"


def atlas_file(profile: str) -> Path:
    """``figures/<profile>/atlas.html``: the atom atlas (written by :mod:`gatoms.atlas`)."""
    return figures(profile) / "atlas.html"


def figures(profile: str) -> Path:
    """``figures/<profile>/`` (created on demand)."""
    base = os.environ.get("GATOMS_FIGURES")
    d = (Path(base) if base else root() / "figures") / profile
    d.mkdir(parents=True, exist_ok=True)
    return d


def figure(profile: str, name: str, ext: str = "png") -> Path:
    """``figures/<profile>/<name>.<ext>``, e.g. ``figure("tiny", "fig1_coherence")``."""
    return figures(profile) / f"{name}.{ext}"


def make_target(step: str) -> str:
    """The make target that builds a step: ``01_extract`` → ``extract``."""
    return step.split("_", 1)[1]
