"""The paper's numbers, spelled once: its setup (§4.1), Tables 1–4, and the names of its behaviours.

From *Gradient Atoms* (Gemma-3 4B IT). A cell whose number did not survive the text extraction of the
authors' PDF is :data:`LOST`, never guessed.
"""

from __future__ import annotations

from typing import Any

BEHAVIOR_NAMES: dict[str, str] = {
    "yes_no": "Yes/No classification",
    "code": "Code generation",
    "refusal": "Systematic refusal",
    "bullets": "Bulleted lists",
    "numbered": "Numbered lists",
}

LOST = "lost"
"""A paper cell whose number did not survive the paper's text extraction."""

# ---- the paper's numbers ------------------------------------------------------------------------------
PAPER_SETUP: dict[str, Any] = {
    "model": "Gemma-3 4B IT",
    "n_finetune_docs": 5000,
    "trainable_params": 2_228_224,
    "n_lora_modules": 136,
    "k": 50,
    "projected_dim": 6800,
    "n_atoms": 500,
    "alpha": 0.1,
    "top_docs": 20,
}
"""§4.1: LoRA r=8 on q_proj+v_proj of all 34 layers; EKFAC top-50 per module; 500 atoms, α = 0.1."""

PAPER_TABLE1: dict[float, dict[str, Any]] = {
    0.01: {"median_docs_per_atom": "~2500", "n_coh_gt_0_5": 3, "n_coh_gt_0_1": "~20"},
    0.1: {"median_docs_per_atom": "~100", "n_coh_gt_0_5": 5, "n_coh_gt_0_1": 43},
    1.0: {"median_docs_per_atom": 0, "n_coh_gt_0_5": 0, "n_coh_gt_0_1": 0},
}
"""Table 1 (effect of the sparsity penalty α on atom quality); the paper gives approximate medians."""


PAPER_TABLE3: dict[str, dict[str, Any]] = {
    "01_extract": {"task": "Gradient extraction", "resources": "8× A100 40GB", "time": "170 s", "seconds": 170},
    "02_ekfac": {"task": "EKFAC projection", "resources": "CPU, 16GB RAM", "time": "~5 min", "seconds": 300},
    "03_atoms": {"task": "Dictionary learning (α = 0.1)", "resources": "CPU, 32GB RAM", "time": "~15 min",
                 "seconds": 900},
    "04_coherence": {"task": "Coherence computation", "resources": "CPU, 8GB RAM", "time": "~5 min",
                     "seconds": 300},
}
"""Table 3 / Appendix B (computational cost); the paper's total is ~25 min. Steps it does not time are
absent."""

PAPER_TABLE3_TOTAL = "~25 min"

PAPER_TABLE4: list[dict[str, Any]] = [
    {"rank": 1, "atom": 348, "coherence": 0.725, "active_docs": 139,
     "description": "Short factual Q&A—trivia with one-word/numeric answers"},
    {"rank": 2, "atom": 328, "coherence": 0.672, "active_docs": 110, "description": "Grammar and sentence editing"},
    {"rank": 3, "atom": 415, "coherence": 0.647, "active_docs": 156,
     "description": "Yes/No/True/False binary classification"},
    {"rank": 4, "atom": 458, "coherence": 0.643, "active_docs": 124, "description": "Simple arithmetic"},
    {"rank": 5, "atom": 498, "coherence": 0.614, "active_docs": 176,
     "description": "Multi-category classification and labeling"},
    {"rank": 6, "atom": 358, "coherence": 0.499, "active_docs": 88,
     "description": "Sentence transformation (voice, tense, translation)"},
    {"rank": 7, "atom": 2, "coherence": 0.463, "active_docs": 206,
     "description": "Sentence restructuring (questions, passive/active)"},
    {"rank": 8, "atom": 451, "coherence": 0.395, "active_docs": 182,
     "description": "Multi-step arithmetic and unit conversions"},
    {"rank": 9, "atom": 484, "coherence": 0.298, "active_docs": 49,
     "description": "Mixed technical (code + translations + set ops)"},
    {"rank": 10, "atom": 319, "coherence": 0.262, "active_docs": 180,
     "description": "“Name an example of X”—single-entity retrieval"},
    {"rank": 11, "atom": 430, "coherence": 0.258, "active_docs": 150, "description": "Sentiment and text classification"},
    {"rank": 12, "atom": 425, "coherence": 0.257, "active_docs": 215, "description": "Single-entity factual answers"},
    {"rank": 13, "atom": 363, "coherence": 0.238, "active_docs": 146,
     "description": "Short phrase answers to open questions"},
    {"rank": 14, "atom": 52, "coherence": 0.230, "active_docs": 57,
     "description": "“Please provide the input”—refusal on missing input"},
    {"rank": 15, "atom": 364, "coherence": 0.205, "active_docs": 158, "description": "Science and math fact answers"},
]
"""Appendix C, the first 15 of the paper's top-50 atoms (the report shows as many as it shows of ours)."""


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
