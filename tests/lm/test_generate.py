"""Batched, left-padded, cached greedy generation against a one-prompt-at-a-time argmax loop."""

from __future__ import annotations

import pytest
import torch

from gatoms.lm.encoding import format_prompt
from gatoms.lm.finetune import FinetuneConfig, finetune_lora
from gatoms.lm.generation import generate
from gatoms.lm.model import ModelConfig, build_tiny_model
from gatoms.lm.tokenizer import stop_ids, train_tokenizer
from gatoms.world import WorldConfig, build_world

SMALL = ModelConfig(vocab_size=400, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, head_dim=16,
                    intermediate_size=64, max_position_embeddings=128)

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)


@pytest.fixture(scope="module")
def setup():
    w = build_world(WorldConfig(seed=0, n_base=400, n_finetune=64, n_heldout_per_family=1, n_eval_inviting=3,
                                n_eval_control=0))
    tok = train_tokenizer([t for d in w.base for t in (d.prompt, d.response)], vocab_size=400)
    model, _ = finetune_lora(build_tiny_model(SMALL, len(tok)), tok, w.finetune[:32],
                             FinetuneConfig(epochs=2, batch_size=8, lr=1e-2, max_length=128))
    return w, tok, model


def _reference_greedy(model, tok, prompt: str, max_new_tokens: int) -> str:
    ids = tok(format_prompt(tok, prompt), add_special_tokens=False)["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            nxt = int(model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt in stop_ids(tok):
                break
            new.append(nxt)
    return tok.decode(new, skip_special_tokens=True)


def test_batched_greedy_matches_reference(setup):
    w, tok, model = setup
    prompts = [d.prompt for d in w.heldout[:10]]  # different lengths: left padding is exercised
    got = generate(model, tok, prompts, max_new_tokens=12, batch_size=4)
    assert got == [_reference_greedy(model, tok, p, 12) for p in prompts]
    assert not model.training


def test_sampling_is_seeded(setup):
    w, tok, model = setup
    prompts = [d.prompt for d in w.heldout[:4]]
    a = generate(model, tok, prompts, max_new_tokens=8, do_sample=True, seed=5)
    assert a == generate(model, tok, prompts, max_new_tokens=8, do_sample=True, seed=5)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tok, prompts, max_new_tokens=8, do_sample=True, temperature=0.0)
