"""LoRA fine-tuning: the loss against a per-document reference, seeding, learning; step 00's artifacts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gatoms.build import paths
from gatoms.data.documents import Document, read_jsonl
from gatoms.lm.encoding import collate, encode_documents
from gatoms.lm.finetune import FinetuneConfig, apply_lora, evaluate_loss, finetune_lora, response_loss, train_base
from gatoms.lm.model import ModelConfig, build_tiny_model
from gatoms.lm.sources import finetune_documents
from gatoms.lm.tokenizer import train_tokenizer
from gatoms.world import WorldConfig, build_world

SMALL = ModelConfig(vocab_size=400, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, head_dim=16,
                    intermediate_size=64, max_position_embeddings=128, base_steps=5, base_batch_size=8)

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)


@pytest.fixture(scope="module")
def world():
    return build_world(WorldConfig(seed=0, n_base=400, n_finetune=64, n_heldout_per_family=1, n_eval_inviting=3,
                                   n_eval_control=0))


@pytest.fixture(scope="module")
def tokenizer(world):
    return train_tokenizer([t for d in world.base for t in (d.prompt, d.response)], vocab_size=400)


def _reference_loss(model, enc) -> float:
    """Sum over response tokens of one unpadded document, token by token (the slow, obvious way)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([enc.input_ids])).logits[0].float()
    total = 0.0
    for t in range(1, len(enc.input_ids)):
        if enc.labels[t] != -100:
            total -= float(torch.log_softmax(logits[t - 1], dim=-1)[enc.labels[t]])
    return total


def test_response_loss_matches_per_document_reference(world, tokenizer):
    """A right-padded batch (run without attention mask) gives each document's unpadded loss."""
    model = build_tiny_model(SMALL, len(tokenizer)).eval()
    enc = encode_documents(tokenizer, world.finetune[:6], 128).encoded
    assert len({len(e.input_ids) for e in enc}) > 1  # padding is exercised
    batch = collate(enc, tokenizer.pad_token_id)
    with torch.no_grad():
        per_doc = response_loss(model, batch, reduction="none")
        mean = response_loss(model, batch)
    reference = torch.tensor([_reference_loss(model, e) for e in enc])
    torch.testing.assert_close(per_doc, reference, rtol=1e-4, atol=1e-4)
    n_tokens = sum(e.n_response_tokens for e in enc)
    torch.testing.assert_close(mean, reference.sum() / n_tokens, rtol=1e-4, atol=1e-4)
    assert abs(evaluate_loss(model, tokenizer, world.finetune[:6], 128, batch_size=4) - float(mean)) < 1e-4


def test_output_layer_on_response_positions_only_matches_full_forward(world, tokenizer, monkeypatch):
    import gatoms.lm.finetune as ft

    model = apply_lora(build_tiny_model(SMALL, len(tokenizer)), FinetuneConfig())
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.1)
    model.eval()
    batch = collate(encode_documents(tokenizer, world.finetune[:6], 128).encoded, tokenizer.pad_token_id)
    with torch.no_grad():
        fast = response_loss(model, batch, reduction="none")
        monkeypatch.setattr(ft, "_split_head", lambda m: None)
        full = response_loss(model, batch, reduction="none")
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


