"""How far a steered adapter moves the model where it should not, from forward passes only (no generation).

- **KL from the clean adapter** on neutral prompts: each prompt is teacher-forced with the clean adapter's
  own response (chat template, response, end of turn), and at each of the first ``max_tokens`` response
  positions the next-token distributions are compared, KL(p_clean ‖ p_steered) in nats, averaged over
  every scored token. 0 for the clean adapter; it grows as the perturbation changes what the model
  would say to prompts that invite nothing.
- **Held-out loss**: the mean negative log-likelihood of held-out documents' own responses (same
  positions); ``exp`` of it is the held-out perplexity.

One forward pass per batch and variant; the clean adapter's log-probabilities at the scored positions are
kept in memory (scored tokens × vocabulary × 4 bytes: keep ``max_tokens`` and the prompt count small
for a large vocabulary).

    div = Divergence(model, tokenizer, layout, neutral=[(prompt, clean_response), ...],
                     heldout=[(prompt, reference_response), ...], max_tokens=32)
    d = div.measure(direction, alpha)     # d.kl, d.nll for θ' = θ − alpha·direction
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gatoms.lm.adapters import apply_weights, lora_weights, steered_weights
from gatoms.lm.encoding import format_prompt
from gatoms.lm.layout import Layout
from gatoms.lm.tokenizer import end_of_turn_id


@dataclass(frozen=True)
class Scored:
    """Teacher-forced sequences, right-padded, and which positions are scored."""

    ids: torch.Tensor  # (B, T)
    mask: torch.Tensor  # (B, T) attention mask
    rows: torch.Tensor  # (S,) batch row of each scored position
    cols: torch.Tensor  # (S,) column whose logits predict the scored token
    targets: torch.Tensor  # (S,) the token predicted there


def teacher_forced(tokenizer: Any, pairs: Sequence[tuple[str, str]], max_tokens: int) -> list[list[int]]:
    """Each (prompt, response) as token ids: the chat-formatted prompt, then the response and the end-of-turn
    token; returns per pair ``[n_prompt, n_scored, *ids]`` where the first ``n_scored`` ≤ ``max_tokens``
    response tokens are scored."""
    end = end_of_turn_id(tokenizer)
    out = []
    for prompt, response in pairs:
        p = tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        r = tokenizer(response, add_special_tokens=False)["input_ids"] + [end]
        r = r[:max_tokens]
        out.append([len(p), len(r), *p, *r])
    return out


def batches(encoded: list[list[int]], pad_id: int, batch_size: int) -> list[Scored]:
    """Right-padded batches of :func:`teacher_forced` sequences (sorted by length, so batches pad little)
    with their scored positions."""
    encoded = sorted(encoded, key=len)
    out = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(len(e) - 2 for e in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        rows, cols, targets = [], [], []
        for i, e in enumerate(chunk):
            n_prompt, n_scored, seq = e[0], e[1], e[2:]
            ids[i, :len(seq)] = torch.tensor(seq)
            mask[i, :len(seq)] = 1
            for k in range(n_scored):
                rows.append(i)
                cols.append(n_prompt - 1 + k)  # the logits at column c predict token c + 1
                targets.append(seq[n_prompt + k])
        out.append(Scored(ids, mask, torch.tensor(rows), torch.tensor(cols), torch.tensor(targets)))
    return out


@dataclass(frozen=True)
class Damage:
    """What one variant does to the model off its behaviour."""

    kl: float
    """Mean KL(p_clean ‖ p_steered) per scored response token of the neutral prompts (nats)."""
    nll: float
    """Mean negative log-likelihood per scored response token of the held-out documents (nats; NaN when
    no held-out document was given)."""


class Divergence:
    """Measures :class:`Damage` of variants θ' = θ − alpha·direction of a loaded peft model (weights swapped
    in place and restored)."""

    def __init__(self, model: nn.Module, tokenizer: Any, layout: Layout, neutral: Sequence[tuple[str, str]],
                 heldout: Sequence[tuple[str, str]] = (), max_tokens: int = 32, batch_size: int = 64):
        if not neutral:
            raise ValueError("no neutral prompts to measure the KL on")
        if max_tokens < 1 or batch_size < 1:
            raise ValueError("max_tokens and batch_size must be ≥ 1")
        self.model, self.layout = model, layout
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.neutral = batches(teacher_forced(tokenizer, neutral, max_tokens), pad, batch_size)
        self.heldout = batches(teacher_forced(tokenizer, heldout, max_tokens), pad, batch_size) if heldout else []
        self.clean = lora_weights(model, layout)
        self.clean_logp = [self._logp(b) for b in self.neutral]  # each (S, V)
        self.n_neutral, self.n_heldout = len(neutral), len(heldout)

    @torch.no_grad()
    def _logp(self, b: Scored) -> torch.Tensor:
        device = next(self.model.parameters()).device
        logits = self.model(input_ids=b.ids.to(device), attention_mask=b.mask.to(device), use_cache=False).logits
        return torch.log_softmax(logits[b.rows.to(device), b.cols.to(device)].float(), dim=-1).cpu()  # (S, V)

    def _measure(self) -> Damage:
        kl_sum, n = 0.0, 0
        for b, clean in zip(self.neutral, self.clean_logp):
            lp = self._logp(b)
            kl_sum += float((clean.exp() * (clean - lp)).sum())
            n += lp.shape[0]
        nll_sum, m = 0.0, 0
        for b in self.heldout:
            lp = self._logp(b)
            nll_sum -= float(lp.gather(1, b.targets[:, None]).sum())
            m += lp.shape[0]
        return Damage(kl=max(0.0, kl_sum / n), nll=nll_sum / m if m else float("nan"))

    def measure(self, direction: torch.Tensor | None, alpha: float) -> Damage:
        """The damage of θ' = θ − alpha·direction (the clean adapter for ``direction`` None or alpha 0)."""
        was_training = self.model.training
        self.model.eval()
        try:
            apply_weights(self.model, self.layout, steered_weights(self.clean, self.layout, direction, alpha))
            return self._measure()
        finally:
            apply_weights(self.model, self.layout, self.clean)
            self.model.train(was_training)
