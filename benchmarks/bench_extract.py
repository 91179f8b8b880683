"""Benchmark: the authors' per-document gradient loop vs gatoms' hook extractor, side by side.

    python benchmarks/bench_extract.py              # CPU (what `make bench-extract` runs)
    python benchmarks/bench_extract.py --gpu        # GPU: full-size Gemma-3 4B text config, bf16
    python benchmarks/bench_extract.py --gpu --dry-run   # the GPU code path on a tiny model, on CPU

CPU: in one process, on the same documents and model — the tiny profile's fine-tuned model and its
documents when ``artifacts/tiny/00_finetune`` exists, else a random model of the tiny profile's shape
with documents at the world's length distribution — time :func:`gatoms.method.gradients.reference_gradients`
(one document, one ``backward()``) and :func:`gatoms.method.gradients.extract_gradients` (hooks, batches of
similar length), check they agree, print docs/s of each and the ratio.

GPU: a randomly initialised model with the full Gemma-3 4B text configuration, LoRA r=8 on q_proj and
v_proj (D = 2,228,224, 136 modules), 5,000 documents at the world's length distribution, bf16 forward,
bf16 storage. Reports seconds, docs/s and the fraction of the GPU's bf16 dense peak used (model FLOPs
of the forward and the input-gradient backward), and the reference loop's docs/s on a subset. Exits
cleanly, printing why, when there is no CUDA device.

Prints one JSON line at the end (``--json PATH`` also writes it) so results can be pasted into
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gatoms.build import config, paths
from gatoms.lm.encoding import EncodedDoc
from gatoms.method.gradients import ExtractConfig, extract_gradients, open_gradients, reference_gradients

BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
"""Dense bf16 tensor-core peak (TFLOP/s) by GPU name fragment (SXM parts)."""


def machine() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# ---- documents ------------------------------------------------------------------------------------
def world_lengths(n: int, chars_per_token: float = 4.0, template_tokens: int = 12, seed: int = 0) -> list[tuple[int, int]]:
    """(prompt tokens, response tokens) of n fine-tuning documents of the synthetic world, estimated
    from characters (no tokenizer needed): ~4 characters per token plus the chat template's tokens."""
    from gatoms.world import WorldConfig, build_world

    docs = build_world(WorldConfig(seed=seed, n_base=0, n_finetune=n)).finetune
    return [(template_tokens + max(1, round(len(d.prompt) / chars_per_token)),
             1 + max(1, round(len(d.response) / chars_per_token))) for d in docs]


def random_docs(lengths: list[tuple[int, int]], vocab: int, seed: int = 0) -> list[EncodedDoc]:
    rng = np.random.default_rng(seed)
    out = []
    for n, (p, r) in enumerate(lengths):
        ids = rng.integers(8, vocab, p + r).tolist()
        out.append(EncodedDoc(f"bench{n:05d}", ids, [-100] * p + ids[p:]))
    return out


def random_lora_model(text_config, r: int = 8, seed: int = 0, dtype=torch.float32, device="cpu"):
    """A randomly initialised Gemma-3 text model with LoRA on q_proj/v_proj and non-zero lora_B."""
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = Gemma3ForCausalLM(text_config).to(dtype)
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.02)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def tiny_setup(n_docs: int):
    """The tiny profile's fine-tuned model and documents, or a random model of its shape."""
    step = paths.step_dir("tiny", "00_finetune")
    if (step / paths.METRICS).exists():
        from gatoms.lm.encoding import encode_documents
        from gatoms.lm.sources import load_documents, load_finetuned

        model, tok = load_finetuned("tiny", device="cpu", dtype="float32")
        docs = load_documents("tiny")[:n_docs]
        cfg = config.load_section("tiny", "extract")
        enc = encode_documents(tok, docs, cfg.max_length).encoded
        return model, enc, tok.pad_token_id or 0, "tiny profile's fine-tuned model and documents"
    from gatoms.lm.model import tiny_gemma3_config

    mcfg = config.load_section("tiny", "model")
    model = random_lora_model(tiny_gemma3_config(mcfg, mcfg.vocab_size))
    docs = random_docs(world_lengths(n_docs), mcfg.vocab_size)
    return model, docs, 0, "random model of the tiny profile's shape, world-like lengths (artifacts/tiny/00_finetune not built)"


