"""Tiny random LoRA models and encoded documents, built in code (no downloads), for the gradient tests.

``tiny_lora_model("gemma3")`` / ``tiny_lora_model("llama")``: 2-layer random models with a peft LoRA
(r=8 on q_proj and v_proj) whose lora_B is non-zero, so every LoRA sub-layer has a non-zero gradient.
``random_docs(n, seed)``: EncodedDoc with a prompt/response split and mixed lengths.
``bruteforce_factors(model, docs)``: Kronecker factors the slow way, one document at a time.
"""

from __future__ import annotations

import torch

from gatoms.lm.encoding import EncodedDoc
from gatoms.lm.layout import Layout

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
    for p in model.parameters():  # as gatoms.lm.finetune.load_finetuned returns it
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


def bruteforce_factors(model, docs) -> tuple[dict, dict, int, dict]:
    """One document at a time, no padding: capture each LoRA sub-layer's input a and output gradient
    δ (retain_grad), A = Σ a aᵀ / T, S = Σ δ δᵀ / T; also G = Σ_t δ aᵀ summed per doc for a check."""
    layout = Layout.from_model(model)
    mods = dict(model.named_modules())
    weights = layout.weights(model)
    for w in weights.values():
        w.requires_grad_(True)
    A = {m.name: torch.zeros(m.shape[1], m.shape[1], dtype=torch.float64) for m in layout}
    S = {m.name: torch.zeros(m.shape[0], m.shape[0], dtype=torch.float64) for m in layout}
    grads_ok = {}
    T = 0
    for d in docs:
        seen = {}

        def keep(name):
            def hook(mod, inp, out):
                out.retain_grad()
                seen[name] = (inp[0], out)

            return hook

        hs = [mods[m.name].register_forward_hook(keep(m.name)) for m in layout]
        for w in weights.values():
            w.grad = None
        logits = model(input_ids=torch.tensor([d.input_ids])).logits
        labels = torch.tensor([d.labels])
        torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100, reduction="sum").backward()
        for h in hs:
            h.remove()
        for m in layout:
            a, out = seen[m.name]
            a, delta = a[0].detach().double(), out.grad[0].double()
            A[m.name] += a.T @ a
            S[m.name] += delta.T @ delta
            grads_ok[m.name] = torch.allclose((delta.T @ a).float(), weights[m.name].grad, rtol=1e-4, atol=1e-6)
        T += len(d.input_ids)
    for w in weights.values():
        w.requires_grad_(False)
        w.grad = None
    return {k: v / T for k, v in A.items()}, {k: v / T for k, v in S.items()}, T, grads_ok


def random_eigenbasis(layout: Layout, k: int, seed: int = 0):
    """A stand-in EKFAC basis: random orthonormal Q_A, Q_S and positive eigenvalues (kfac mode)."""
    from gatoms.method.ekfac import Eigenbasis, Projection, ProjectionSettings

    g = torch.Generator().manual_seed(seed)
    q_a, lam_a, q_s, lam_s = {}, {}, {}, {}
    for m in layout:
        o, i = m.shape
        q_s[m.name] = torch.linalg.qr(torch.randn(o, o, generator=g, dtype=torch.float64))[0]
        q_a[m.name] = torch.linalg.qr(torch.randn(i, i, generator=g, dtype=torch.float64))[0]
        lam_s[m.name] = torch.rand(o, generator=g, dtype=torch.float64) + 0.1
        lam_a[m.name] = torch.rand(i, generator=g, dtype=torch.float64) * 10 + 0.1
    return Projection(Eigenbasis(layout, q_a, lam_a, q_s, lam_s),
                      ProjectionSettings(k=k, eigen_mode="kfac", damping=0.1, damping_mode="relative"))
