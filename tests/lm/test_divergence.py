"""KL from the clean adapter and held-out loss in batched, padded forward passes, against a one-sequence-at-a-time
float64 reference; the clean adapter is at KL 0 and the weights are restored after every measurement."""

from __future__ import annotations

import math

import pytest
import torch

from gatoms.lm.adapters import lora_weights
from gatoms.lm.divergence import Divergence, teacher_forced
from gatoms.lm.encoding import format_prompt
from gatoms.lm.finetune import FinetuneConfig, finetune_lora
from gatoms.lm.layout import Layout
from gatoms.lm.model import ModelConfig, build_tiny_model
from gatoms.lm.tokenizer import end_of_turn_id, train_tokenizer
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
                             FinetuneConfig(epochs=1, batch_size=8, lr=1e-2, max_length=128))
    model.eval()
    return w, tok, model, Layout.from_model(model)


def reference(model, tok, layout, pairs, heldout, direction, alpha, max_tokens):
    """Mean KL(clean ‖ steered) and mean NLL per scored token, one unpadded sequence at a time, in float64."""
    clean = lora_weights(model, layout)
    end = end_of_turn_id(tok)

    def logp(prompt, response, weights):
        for name, w in layout.weights(model).items():
            w.data.copy_(weights[name])
        p = tok(format_prompt(tok, prompt), add_special_tokens=False)["input_ids"]
        r = (tok(response, add_special_tokens=False)["input_ids"] + [end])[:max_tokens]
        with torch.no_grad():
            out = model(input_ids=torch.tensor([p + r])).logits[0].double()
        return torch.log_softmax(out[len(p) - 1:len(p) - 1 + len(r)], -1), torch.tensor(r)

    blocks = layout.unflatten(direction.double())
    steered = {k: (w.double() - alpha * blocks[k]).float() for k, w in clean.items()}
    kl, n = 0.0, 0
    for prompt, response in pairs:
        c, _ = logp(prompt, response, clean)
        s, _ = logp(prompt, response, steered)
        kl += float((c.exp() * (c - s)).sum())
        n += c.shape[0]
    nll, m = 0.0, 0
    for prompt, response in heldout:
        s, targets = logp(prompt, response, steered)
        nll -= float(s.gather(1, targets[:, None]).sum())
        m += len(targets)
    for name, w in layout.weights(model).items():
        w.data.copy_(clean[name])
    return kl / n, nll / m


def test_kl_and_heldout_loss_match_the_one_at_a_time_reference(setup):
    w, tok, model, layout = setup
    pairs = [(d.prompt, d.response) for d in w.heldout[:7]]  # lengths differ: padding is exercised
    heldout = [(d.prompt, d.response) for d in w.heldout[7:12]]
    div = Divergence(model, tok, layout, pairs, heldout, max_tokens=6, batch_size=3)
    before = {k: v.clone() for k, v in lora_weights(model, layout).items()}
    torch.manual_seed(0)
    v = torch.randn(layout.n_params) * 0.05
    for alpha in (2.0, -3.0):
        d = div.measure(v, alpha)
        kl, nll = reference(model, tok, layout, pairs, heldout, v, alpha, max_tokens=6)
        assert d.kl == pytest.approx(kl, rel=1e-4, abs=1e-7) and d.kl > 1e-4
        assert d.nll == pytest.approx(nll, rel=1e-5)
    clean = div.measure(None, 0.0)
    _, nll0 = reference(model, tok, layout, pairs[:1], heldout, v, 0.0, max_tokens=6)
    assert clean.kl == 0.0 and clean.nll == pytest.approx(nll0, rel=1e-5)
    after = lora_weights(model, layout)
    assert all(torch.equal(before[k], after[k]) for k in before)  # restored


def test_teacher_forcing_scores_the_first_response_tokens(setup):
    w, tok, model, layout = setup
    (enc,) = teacher_forced(tok, [("Is a cat an animal?", "Yes, a cat is an animal.")], max_tokens=3)
    n_prompt, n_scored, ids = enc[0], enc[1], enc[2:]
    assert n_scored == 3 and len(ids) == n_prompt + 3
    (full,) = teacher_forced(tok, [("Is a cat an animal?", "Yes.")], max_tokens=50)
    assert full[2:][-1] == end_of_turn_id(tok)  # the end of turn is scored too
    with pytest.raises(ValueError, match="neutral"):
        Divergence(None, tok, None, [])
    no_heldout = Divergence(model, tok, layout, [(d.prompt, d.response) for d in w.heldout[:2]])
    assert math.isnan(no_heldout.measure(None, 0.0).nll)
