"""LoRA adapters as data: one variant to generate with, weight arithmetic, and peft adapter folders.

A variant is the fine-tuned adapter moved along a direction v of the flat LoRA parameters (the order of
:class:`gatoms.lm.layout.Layout`): θ' = θ − alpha·v, the LoRA factors A and B perturbed separately.
:func:`export_adapter` writes it in peft's own format (loadable by ``PeftModel.from_pretrained`` and by
vLLM); :func:`apply_weights` swaps it into a loaded model in place (the transformers backend's fast path).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gatoms.build.store import atomic_path
from gatoms.lm.layout import Layout


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
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        save_file({k: t.contiguous() for k, t in out.items()}, str(tmp / ADAPTER_WEIGHTS), metadata={"format": "pt"})
        shutil.copyfile(clean_dir / ADAPTER_CONFIG, tmp / ADAPTER_CONFIG)
        (tmp / "steering.json").write_text(json.dumps({"alpha": alpha, "rule": "theta - alpha * v"}) + "\n")
    return out_dir


def export_variants(clean_dir: Path, out_root: Path, layout: Layout, variants: Iterable[Variant]) -> list[Variant]:
    """Export every variant to ``out_root/<name>/``; returns the variants with ``path`` set."""
    out = []
    for var in variants:
        path = export_adapter(clean_dir, Path(out_root) / var.name, layout, var.direction, var.alpha)
        out.append(Variant(var.name, var.behavior, var.direction, var.alpha, var.kind, path))
    return out