# ---- the comparison -------------------------------------------------------------------------------
def compare(model, docs, pad_id: int, cfg: ExtractConfig, n_reference: int | None = None, rounds: int = 3) -> dict:
    """Time the loop (on n_reference documents, default all) and the extractor (on all), alternating,
    ``rounds`` times each; report the best round of each (this machine is shared: the best round is the
    least disturbed one) and the median; check that the two agree."""
    sub = docs[: n_reference or len(docs)]
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    t_ref, t_ours, c_ref, c_ours = [], [], [], []  # wall and process CPU seconds
    with tempfile.TemporaryDirectory() as tmp:
        reference_gradients(model, sub[:2], max_length=cfg.max_length)  # warm-up
        extract_gradients(model, sub[:2], Path(tmp) / "warm", cfg, progress=False, pad_id=pad_id)
        for r in range(rounds):
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            ref = reference_gradients(model, sub, max_length=cfg.max_length)
            sync()
            t_ref.append(time.perf_counter() - t0)
            c_ref.append(time.process_time() - c0)
            if r:  # keep one run on disk (the GPU run writes 22 GB)
                shutil.rmtree(Path(tmp) / f"run{r - 1}")
            t0, c0 = time.perf_counter(), time.process_time()
            res = extract_gradients(model, docs, Path(tmp) / f"run{r}", cfg, progress=False, pad_id=pad_id)
            sync()
            t_ours.append(time.perf_counter() - t0)
            c_ours.append(time.process_time() - c0)
            print(f"[bench] round {r + 1}/{rounds}: loop {len(sub) / t_ref[-1]:.1f} docs/s, "
                  f"hooks {len(docs) / t_ours[-1]:.1f} docs/s", file=sys.stderr)
        got = open_gradients(Path(tmp) / f"run{rounds - 1}").rows(np.arange(len(sub)))
    scale = np.abs(ref).max(1)
    rel = float((np.abs(got - ref).max(1) / scale).max())
    cos = float(np.min((got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))))
    ref_dps, ours_dps = len(sub) / min(t_ref), len(docs) / min(t_ours)
    med_ref, med_ours = len(sub) / float(np.median(t_ref)), len(docs) / float(np.median(t_ours))
    return {
        "n_docs": len(docs), "n_reference_docs": len(sub), "n_params": res.n_params, "n_modules": res.n_modules,
        "n_tokens": res.n_tokens, "rounds": rounds,
        "reference_seconds": round(min(t_ref), 3), "ours_seconds": round(min(t_ours), 3),
        "reference_docs_per_second": round(ref_dps, 2), "ours_docs_per_second": round(ours_dps, 2),
        "speedup": round(ours_dps / ref_dps, 2), "speedup_median": round(med_ours / med_ref, 2),
        # CPU seconds of this process per document: insensitive to other processes sharing the cores
        "speedup_cpu_time": round((min(c_ref) / len(sub)) / (min(c_ours) / len(docs)), 2),
        "max_rel_err": rel, "min_cosine": cos,
    }


def model_flops(model, docs, max_length: int) -> float:
    """FLOPs of one forward and one input-gradient backward (no weight gradients) over the documents:
    2·(decoder weights)·tokens + 2·(output layer)·(response positions) each way, plus attention
    scores/values (causal: ~T²/2 per layer and head)."""
    cfg = model.config
    tokens = sum(min(len(d.input_ids), max_length) for d in docs)
    predicted = sum(sum(t != -100 for t in d.labels[1:max_length]) for d in docs)  # the output layer's rows
    non_embed = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lora_" not in n)
    head = cfg.vocab_size * cfg.hidden_size  # lm_head (tied to the embeddings), applied at response positions only
    dense = 2 * non_embed * tokens + 2 * head * predicted
    heads_dim = cfg.num_attention_heads * cfg.head_dim
    attn = sum(2 * 2 * cfg.num_hidden_layers * heads_dim * (min(len(d.input_ids), max_length) ** 2) / 2 for d in docs)
    return 2 * (dense + attn)  # forward + backward through activations only


