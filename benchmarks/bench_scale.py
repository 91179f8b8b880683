"""Steps 02, 03 and 04 at the paper's shape (Gemma-3 4B LoRA, D = 2,228,224) on synthetic gradients.

    make bench-scale                                   # N = 5,000, bf16 storage (≈ 22 GB on disk)
    .venv/bin/python benchmarks/bench_scale.py --n 1000 --dtype bf16 [--device cpu] [--dir DIR] [--keep]

Synthesises, in gatoms' own artifact formats (``grads.npy`` + ``grads.json`` + ``factors.safetensors``),
N documents' LoRA gradients of the 136 modules of ``gemma3_4b_layout``: each document belongs to one of
20 task families and its gradient in module m is Σ_t δ_t a_tᵀ over 6 "tokens" whose activations a and
output gradients δ are the family's direction in that module plus noise (a planted low-rank structure),
with q_proj's and v_proj's lora_A reading the same activations, as in the model. The Kronecker factors
are the exact second moments of that distribution (A = E[a aᵀ], S = E[δ δᵀ]). Then steps 02, 03 and 04
run as their notebooks call them (``fit_eigenbasis`` + ``fit_projection`` + ``normalize_rows`` + save;
``learn_dictionary`` with the paper's settings; ``score_coherence``), each in its own process, so that
its peak RSS is its own. Per step: wall time, CPU seconds (both cores count), peak RSS, bytes read, and
the paper's Table 3 number beside it. Results: ``DIR/bench.json`` and a Markdown table on stdout (copied
into benchmarks/RESULTS.md by hand). The synthetic data is deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gatoms, wherever it is installed
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
PAPER_RAM_GB = {"02_ekfac": 16, "03_atoms": 32, "04_coherence": 8}
FAMILIES, TOKENS = 20, 6
STEPS = ("02_ekfac", "03_atoms", "04_coherence")


# ---- the synthetic inputs ---------------------------------------------------------------------------
def paper_layout(layers: int = 0):
    """Gemma-3 4B's LoRA layout (r = 8, q_proj + v_proj), or its first ``layers`` layers (quick checks)."""
    from gatoms.lm.layout import Layout, gemma3_4b_layout

    layout = gemma3_4b_layout()
    if not layers:
        return layout
    keep = [(m.name, m.shape) for m in layout if int(m.name.split(".layers.")[1].split(".")[0]) < layers]
    return Layout.from_shapes(keep)


def synthesise(out: Path, n: int, dtype: str, layers: int = 0, seed: int = 0, batch: int = 25) -> dict:
    """grads.npy (N, D) in the storage dtype, grads.json and factors.safetensors under ``out``."""
    from gatoms.method.ekfac import Factors
    from gatoms.method.gradients import STORAGE_DTYPES, to_storage

    layout = paper_layout(layers)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)  # the directions and factors: the same for every N
    dirs, A, S = {}, {}, {}
    for m in layout:  # per module: family directions of δ (o) and of a (i); lora_A of q and v share a
        o, i = m.shape
        share = m.name.replace("v_proj", "q_proj") if m.kind == "lora_A" else m.name
        if share not in dirs or share == m.name:
            va = torch.nn.functional.normalize(torch.randn(FAMILIES, i, generator=g), dim=1)
        else:
            va = dirs[share][1]
        vd = torch.nn.functional.normalize(torch.randn(FAMILIES, o, generator=g), dim=1)
        dirs[m.name] = (vd, va)
        A[m.name] = _second_moment(va, 1.0 / i)
        S[m.name] = _second_moment(vd, 0.25 / o)
    g = torch.Generator().manual_seed(seed + 1)  # the documents
    fam = torch.randint(0, FAMILIES, (n,), generator=g)
    path = out / "grads.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=STORAGE_DTYPES[dtype], shape=(n, layout.n_params))
    offset, row_bytes = mm.offset, mm.dtype.itemsize * layout.n_params
    del mm
    fd = os.open(path, os.O_WRONLY)
    try:
        for s in range(0, n, batch):
            f = fam[s: s + batch]
            rows = torch.empty(len(f), layout.n_params)
            acts: dict[str, torch.Tensor] = {}
            for m in layout:
                vd, va = dirs[m.name]
                o, i = m.shape
                share = m.name.replace("v_proj", "q_proj") if m.kind == "lora_A" else m.name
                if share in acts:
                    a = acts[share]
                else:
                    a = va[f][:, None, :] * (1 + 0.3 * torch.randn(len(f), TOKENS, 1, generator=g))
                    a = a + torch.randn(len(f), TOKENS, i, generator=g) / i ** 0.5  # (B, T, i)
                    acts[m.name] = a
                d = vd[f][:, None, :] * (1 + 0.3 * torch.randn(len(f), TOKENS, 1, generator=g))
                d = d + 0.5 * torch.randn(len(f), TOKENS, o, generator=g) / o ** 0.5  # (B, T, o)
                rows[:, m.offset: m.offset + m.size] = (d.transpose(1, 2) @ a).reshape(len(f), -1)  # Σ_t δ aᵀ
            os.pwrite(fd, to_storage(rows, dtype).tobytes(), offset + s * row_bytes)
    finally:
        os.close(fd)
    doc_ids = [f"doc{k:05d}" for k in range(n)]
    meta = {"layout": layout.to_json(), "doc_ids": doc_ids, "dtype": dtype, "n_params": layout.n_params,
            "n_modules": len(layout), "n_docs": n, "n_tokens": n * TOKENS, "fisher": "empirical",
            "families": fam.tolist(), "synthetic": True}
    (out / "grads.json").write_text(json.dumps(meta) + "\n")
    Factors(A=A, S=S, n_tokens=n * TOKENS, fisher="empirical").save(out / "factors.safetensors")
    return {"gb_written": round(path.stat().st_size / 1e9, 2)}


