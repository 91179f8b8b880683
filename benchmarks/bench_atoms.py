"""Dictionary learning: scikit-learn (the paper's settings) vs our torch solver, side by side.

    make bench-atoms                       # or: .venv/bin/python benchmarks/bench_atoms.py [--profile tiny]
    .venv/bin/python benchmarks/bench_atoms.py --x DIR/02_ekfac/X.npy    # bench-scale's X (P = 6,800)

Runs both backends once on the same X — ``artifacts/<profile>/02_ekfac/X.npy`` if it exists, else a
planted matrix of the tiny profile's shape (5,000 × 800, 20 task families) — with K = 500 atoms and
α = 0.1, and prints wall time, objective ½‖X − CD‖² + α‖C‖₁ (evaluated directly) and the ratios.
With a CUDA device, the torch backend also runs on it. Results go in benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gatoms, wherever it is installed

from gatoms.build import paths  # noqa: E402
from gatoms.method.atoms import AtomsConfig, learn_dictionary  # noqa: E402


def planted_x(n: int = 5000, p: int = 800, families: int = 20, seed: int = 0) -> np.ndarray:
    """Unit rows: each a family direction plus a second, weaker shared direction and noise."""
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((families * 3, p))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    fam = rng.integers(0, families, n)
    sub = families + rng.integers(0, families * 2, n)
    X = dirs[fam] + 0.5 * dirs[sub] + 0.8 * rng.standard_normal((n, p)) / np.sqrt(p)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--n-atoms", type=int, default=500)
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--x", type=Path, default=None, help="an X.npy to use instead of the profile's (e.g. bench-scale's)")
    ap.add_argument("--sklearn-max-iter", type=int, default=100, help="scikit-learn's max_iter (the paper: 100)")
    ap.add_argument("--backends", default="sklearn,torch", help="which to run, comma-separated")
    args = ap.parse_args()

    x_path = args.x or paths.step_dir(args.profile, "02_ekfac") / paths.X
    if x_path.exists():
        X, source = np.load(x_path, mmap_mode="r"), str(x_path)
    else:
        X, source = planted_x(), "planted (no artifacts/tiny/02_ekfac/X.npy)"
    print(f"X {X.shape} from {source}; K={args.n_atoms}, α={args.alpha}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")

    runs = [("sklearn", AtomsConfig(backend="sklearn", n_atoms=args.n_atoms, alpha=args.alpha,
                                    max_iter=args.sklearn_max_iter)),
            ("torch (cpu)", AtomsConfig(backend="torch", n_atoms=args.n_atoms, alpha=args.alpha))]
    runs = [r for r in runs if r[0].split()[0] in args.backends.split(",")]
    if torch.cuda.is_available():
        runs.append(("torch (cuda)", AtomsConfig(backend="torch", n_atoms=args.n_atoms, alpha=args.alpha, device="cuda")))
    results = {}
    for name, cfg in runs:
        t0 = time.perf_counter()
        d = learn_dictionary(X, cfg)
        dt = time.perf_counter() - t0
        results[name] = (dt, d.objective)
        counts = d.docs_per_atom()
        print(f"{name:<13} {dt:8.1f} s   objective {d.objective:12.4f}   passes {d.n_iter:>3}   "
              f"median docs/atom {np.median(counts):5.0f}   atoms per doc {d.codes.nnz / X.shape[0]:.2f}")
    if "sklearn" not in results:
        return
    t_sk, o_sk = results["sklearn"]
    for name, (dt, obj) in results.items():
        if name != "sklearn":
            print(f"{name} / sklearn:  time ×{dt / t_sk:.2f}   objective ×{obj / o_sk:.4f} "
                  f"({'lower' if obj < o_sk else 'higher'} is {'better' if obj < o_sk else 'worse'})")


if __name__ == "__main__":
    main()
