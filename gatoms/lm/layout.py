"""The flat layout of LoRA parameters: which module sits where in a D-dimensional gradient vector.

Every LoRA sub-layer (``lora_A``, ``lora_B`` of each targeted projection) is one *module* m with a
weight W_m of shape (o_m, i_m). A per-document gradient, an atom's unprojection and a steering
perturbation are all flat vectors of length D = Σ_m o_m·i_m, modules concatenated in the order of
``model.named_modules()`` (recorded, never re-derived silently) and each weight flattened row-major.

The layout is stored as JSON (inside ``grads.json``) and checked against any model it is applied to:
a mismatch (different modules or shapes) is an error that names the first difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModuleSpec:
    """One LoRA sub-layer."""

    name: str
    """Module path as in ``model.named_modules()``, e.g.
    ``base_model.model.model.layers.0.self_attn.q_proj.lora_A.default``."""
    shape: tuple[int, int]
    """(o, i) of its weight: (r, in_features) for lora_A, (out_features, r) for lora_B."""
    offset: int
    """Start of its block in the flat vector."""

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def param_name(self) -> str:
        """The weight's name in ``model.named_parameters()``."""
        return f"{self.name}.weight"

    @property
    def kind(self) -> str:
        """``"lora_A"`` or ``"lora_B"``."""
        return "lora_A" if ".lora_A." in f"{self.name}." else "lora_B"


@dataclass(frozen=True)
class Layout:
    """The ordered LoRA modules of a model and their offsets into the flat vector."""

    modules: tuple[ModuleSpec, ...]

    @property
    def n_params(self) -> int:
        """D, the length of the flat vector."""
        return sum(m.size for m in self.modules)

    def __len__(self) -> int:
        return len(self.modules)

    def __iter__(self):
        return iter(self.modules)

    def slice(self, m: ModuleSpec) -> slice:
        return slice(m.offset, m.offset + m.size)

    # ---- construction -----------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: nn.Module) -> Layout:
        """Discover the LoRA sub-layers of a peft model (``nn.Linear`` children named lora_A / lora_B)."""
        specs: list[ModuleSpec] = []
        offset = 0
        for name, module in model.named_modules():
            leaf = name.split(".")
            if len(leaf) >= 2 and leaf[-2] in ("lora_A", "lora_B") and isinstance(module, nn.Linear):
                o, i = module.weight.shape
                specs.append(ModuleSpec(name, (int(o), int(i)), offset))
                offset += o * i
        if not specs:
            raise ValueError("the model has no LoRA sub-layers (lora_A / lora_B); is it a peft model?")
        return cls(tuple(specs))

    @classmethod
    def from_shapes(cls, named_shapes: list[tuple[str, tuple[int, int]]]) -> Layout:
        specs, offset = [], 0
        for name, (o, i) in named_shapes:
            specs.append(ModuleSpec(name, (int(o), int(i)), offset))
            offset += o * i
        return cls(tuple(specs))

    def to_json(self) -> list[dict]:
        return [{"name": m.name, "shape": list(m.shape), "offset": m.offset} for m in self.modules]

    @classmethod
    def from_json(cls, items: list[dict]) -> Layout:
        return cls(tuple(ModuleSpec(d["name"], tuple(d["shape"]), int(d["offset"])) for d in items))

    def check_matches(self, other: Layout, what: str = "model") -> None:
        """Raise ``ValueError`` naming the first difference between two layouts."""
        if len(self) != len(other):
            raise ValueError(f"layout mismatch with the {what}: {len(self)} modules here, {len(other)} there")
        for a, b in zip(self.modules, other.modules):
            if a != b:
                raise ValueError(f"layout mismatch with the {what}: {a} here, {b} there")

    # ---- flat <-> per-module ----------------------------------------------------------------------
    def unflatten(self, vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """(D,) → {module name: (o, i)} views."""
        if vec.shape[-1] != self.n_params:
            raise ValueError(f"vector of length {vec.shape[-1]} does not match the layout's D = {self.n_params}")
        return {m.name: vec[..., self.slice(m)].reshape(*vec.shape[:-1], *m.shape) for m in self.modules}

    def flatten(self, blocks: dict[str, torch.Tensor]) -> torch.Tensor:
        """{module name: (..., o, i)} → (..., D)."""
        missing = [m.name for m in self.modules if m.name not in blocks]
        if missing:
            raise ValueError(f"missing modules {missing[:3]}{'…' if len(missing) > 3 else ''}")
        return torch.cat([blocks[m.name].reshape(*blocks[m.name].shape[:-2], -1) for m in self.modules], dim=-1)

    def weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The model's current LoRA weights, keyed by module name (checks the layout matches)."""
        Layout.from_model(model).check_matches(self)
        mods = dict(model.named_modules())
        return {m.name: mods[m.name].weight for m in self.modules}


def gemma3_4b_layout(r: int = 8, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> Layout:
    """The LoRA layout of Gemma-3 4B's text model, built on the meta device (no weights allocated):
    with r = 8 on q_proj and v_proj, 136 modules and D = 2,228,224 (the paper's setting)."""
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM

    from gatoms.lm.model import gemma3_4b_text_config

    with torch.device("meta"):
        model = get_peft_model(Gemma3ForCausalLM(gemma3_4b_text_config()), LoraConfig(r=r, target_modules=list(targets)))
    return Layout.from_model(model)