def _second_moment(dirs: torch.Tensor, noise: float) -> torch.Tensor:
    """E[x xᵀ] for x = v_f (1 + 0.3 ξ) + noise, f uniform over the families (rows of ``dirs``)."""
    return (1 + 0.09) * dirs.T @ dirs / len(dirs) + noise * torch.eye(dirs.shape[1])


# ---- the steps, as the notebooks call them ----------------------------------------------------------
def factors_digest(factors) -> str:
    """sha256 of every factor's values (not of the file, whose metadata holds the token count)."""
    h = hashlib.sha256()
    for kind in (factors.A, factors.S):
        for name in sorted(kind):
            h.update(name.encode())
            h.update(kind[name].float().contiguous().numpy().tobytes())
    return h.hexdigest()


def step_02(d: Path, args) -> dict:
    from gatoms.method.ekfac import Eigenbasis, ProjectionSettings, fit_eigenbasis, fit_projection, normalize_rows
    from gatoms.method.gradients import open_gradients

    reader = open_gradients(d / "01_extract")
    layout = reader.layout
    t0, c0 = time.perf_counter(), time.process_time()
    if args.basis_from:  # the factors do not depend on N: the same decomposition, timed by the run that made it
        timing = args.basis_from / "02_ekfac" / "eigh.json"
        while not timing.exists():  # that run may still be decomposing
            time.sleep(10)
        basis = Eigenbasis.load(args.basis_from / "02_ekfac" / "basis.safetensors")
        basis.layout.check_matches(layout, what="saved eigenbasis")
        prior = json.loads(timing.read_text())
        if prior.get("factors") != factors_digest(reader.factors()):
            raise SystemExit(f"{args.basis_from} decomposed other Kronecker factors than these; run without --basis-from")
        t_eigh, c_eigh = prior["eigh_s"], prior["eigh_cpu_s"]
    else:
        basis = fit_eigenbasis(reader.factors(), layout, dtype=torch.float32)
        t_eigh, c_eigh = time.perf_counter() - t0, time.process_time() - c0
        if args.save_basis:
            (d / "02_ekfac").mkdir(exist_ok=True)
            basis.save(d / "02_ekfac" / "basis.safetensors")
            (d / "02_ekfac" / "eigh.json").write_text(json.dumps({"eigh_s": t_eigh, "eigh_cpu_s": c_eigh,
                                                                  "factors": factors_digest(reader.factors())}) + "\n")
    t0 = time.perf_counter()
    smallest = min(m.size for m in layout)
    ks = sorted({k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if k <= smallest} | {50})
    fit = fit_projection(reader, basis, ProjectionSettings(k=50), ks, chunk_rows=args.chunk_rows or None,
                         device=args.device)
    X = normalize_rows(fit.Z, reader.doc_ids)
    (d / "02_ekfac").mkdir(exist_ok=True)
    fit.projection.save(d / "02_ekfac" / "eigen.safetensors")
    np.save(d / "02_ekfac" / "Z.npy", fit.Z)
    np.save(d / "02_ekfac" / "X.npy", X)
    N = len(reader)
    flop1 = sum(2 * N * m.size * (m.shape[0] + m.shape[1]) for m in layout)  # R = Q_Sᵀ G Q_A, every row
    return {"eigh_s": round(t_eigh, 1), "eigh_cpu_s": round(c_eigh, 1), "eigh_reused": bool(args.basis_from),
            "after_eigh_s": round(time.perf_counter() - t0, 1), "passes": fit.passes, "pass_s": [round(s, 1) for s in fit.seconds],
            "pass1_tflop": round(flop1 / 1e12, 2), "pass1_gflops": round(flop1 / fit.seconds[0] / 1e9, 1),
            "bytes_read": reader.bytes_read, "energy_kept": round(float(fit.energy.mean()), 4),
            "eigen_mb": round((d / "02_ekfac" / "eigen.safetensors").stat().st_size / 1e6, 1)}


