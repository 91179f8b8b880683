"""The pipeline's step table, spelled once: each step's notebook, profile sections, upstream steps and
artifacts. :mod:`gatoms.build.paths`, :mod:`gatoms.build.config` and the runner read it; a test checks
the Makefile's rules against it (``tests/build/test_makefile.py``).

    00_finetune ─ 01_extract ─ 02_ekfac ─ 03_atoms ─ 04_coherence ─┬─ 05_ablations
                                                                    └─ 06_steering
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: a notebook ``notebooks/<name>.ipynb`` and a make target."""

    name: str
    """``NN_word``, e.g. ``03_atoms``; also the artifact folder ``artifacts/<profile>/<name>/``."""
    sections: tuple[str, ...]
    """Profile sections that are parameters of its notebook (validated by their config dataclasses)."""
    upstream: tuple[str, ...]
    """Steps whose artifacts it reads directly (their fingerprints go into its sidecar)."""
    artifacts: tuple[str, ...]
    """The files and folders it writes into its artifact folder (besides config.json and metrics.json)."""
    paper: str = ""
    """What of the paper it reproduces."""

    @property
    def target(self) -> str:
        """The make target: ``03_atoms`` → ``atoms``."""
        return self.name.split("_", 1)[1]


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
ROWS = "rows.csv"  # the row index: row → doc id, family, fmt, labels, prompt/response token counts
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
BUDGETS = "budgets.json"  # each atom's budgeted α and every KL evaluation that found it


TABLE: tuple[Step, ...] = (
    Step("00_finetune", ("world", "model", "finetune"), (),
         (BASE_MODEL, TOKENIZER, ADAPTER, TRAIN_DOCS, HELDOUT_DOCS, EVAL_PROMPTS, LOSS_CURVE),
         "§4.1 setup"),
    Step("01_extract", ("extract",), ("00_finetune",),
         (GRADS, GRADS_META, ROWS, FACTORS), "§3.1; Table 3 (extraction)"),
    Step("02_ekfac", ("ekfac",), ("01_extract",), (EIGEN, Z, X), "§3.2, Eq. 1; Table 3"),
    Step("03_atoms", ("atoms",), ("02_ekfac",), (ATOMS, CODES), "§3.3, Eq. 2; Table 3"),
    Step("04_coherence", ("coherence",), ("03_atoms",), (COHERENCE, ATOM_TABLE),
         "§3.4, §4.2; Figure 1, Table 4"),
    Step("05_ablations", ("ablations",), ("04_coherence",), (SPARSITY, METHODS), "Table 1"),
    Step("06_steering", ("steering",), ("04_coherence",), (STEERED, GENERATIONS, CHOICES, BUDGETS),
         "§4.3; Table 2, Figure 2"),
)
"""Every step, in pipeline order."""

BY_NAME: dict[str, Step] = {s.name: s for s in TABLE}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def step(name: str) -> Step:
    """The step called ``name`` (error naming the valid ones)."""
    if name not in BY_NAME:
        raise ValueError(f"unknown step {name!r}; steps are {', '.join(NAMES)}")
    return BY_NAME[name]


def upstream_closure(name: str) -> tuple[str, ...]:
    """Every step ``name`` depends on, directly or not, in pipeline order."""
    need: set[str] = set()
    todo = list(step(name).upstream)
    while todo:
        s = todo.pop()
        if s not in need:
            need.add(s)
            todo += BY_NAME[s].upstream
    return tuple(s for s in NAMES if s in need)
