"""Batched generation from a chat model: prompts in, decoded responses out.

Prompts are put in the chat template (:func:`gatoms.lm.encoding.format_prompt`), left-padded into
batches, decoded greedily by default (the paper's temperature 0) and stopped at end-of-turn or eos. Only
the new tokens are decoded, without special tokens. Used by the held-out check and the behaviour base
rates of step 00 and by the steering evaluation.

- :func:`generate` — the one entry point: greedy (:func:`greedy_generate`, the fast path) or sampled.
- :func:`hf_generate` — transformers' own ``model.generate`` on the same batches: sampling, and the
  reference the greedy fast path is tested against.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gatoms.lm.encoding import format_prompt, left_padded
from gatoms.lm.tokenizer import stop_ids

log = logging.getLogger(__name__)


def _cache_name() -> str:
    """The KV cache's name in a causal LM's forward and output: ``cache`` from transformers 5.2x on,
    ``past_key_values`` before (still accepted there, with a deprecation warning on every step)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    return "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


_CACHE = _cache_name()


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
    if not do_sample:
        return greedy_generate(model, tokenizer, prompts, max_new_tokens, batch_size)
    if temperature <= 0:
        raise ValueError("temperature must be positive when sampling; use do_sample=False for greedy")
    return hf_generate(model, tokenizer, prompts, max_new_tokens, batch_size, True, temperature, seed)


@torch.no_grad()
def hf_generate(model: nn.Module, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 32,
                do_sample: bool = False, temperature: float = 1.0, seed: int = 0) -> list[str]:
    """:func:`generate` through transformers' ``model.generate`` (batch × longest response per batch)."""
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


@torch.no_grad()
def greedy_generate(model: nn.Module, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int,
                    batch_size: int = 32) -> list[str]:
    """Greedy responses (the paper's temperature 0), batched with the finished rows dropped.

    Prompt formatting, left padding, length-sorted batches and stop tokens as :func:`hf_generate`; a row
    that has stopped leaves the batch (its KV cache rows are dropped once a quarter of the batch has
    stopped), so a batch costs the sum of its response lengths instead of batch × its longest response.
    The tests check the outputs equal ``hf_generate``'s greedy ones.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = torch.tensor(stop_ids(tokenizer), device=device)
    encoded, order = encode_prompts(tokenizer, prompts)
    out: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        ids, mask = left_padded(encoded, rows, pad_id)
        ids, mask = ids.to(device), mask.to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T) positions that ignore the left padding
        res = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
        cache, nxt, last = res[_CACHE], res.logits[:, -1].argmax(-1), pos[:, -1]
        alive = torch.arange(len(rows), device=device)  # batch row → index into rows
        finished = torch.zeros(len(rows), dtype=torch.bool, device=device)
        tokens: list[list[int]] = [[] for _ in rows]
        for step in range(max_new_tokens):
            finished |= torch.isin(nxt, stops)
            for j in (~finished).nonzero().flatten().tolist():
                tokens[int(alive[j])].append(int(nxt[j]))
            n_done = int(finished.sum())
            if step == max_new_tokens - 1 or n_done == len(alive):
                break
            if n_done >= max(1, len(alive) // 4):  # drop the finished rows
                keep = (~finished).nonzero().flatten()
                cache.batch_select_indices(keep)
                alive, nxt, mask, last, finished = alive[keep], nxt[keep], mask[keep], last[keep], finished[keep]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            last = last + 1
            res = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last[:, None],
                        use_cache=True, **{_CACHE: cache})
            cache, nxt = res[_CACHE], res.logits[:, -1].argmax(-1)
        for r, i in enumerate(rows):
            out[i] = tokenizer.decode(tokens[r], skip_special_tokens=True)
    model.train(was_training)
    return out
