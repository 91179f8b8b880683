"""The hooks that give every document's LoRA gradient from one batched backward pass.

    forward hook on lora_X   keeps its input      a  (B, T, i)
    tensor hook on its output receives            δ  (B, T, o)   (= ∂(Σ_n L_n)/∂output, scaling included)
    G_n = Σ_t δ_{n,t} a_{n,t}ᵀ                    einsum("bto,bti->boi")   (B, o, i)

Documents are independent within a batch (causal attention, right padding), so ∂(Σ_n L_n)/∂out_{n,t} is
∂L_n/∂out_{n,t}; padded positions have δ = 0. All parameters stay frozen: a forward hook on the input
embeddings makes them require grad, which is enough for the tensor hooks to fire, and no parameter
gradient is ever materialised. The same hooks accumulate the Kronecker factors Σ_t a aᵀ and Σ_t δ δᵀ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from gatoms.lm.layout import Layout


@contextlib.contextmanager
def logits_at(model: nn.Module) -> Iterator[dict]:
    """Compute the output layer only at the positions in ``state["positions"]`` ((B, T) bool).

    A forward pre-hook on the output embeddings (``lm_head``) replaces its input (B, T, H) by the selected
    rows (1, n, H), so the logits come back as (1, n, V) in row-major (document, position) order. Only
    the positions that predict a response token need logits; the rest would cost a (B, T, V) matmul, its
    softmax and a (B, T, V) zero gradient for nothing.
    """
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError("the model has no output embeddings (lm_head); gatoms needs a causal LM")
    state: dict = {}

    def pre_hook(module, args):
        hidden = args[0]  # (B, T, H)
        return (hidden[state["positions"]].unsqueeze(0), *args[1:])  # (1, n, H)

    handle = head.register_forward_pre_hook(pre_hook)
    try:
        yield state
    finally:
        handle.remove()


class LoraHooks:
    """Forward hooks on every LoRA sub-layer (input a) + tensor hooks on their outputs (δ).

    Per batch it fills ``rows`` (B, D) with G = Σ_t δ aᵀ and/or adds Σ_t a aᵀ, Σ_t δ δᵀ over real tokens
    to float64 accumulators. Modules whose inputs are the same tensor (q/k/v lora_A of one layer) share
    one a aᵀ product per batch.
    """

    def __init__(self, model: nn.Module, layout: Layout, device: torch.device):
        self.layout = layout
        mods = dict(model.named_modules())
        self.specs = {m.name: m for m in layout}
        self.A = {m.name: torch.zeros(m.shape[1], m.shape[1], dtype=torch.float64, device=device) for m in layout}
        self.S = {m.name: torch.zeros(m.shape[0], m.shape[0], dtype=torch.float64, device=device) for m in layout}
        self.n_tokens = 0
        self.want_rows = False
        self.want_factors = False
        self.rows: torch.Tensor | None = None  # (B, D) float32
        self.tok_idx: torch.Tensor | None = None  # (n_tok,) flat indices of real tokens
        self._recent: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._handles = [mods[m.name].register_forward_hook(self._forward(m.name)) for m in layout]

    def start_batch(self, B: int, mask: torch.Tensor, rows: bool, factors: bool) -> None:
        self.want_rows, self.want_factors = rows, factors
        self.rows = torch.zeros(B, self.layout.n_params, dtype=torch.float32, device=mask.device) if rows else None
        self.tok_idx = mask.reshape(-1).nonzero().squeeze(1)
        self._recent = []
        if factors:
            self.n_tokens += int(self.tok_idx.numel())

    def end_batch(self) -> None:
        self._recent = []
        self.tok_idx = None

    def _forward(self, name: str):
        def hook(module, inputs, output):
            if not (self.want_rows or self.want_factors):
                return
            a = inputs[0].detach()  # (B, T, i)
            if self.want_factors:
                self._accumulate_A(name, a)
            if output.requires_grad:
                output.register_hook(self._backward(name, a))

        return hook

    def _accumulate_A(self, name: str, a: torch.Tensor) -> None:
        for prev, prod in self._recent:
            if prev is a or (prev.shape == a.shape and torch.equal(prev, a)):
                self.A[name] += prod
                return
        x = a.reshape(-1, a.shape[-1]).index_select(0, self.tok_idx).float()  # (n_tok, i)
        prod = (x.T @ x).double()
        self.A[name] += prod
        self._recent = [*self._recent[-3:], (a, prod)]

    def _backward(self, name: str, a: torch.Tensor):
        spec = self.specs[name]

        def hook(grad: torch.Tensor):  # (B, T, o)
            if self.want_rows:
                G = torch.einsum("bto,bti->boi", grad.float(), a.float())  # (B, o, i)
                self.rows[:, spec.offset : spec.offset + spec.size] = G.reshape(G.shape[0], -1)
            if self.want_factors:
                d = grad.reshape(-1, grad.shape[-1]).index_select(0, self.tok_idx).float()  # (n_tok, o)
                self.S[name] += (d.T @ d).double()

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


@contextlib.contextmanager
def frozen_with_input_grad(model: nn.Module) -> Iterator[dict]:
    """Freeze every parameter, eval mode, and make the input embeddings' output require grad.

    Yields a dict whose ``"embeds"`` is the last embeddings output (the tensor to differentiate to).
    Restores requires_grad flags and the training mode afterwards.
    """
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    state: dict = {}

    def embed_hook(module, inputs, output):
        out = output.detach().requires_grad_(True)
        state["embeds"] = out
        return out

    handle = model.get_input_embeddings().register_forward_hook(embed_hook)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    try:
        yield state
    finally:
        handle.remove()
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
        model.train(was_training)