def run_cpu(args) -> dict:
    torch.manual_seed(0)
    model, docs, pad_id, what = tiny_setup(args.n_docs)
    cfg = config.load_section("tiny", "extract", {"device": "cpu", "checkpoint_seconds": 1e9})
    print(f"[bench] {what}: {len(docs)} documents, batch_tokens={cfg.batch_tokens}, {torch.get_num_threads()} threads",
          file=sys.stderr)
    out = compare(model, docs, pad_id, cfg, rounds=args.rounds)
    out |= {"mode": "cpu", "setup": what, "machine": machine()}
    assert out["max_rel_err"] <= 1e-4, f"hooks and loop disagree: max relative error {out['max_rel_err']:.2e}"
    return out


def run_gpu(args) -> dict | None:
    from transformers import Gemma3TextConfig

    from gatoms.lm.model import gemma3_4b_text_config

    if args.dry_run:
        device, dtype = "cpu", torch.float32
        text_cfg = Gemma3TextConfig(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=1024)
        n_docs, n_ref = min(args.n_docs, 40), 8
        cfg = ExtractConfig(device="cpu", checkpoint_seconds=1e9, batch_tokens=args.batch_tokens)
    else:
        if not torch.cuda.is_available():
            print("[bench] --gpu skipped: no CUDA device on this machine", file=sys.stderr)
            return None
        device, dtype = "cuda", torch.bfloat16
        text_cfg = gemma3_4b_text_config()
        n_docs, n_ref = args.n_docs, args.n_reference
        cfg = ExtractConfig(device="cuda", dtype="bfloat16", compute_dtype="bfloat16", checkpoint_seconds=1e9,
                            batch_tokens=args.batch_tokens)
    model = random_lora_model(text_cfg, dtype=dtype, device=device)
    docs = random_docs(world_lengths(n_docs), text_cfg.vocab_size)
    print(f"[bench] random Gemma-3 text model ({sum(p.numel() for p in model.parameters()) / 1e9:.2f} B params) on "
          f"{device}, {len(docs)} documents", file=sys.stderr)
    out = compare(model, docs, 0, cfg, n_reference=n_ref, rounds=args.rounds)
    flops = model_flops(model, docs, cfg.max_length)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    achieved = flops / out["ours_seconds"] / 1e12
    out |= {"mode": "gpu" if not args.dry_run else "gpu-dry-run", "model_tflop": round(flops / 1e12, 2),
            "achieved_tflops": round(achieved, 1), "bf16_peak_tflops": peak,
            "fraction_of_bf16_peak": round(achieved / peak, 3) if peak else None, "machine": machine()}
    # bf16 forward vs bf16 forward: both sides round differently; agreement is checked by cosine.
    assert out["min_cosine"] >= 0.99, f"hooks and loop disagree: min cosine {out['min_cosine']:.4f}"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true", help="full-size Gemma-3 4B text config on CUDA, bf16")
    ap.add_argument("--dry-run", action="store_true", help="with --gpu: the same code path on a tiny model, CPU")
    ap.add_argument("--n-docs", type=int, default=None, help="documents (CPU default 400; GPU default 5000)")
    ap.add_argument("--n-reference", type=int, default=200, help="GPU: documents for the reference loop")
    ap.add_argument("--batch-tokens", type=int, default=16384, help="GPU: token budget per batch")
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (best and median reported)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--json", type=Path, default=None, help="also write the result JSON here")
    args = ap.parse_args(argv)
    random.seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n_docs is None:
        args.n_docs = 5000 if args.gpu else 400
    out = run_gpu(args) if args.gpu else run_cpu(args)
    if out is None:
        return 0
    print(f"reference loop : {out['reference_docs_per_second']:8.1f} docs/s  ({out['n_reference_docs']} docs, {out['reference_seconds']:.1f}s)")
    print(f"gatoms hooks   : {out['ours_docs_per_second']:8.1f} docs/s  ({out['n_docs']} docs, {out['ours_seconds']:.1f}s)")
    print(f"speed-up       : {out['speedup']:8.1f}x   best rounds (wall); {out['speedup_median']:.1f}x medians; "
          f"{out['speedup_cpu_time']:.1f}x in process CPU time")
    print(f"agreement      : max relative error {out['max_rel_err']:.1e}, min cosine {out['min_cosine']:.6f}")
    if "fraction_of_bf16_peak" in out:
        print(f"GPU            : {out['achieved_tflops']} TFLOP/s of model FLOPs = {out['fraction_of_bf16_peak']} of bf16 peak")
    line = json.dumps(out)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
