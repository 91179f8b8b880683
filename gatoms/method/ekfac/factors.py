"""The Kronecker factors of every LoRA module, as step 01 accumulates them and step 02 reads them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gatoms.build.store import require_final, save_safetensors


@dataclass
class Factors:
    """Per-module Kronecker factors: A_m = E_t[a aᵀ] (i, i), S_m = E_t[δ δᵀ] (o, o)."""

    A: dict[str, torch.Tensor]
    S: dict[str, torch.Tensor]
    n_tokens: int
    """Tokens averaged over (every non-padding position of every document)."""
    fisher: str
    """``empirical`` (dataset labels) or ``true`` (labels sampled from the model)."""

    def save(self, path: Path) -> None:

        tensors = {f"A.{k}": v.float().contiguous() for k, v in self.A.items()}
        tensors |= {f"S.{k}": v.float().contiguous() for k, v in self.S.items()}
        save_safetensors(path, tensors, metadata={"n_tokens": str(self.n_tokens), "fisher": self.fisher})

    @classmethod
    def load(cls, path: Path) -> Factors:
        from safetensors import safe_open

        path = require_final(path)
        A, S = {}, {}
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            for key in f.keys():
                kind, name = key.split(".", 1)
                (A if kind == "A" else S)[name] = f.get_tensor(key)
        return cls(A=A, S=S, n_tokens=int(meta.get("n_tokens", 0)), fisher=meta.get("fisher", "empirical"))
