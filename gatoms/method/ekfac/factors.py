"""The Kronecker factors of every LoRA module, as step 01 accumulates them and step 02 reads them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from gatoms.build.store import require_final, save_safetensors


@dataclass
class Factors:
    """Per-module Kronecker factors: A_m = E_t[a aᵀ] (i, i), S_m = E_t[δ δᵀ] (o, o)."""

    A: Mapping[str, torch.Tensor]
    S: Mapping[str, torch.Tensor]
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
        """The factors of ``path``, each read from the file when it is looked up (Gemma-3 4B's are ~2.5 GB:
        the eigendecomposition then holds one module's at a time)."""
        from safetensors import safe_open

        path = require_final(path)
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
        A = _OnDemand(path, [k.split(".", 1)[1] for k in keys if k.startswith("A.")], "A")
        S = _OnDemand(path, [k.split(".", 1)[1] for k in keys if k.startswith("S.")], "S")
        return cls(A=A, S=S, n_tokens=int(meta.get("n_tokens", 0)), fisher=meta.get("fisher", "empirical"))


class _OnDemand(Mapping):
    """name → tensor, read from a safetensors file at each lookup (nothing held in memory)."""

    def __init__(self, path: Path, names: list[str], kind: str):
        self.path, self.names, self.kind = path, names, kind

    def __getitem__(self, name: str) -> torch.Tensor:
        from safetensors import safe_open

        if name not in self.names:
            raise KeyError(name)
        with safe_open(str(self.path), framework="pt") as f:
            return f.get_tensor(f"{self.kind}.{name}")

    def __contains__(self, name: object) -> bool:
        return name in set(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)