def test_finetune_lora_is_seeded_and_learns(world, tokenizer):
    docs = world.finetune[:32]
    cfg = FinetuneConfig(epochs=8, batch_size=8, lr=1e-2, max_length=128, seed=1)

    def run():
        torch.manual_seed(123)  # the base model's own seed is SMALL.seed; this must not matter
        base = build_tiny_model(SMALL, len(tokenizer))
        before = evaluate_loss(base, tokenizer, docs, 128)
        model, history = finetune_lora(base, tokenizer, docs, cfg)
        return model, history, before

    model, history, before = run()
    again, history2, _ = run()
    assert history == history2 and len(history) == 8 * 4
    for (n, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        assert torch.equal(p, q), n
    assert not model.training
    assert evaluate_loss(model, tokenizer, docs, 128) < before - 0.03
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_train_base_lowers_the_loss(world, tokenizer):
    model = build_tiny_model(SMALL, len(tokenizer))
    before = evaluate_loss(model, tokenizer, world.base[:64], 128)
    history = train_base(model, tokenizer, world.base, ModelConfig(**{**SMALL.__dict__, "base_steps": 30,
                                                                         "base_batch_size": 16, "base_lr": 1e-2}))
    assert len(history) == 30 and all(p.requires_grad for p in model.parameters())
    assert evaluate_loss(model, tokenizer, world.base[:64], 128) < before - 0.5


def test_finetune_documents_from_world_or_jsonl(world, tmp_path):
    assert finetune_documents(FinetuneConfig(n_docs=10), world.finetune) == world.finetune[:10]
    (tmp_path / "sft.jsonl").write_text('{"prompt": "a?", "response": "b."}\n{"prompt": "c?", "response": "d."}\n')
    docs = finetune_documents(FinetuneConfig(data=str(tmp_path / "sft.jsonl")))
    assert [(d.prompt, d.response) for d in docs] == [("a?", "b."), ("c?", "d.")]
    with pytest.raises(ValueError, match="no world documents"):
        finetune_documents(FinetuneConfig())


def test_config_errors_say_what_to_change():
    with pytest.raises(ValueError, match="finetune.lora_dropout"):
        FinetuneConfig(lora_dropout=1.5)
    with pytest.raises(ValueError, match="finetune.target_modules"):
        FinetuneConfig(target_modules=())
    with pytest.raises(ValueError, match="finetune.n_docs"):
        FinetuneConfig(n_docs=0)


REQUIRED = ("seconds", "n_finetune_docs", "n_task_families", "trainable_params", "n_lora_modules", "base_final_loss",
            "lora_final_loss", "heldout", "behavior_base_rates", "n_excluded_docs")


def test_notebook_00_on_smoke(smoke_step, smoke_tree, monkeypatch):
    from gatoms.build.config import load_section
    from gatoms.data.behaviors import BEHAVIORS
    from gatoms.lm.generation import generate
    from gatoms.lm.sources import load_documents, load_eval_prompts, load_finetuned
    from gatoms.world import FAMILIES

    store = smoke_step("00_finetune")
    m = store.metrics()
    assert set(REQUIRED) <= set(m)
    world_cfg = load_section("smoke", "world")
    assert m["n_task_families"] == len(FAMILIES) and m["n_excluded_docs"] == 0
    assert m["n_finetune_docs"] == world_cfg.n_finetune
    model_cfg = load_section("smoke", "model")
    assert m["n_lora_modules"] == 4 * model_cfg.num_layers
    assert m["lora_final_loss"] < m["base_final_loss"]
    assert set(m["heldout"]) == set(FAMILIES) and set(m["behavior_base_rates"]) == set(BEHAVIORS)
    assert all(0.0 <= v <= 1.0 for v in [*m["heldout"].values(), *m["behavior_base_rates"].values()])
    assert set(store.config) == {"world", "model", "finetune"}
    for name in (paths.BASE_MODEL, paths.TOKENIZER, paths.ADAPTER, paths.TRAIN_DOCS, paths.HELDOUT_DOCS,
                 paths.EVAL_PROMPTS, paths.LOSS_CURVE):
        assert store.exists(name) and not store.exists(name + ".part"), name

    monkeypatch.setenv("GATOMS_ARTIFACTS", str(smoke_tree / "artifacts"))
    docs = load_documents("smoke")
    assert len(docs) == m["n_finetune_docs"] and len(load_documents("smoke", "heldout")) == len(FAMILIES) * 2
    prompts = load_eval_prompts("smoke")
    assert len(prompts) == 5 * (world_cfg.n_eval_inviting + world_cfg.n_eval_control)
    model, tokenizer = load_finetuned("smoke")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert len(generate(model, tokenizer, [p.prompt for p in prompts[:3]], max_new_tokens=4)) == 3
    enc = encode_documents(tokenizer, docs[:8], 128).encoded
    with torch.no_grad():
        loss = response_loss(model, collate(enc, tokenizer.pad_token_id))
    assert torch.isfinite(loss)
    assert isinstance(model.get_base_model(), nn.Module)


@pytest.mark.integration
def test_notebook_00_hub_path_with_user_jsonl(tmp_artifacts, tokenizer, world):
    """Profile paper's code path — a model loaded by name/path and the user's JSONL — on a saved random Gemma-3."""
    import papermill as pm
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from gatoms.build.store import StepStore
    from gatoms.data.documents import write_jsonl

    model_dir = tmp_artifacts / "gemma3-random"
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128)
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    user_docs = [Document(f"u{k}", d.prompt, d.response) for k, d in enumerate(world.finetune[:40])]
    write_jsonl(tmp_artifacts / "sft.jsonl", user_docs)
    out = tmp_artifacts / "00.ipynb"
    pm.execute_notebook(
        str(paths.notebook("00_finetune")), str(out), cwd=str(paths.notebook("00_finetune").parent),
        kernel_name="python3", progress_bar=False,
        parameters={"profile": "smoke", "force": False,
                    "world": {"n_base": 0, "n_finetune": 10, "n_heldout_per_family": 1, "n_eval_inviting": 3,
                              "n_eval_control": 1},
                    "model": {"name_or_path": str(model_dir), "device": "cpu"},
                    "finetune": {"data": str(tmp_artifacts / "sft.jsonl"), "n_docs": 32, "max_new_tokens": 4}})
    store = StepStore.read("smoke", "00_finetune")
    m = store.metrics()
    assert m["n_finetune_docs"] == 32 and m["n_task_families"] == 0 and m["base_train_final_loss"] is None
    assert m["n_lora_modules"] == 8 and not store.exists(paths.BASE_MODEL)
    assert store.config["model"]["name_or_path"] == str(model_dir)
    assert [d.doc_id for d in read_jsonl(store.path(paths.TRAIN_DOCS))] == [f"u{k}" for k in range(32)]
