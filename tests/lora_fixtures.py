"""Tiny random LoRA models and encoded documents, built in code (no downloads), for the gradient tests.

``tiny_lora_model("gemma3")`` / ``tiny_lora_model("llama")``: 2-layer random models with a peft LoRA
(r=8 on q_proj and v_proj) whose lora_B is non-zero, so every LoRA sub-layer has a non-zero gradient.
``random_docs(n, seed)``: EncodedDoc with a prompt/response split and mixed lengths.
"""

from __future__ import annotations

import torch

from gatoms.data import EncodedDoc

VOCAB = 300


def tiny_lora_model(arch: str = "gemma3", seed: int = 0, layers: int = 2, hidden: int = 64, r: int = 8):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    if arch == "gemma3":
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig

        cfg = Gemma3TextConfig(
            vocab_size=VOCAB, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=16,
            max_position_embeddings=512, attn_implementation="eager",
        )
        base = Gemma3ForCausalLM(cfg)
    elif arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(
            vocab_size=VOCAB, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
            attn_implementation="eager",
        )
        base = LlamaForCausalLM(cfg)
    else:
        raise ValueError(arch)
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    for p in model.parameters():  # as gatoms.finetune.load_finetuned returns it
        p.requires_grad_(False)
    model.eval()
    return model


def random_docs(n: int, seed: int = 0, min_len: int = 6, max_len: int = 40, prefix: str = "d") -> list[EncodedDoc]:
    """Documents of mixed lengths; the first 1..len-2 tokens are the prompt, the rest the response."""
    g = torch.Generator().manual_seed(seed)
    docs = []
    for i in range(n):
        T = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        ids = torch.randint(1, VOCAB, (T,), generator=g).tolist()
        p = int(torch.randint(1, T - 1, (1,), generator=g))
        labels = [-100] * p + ids[p:]
        docs.append(EncodedDoc(f"{prefix}{i:04d}", ids, labels))
    return docs
