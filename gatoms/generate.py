"""Batched generation from a chat model: prompts in, decoded responses out.

Prompts are put in the chat template (:func:`gatoms.data.format_prompt`), left-padded into batches,
decoded greedily by default (the paper's temperature 0) and stopped at end-of-turn or eos. Only the
new tokens are decoded, without special tokens. Used by the held-out check and the behaviour base
rates of step 00 and by the steering evaluation.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from gatoms.data import format_prompt
from gatoms.tokenizer import stop_ids

log = logging.getLogger(__name__)


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """Responses to ``prompts`` (same order), each at most ``max_new_tokens`` tokens.

    Greedy unless ``do_sample`` (then ``temperature``, seeded by ``seed``: same seed, same outputs).
    The model is put in eval mode for the call and restored after.
    """
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be >= 1")
    if do_sample and temperature <= 0:
        raise ValueError("temperature must be positive when sampling; use do_sample=False for greedy")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = stop_ids(tokenizer)
    if do_sample:
        torch.manual_seed(seed)
    encoded, order = encode_prompts(tokenizer, prompts)
    out: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        ids, mask = left_padded(encoded, rows, pad_id)
        kwargs = {"do_sample": do_sample}
        if do_sample:
            kwargs.update(temperature=temperature, top_k=0, top_p=1.0)
        else:
            kwargs.update(temperature=None, top_k=None, top_p=None)
        gen = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            eos_token_id=stops,
            pad_token_id=pad_id,
            **kwargs,
        )  # (B, T + new)
        for r, i in enumerate(rows):
            new = gen[r, ids.shape[1]:].tolist()
            for k, t in enumerate(new):
                if t in stops:
                    new = new[:k]
                    break
            out[i] = tokenizer.decode(new, skip_special_tokens=True)
    model.train(was_training)
    return out


def encode_prompts(tokenizer, prompts: list[str]) -> tuple[list[list[int]], list[int]]:
    """Chat-formatted token ids of each prompt, and the prompt order sorted by length (so batches pad
    little; callers restore the original order)."""
    encoded = [tokenizer(format_prompt(tokenizer, p), add_special_tokens=False)["input_ids"] for p in prompts]
    return encoded, sorted(range(len(prompts)), key=lambda i: len(encoded[i]))


def left_padded(encoded: list[list[int]], rows: list[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts ``rows`` of ``encoded`` left-padded to the longest: ids and attention mask, (B, T) each."""
    width = max(len(encoded[i]) for i in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, i in enumerate(rows):
        ids[r, width - len(encoded[i]):] = torch.tensor(encoded[i])
        mask[r, width - len(encoded[i]):] = 1
    return ids, mask
