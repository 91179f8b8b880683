"""The authors' method of per-document gradients: one document, one ``backward()``, read ``.grad``.

Slow and obviously correct: the reference the hook-based extraction is tested against, and the benchmark
baseline (``make bench-extract``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gatoms.lm.encoding import EncodedDoc
from gatoms.lm.layout import Layout
from gatoms.method.gradients.extract import truncate


def response_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ over response tokens of the cross-entropy, in float32. logits (B, T, V), labels (B, T)."""
    shift = labels[:, 1:]
    sel = shift != -100
    return F.cross_entropy(logits[:, :-1][sel].float(), shift[sel], reduction="sum")


def reference_gradients(
    model: nn.Module, docs: Sequence[EncodedDoc], max_length: int = 500, progress: bool = False
) -> np.ndarray:  # (N, D) float32
    """The per-document loop of the reference: one document, one ``backward()``, read ``.grad``.

    LoRA weights require grad (everything else frozen), model in eval mode, same response-only sum
    loss in float32. Slow and obviously correct: the test reference and the benchmark baseline.
    """
    layout = Layout.from_model(model)
    weights = layout.weights(model)
    items = truncate(docs, max_length)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    device = next(model.parameters()).device
    for p in model.parameters():
        p.requires_grad_(False)
    for w in weights.values():
        w.requires_grad_(True)
    model.eval()
    out = np.zeros((len(items), layout.n_params), dtype=np.float32)
    from tqdm.auto import tqdm

    try:
        for n, (ids, labels) in enumerate(tqdm(items, disable=not progress, desc="reference", unit="doc")):
            for w in weights.values():
                w.grad = None
            input_ids = torch.tensor([ids], device=device)
            logits = model(input_ids=input_ids, use_cache=False).logits
            response_loss(logits, torch.tensor([labels], device=device)).backward()
            out[n] = torch.cat([weights[m.name].grad.reshape(-1).float() for m in layout]).cpu().numpy()
    finally:
        for w in weights.values():
            w.grad = None
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        model.train(was_training)
    return out