def step_03(d: Path, args) -> dict:
    from gatoms.method.atoms import AtomsConfig, learn_dictionary

    X = np.load(d / "02_ekfac" / "X.npy", mmap_mode="r")
    cfg = AtomsConfig(backend=args.atoms_backend, n_atoms=500, alpha=0.1, batch_size=256, seed=42,
                      device=args.device if args.atoms_backend == "torch" else "cpu")
    dic = learn_dictionary(X, cfg)
    import scipy.sparse as sp
    sp.save_npz(d / "02_ekfac" / "codes.npz", dic.codes)
    return {"backend": cfg.backend, "objective": round(dic.objective, 3), "passes": dic.n_iter,
            "atoms_per_doc": round(dic.codes.nnz / X.shape[0], 2), "bytes_read": int(X.nbytes)}


def step_04(d: Path, args) -> dict:
    import scipy.sparse as sp

    from gatoms.method.coherence import score_coherence, top_documents_all
    from gatoms.method.gradients import open_gradients

    reader = open_gradients(d / "01_extract")
    codes = sp.load_npz(d / "02_ekfac" / "codes.npz")
    coh = score_coherence(reader, codes, 20, 1e-6, args.max_bytes)
    union = len(set(np.concatenate(top_documents_all(codes, 20)).tolist()))
    return {"rows_needed": union, "bytes_read": reader.bytes_read, "rows_read": reader.bytes_read // (
        reader.shape[1] * np.dtype(np.uint16 if reader.dtype != "float32" else np.float32).itemsize),
        "coherence_gt_0_1": int((coh > 0.1).sum()), "coherence_max": round(float(coh.max()), 3)}


# ---- measurement --------------------------------------------------------------------------------------
def _proc_io() -> dict:
    try:
        pairs = (line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
        return {k: int(v) for k, v in pairs}
    except OSError:
        return {}


def run_stage(stage: str, d: Path, args) -> None:
    """In this (child) process: one stage, then its measurements as JSON in DIR/<stage>.json."""
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    if stage == "synth":
        extra = synthesise(d / "01_extract", args.n, DTYPES[args.dtype], args.layers)
    else:
        extra = {"02_ekfac": step_02, "03_atoms": step_03, "04_coherence": step_04}[stage](d, args)
    r1, io = resource.getrusage(resource.RUSAGE_SELF), _proc_io()
    res = {"stage": stage, "wall_s": round(time.perf_counter() - t0, 1),
           "cpu_s": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1),
           "peak_rss_gb": round(r1.ru_maxrss / 2**20, 2), "disk_read_gb": round(io.get("read_bytes", 0) / 1e9, 2),
           **extra}
    (d / f"{stage}.json").write_text(json.dumps(res) + "\n")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} × {cpu}, {mem:.0f} GiB RAM, torch {torch.__version__}, "
            f"load average at start {os.getloadavg()[0]:.1f}")


