"""The tiny Gemma-3, the loader shared with hub models, and LoRA placement/size (no downloads)."""

from __future__ import annotations

import pytest
import torch
from transformers import (Gemma3Config, Gemma3ForCausalLM, Gemma3ForConditionalGeneration, Gemma3TextConfig,
                          SiglipVisionConfig)

from gatoms.lm.finetune import FinetuneConfig, apply_lora
from gatoms.lm.layout import Layout
from gatoms.lm.model import (ModelConfig, build_tiny_model, count_parameters, load_base, lora_target_modules,
                             tiny_gemma3_config)
from gatoms.lm.tokenizer import train_tokenizer
from gatoms.world import WorldConfig, build_world

SMALL = ModelConfig(vocab_size=400, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2, head_dim=8,
                    intermediate_size=64, max_position_embeddings=64)

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)


@pytest.fixture(scope="module")
def tokenizer():
    w = build_world(WorldConfig(seed=0, n_base=400, n_finetune=50, n_heldout_per_family=1, n_eval_inviting=3,
                                n_eval_control=0))
    return train_tokenizer([t for d in w.base for t in (d.prompt, d.response)], vocab_size=400)


def _expected_lora_params(n_layers: int, r: int, hidden: int, heads: int, kv_heads: int, head_dim: int) -> int:
    # q_proj: A (r × hidden), B (heads·head_dim × r); v_proj: A (r × hidden), B (kv_heads·head_dim × r)
    return n_layers * r * (2 * hidden + heads * head_dim + kv_heads * head_dim)


def test_tiny_config_follows_model_config():
    c = tiny_gemma3_config(SMALL, vocab_size=390)
    assert isinstance(c, Gemma3TextConfig)
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads,
            c.head_dim) == (390, 32, 3, 4, 2, 8)
    assert c.layer_types == ["full_attention"] * 3 and (c.pad_token_id, c.eos_token_id, c.bos_token_id) == (0, 1, 2)
    model = build_tiny_model(SMALL, 390)
    assert isinstance(model, Gemma3ForCausalLM) and count_parameters(model) < 1_000_000
    again = build_tiny_model(SMALL, 390)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))  # seeded


@pytest.mark.parametrize("r", [8, 4])
def test_lora_modules_and_trainable_parameters_from_config(r):
    model = build_tiny_model(SMALL, 400)
    peft_model = apply_lora(model, FinetuneConfig(lora_r=r))
    layout = Layout.from_model(peft_model)
    assert len(layout) == 4 * SMALL.num_layers  # lora_A and lora_B of q_proj and v_proj in every layer
    expected = _expected_lora_params(SMALL.num_layers, r, SMALL.hidden_size, SMALL.num_heads, SMALL.num_kv_heads,
                                     SMALL.head_dim)
    assert count_parameters(peft_model, trainable_only=True) == expected == layout.n_params
    names = {m.name.split(".self_attn.")[1] for m in layout}
    assert names == {"q_proj.lora_A.default", "q_proj.lora_B.default", "v_proj.lora_A.default", "v_proj.lora_B.default"}


def test_lora_with_zero_b_leaves_logits_unchanged():
    model = build_tiny_model(SMALL, 400)
    ids = torch.randint(6, 400, (2, 12))
    with torch.no_grad():
        before = model(input_ids=ids).logits
    peft_model = apply_lora(model, FinetuneConfig())
    peft_model.eval()
    assert all(torch.count_nonzero(p) == 0 for n, p in peft_model.named_parameters() if "lora_B" in n)
    with torch.no_grad():
        assert torch.equal(peft_model(input_ids=ids).logits, before)
        for n, p in peft_model.named_parameters():  # the same test fails once B is not zero
            if "lora_B" in n:
                p.normal_(0, 0.1)
        assert not torch.allclose(peft_model(input_ids=ids).logits, before)


def test_paper_path_loads_a_saved_gemma3_and_applies_lora(tmp_path, tokenizer):
    """The hub path with a small random Gemma-3 saved to disk: load_base → LoRA, as for gemma-3-4b-it."""
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64)
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, tok = load_base(tmp_path, dtype="float32", device="cpu")
    assert isinstance(model, Gemma3ForCausalLM) and not model.training
    assert tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    peft_model = apply_lora(model, FinetuneConfig())
    assert len(Layout.from_model(peft_model)) == 4 * 2
    assert count_parameters(peft_model, trainable_only=True) == _expected_lora_params(2, 8, 32, 2, 1, 16)
    bf16, _ = load_base(tmp_path, dtype="bfloat16", device="cpu")
    assert next(bf16.parameters()).dtype == torch.bfloat16


def test_multimodal_gemma3_gets_lora_on_the_text_decoder_only(tmp_path, tokenizer):
    """gemma-3-4b-it is multimodal: its vision tower also has q_proj/v_proj, which must not get LoRA."""
    vocab = len(tokenizer) + 3
    text = Gemma3TextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                image_size=28, patch_size=14)
    config = Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4,
                          image_token_index=vocab - 1, boi_token_index=vocab - 3, eoi_token_index=vocab - 2)
    Gemma3ForConditionalGeneration(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, _ = load_base(tmp_path, device="cpu")
    targets = lora_target_modules(model, ("q_proj", "v_proj"))
    assert len(targets) == 4 and all("language_model" in t for t in targets)
    peft_model = apply_lora(model, FinetuneConfig())
    layout = Layout.from_model(peft_model)
    assert len(layout) == 8 and not any("vision" in m.name for m in layout)
    with torch.no_grad():
        assert peft_model(input_ids=torch.tensor([[2, 7, 8, 9]])).logits.shape == (1, 4, vocab)


def test_errors_say_what_to_change():
    with pytest.raises(ValueError, match="model.dtype"):
        ModelConfig(dtype="float64")
    with pytest.raises(ValueError, match="model.device"):
        ModelConfig(device="tpu")
    with pytest.raises(ValueError, match="multiple of model.num_kv_heads"):
        ModelConfig(num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match="load its saved base_model"):
        load_base("embedded")
    with pytest.raises(ValueError, match="change finetune.target_modules"):
        lora_target_modules(build_tiny_model(SMALL, 400), ("c_attn",))