def table(results: dict, args) -> str:
    from gatoms.report.paper import PAPER_TABLE3

    lines = [f"N = {args.n:,}, D = {'2,228,224' if not args.layers else f'{args.layers} of 34 layers'}, storage {args.dtype}, device {args.device}; {machine()}", "",
             "| step | wall | CPU s | peak RSS | read | paper (Table 3) | paper RAM | time ÷ paper | RSS ÷ paper RAM |",
             "|---|---|---|---|---|---|---|---|---|"]
    tot_w = tot_c = peak = 0.0
    for step in STEPS:
        r = results.get(step)
        if r is None:
            lines.append(f"| {step} | not run | | | | {PAPER_TABLE3[step]['time']} | {PAPER_RAM_GB[step]} GB | | |")
            continue
        p = PAPER_TABLE3[step]["seconds"]
        if r.get("eigh_reused"):  # count the decomposition's time, measured by the run that made it
            r = r | {"wall_s": r["wall_s"] + r["eigh_s"], "cpu_s": r["cpu_s"] + r["eigh_cpu_s"]}
        tot_w, tot_c, peak = tot_w + r["wall_s"], tot_c + r["cpu_s"], max(peak, r["peak_rss_gb"])
        lines.append(f"| {step} | {r['wall_s']:.0f} s | {r['cpu_s']:.0f} | {r['peak_rss_gb']:.2f} GB | "
                     f"{r.get('bytes_read', 0) / 1e9:.1f} GB | {PAPER_TABLE3[step]['time']} | {PAPER_RAM_GB[step]} GB | "
                     f"{r['wall_s'] / p:.2f} | {r['peak_rss_gb'] / PAPER_RAM_GB[step]:.2f} |")
    lines.append(f"| **02 + 03 + 04** | **{tot_w:.0f} s** | {tot_c:.0f} | {peak:.2f} GB | | ~25 min (1,500 s, with "
                 f"extraction) | 32 GB | {tot_w / 1500:.2f} | {peak / 32:.2f} |")
    lines.append(f"\ntarget 02 + 03 + 04 ≤ 150 s: {'met' if tot_w <= 150 else f'not met ({tot_w / 150:.1f}× over)'}; "
                 f"peak RSS ≤ 4 GB: {'met' if peak <= 4 else 'not met'}")
    for step in ("synth", *STEPS):
        if step in results:
            lines.append(f"- {step}: " + ", ".join(f"{k} {v}" for k, v in results[step].items() if k != "stage"))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="documents (5,000 = the paper's; 1,000 for a quick look)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="storage dtype of grads.npy")
    ap.add_argument("--device", default="cpu", help="where 02's rotations and 03's torch solver run")
    ap.add_argument("--atoms-backend", choices=("torch", "sklearn"), default="torch")
    ap.add_argument("--chunk-rows", type=int, default=0, help="rows per chunk in 02 (0: 128 MiB of float32)")
    ap.add_argument("--max-bytes", type=int, default=2**30, help="04's coherence.max_bytes")
    ap.add_argument("--dir", type=Path, default=None, help="where the synthetic data goes (default /work/bench_scale_N)")
    ap.add_argument("--steps", default="synth," + ",".join(STEPS), help="stages to run, comma-separated")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic data afterwards")
    ap.add_argument("--layers", type=int, default=0, help="only the first L of the 34 layers (quick checks)")
    ap.add_argument("--save-basis", action="store_true", help="02: also save the full eigenbasis (for --basis-from)")
    ap.add_argument("--basis-from", type=Path, default=None,
                    help="02: load the eigenbasis another run saved (its DIR) instead of decomposing the "
                         "N-independent factors again; its eigh time is reported")
    ap.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage in this process
    args = ap.parse_args()
    d = args.dir or Path(f"/work/bench_scale_{args.n}_{args.dtype}")
    if args.stage:
        return run_stage(args.stage, d, args)
    d.mkdir(parents=True, exist_ok=True)
    results = {}
    for stage in args.steps.split(","):
        print(f"[{time.strftime('%H:%M:%S')}] {stage} …", flush=True)
        cmd = [sys.executable, __file__, "--stage", stage, *sys.argv[1:]]
        subprocess.run(cmd, check=True)
        results[stage] = json.loads((d / f"{stage}.json").read_text())
        print(f"[{time.strftime('%H:%M:%S')}] {stage}: {results[stage]}", flush=True)
        (d / "bench.json").write_text(json.dumps({"args": vars(args) | {"dir": str(d)}, "results": results},
                                                 indent=1, default=str) + "\n")
    print(table(results, args))
    if not args.keep:
        shutil.rmtree(d / "01_extract", ignore_errors=True)
        print(f"deleted the synthetic gradients under {d / '01_extract'} (results kept in {d / 'bench.json'})")


if __name__ == "__main__":
    main()
