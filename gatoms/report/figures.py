"""Figure 1 analogue: the coherence distribution and a 2-D map of the atoms, top atoms labelled.

The authors' map attached each label to the wrong point (it labelled by position in a sorted list,
not by atom id). Here every label is placed at ``coords[atom]`` of the atom it names, and
:func:`label_points` returns what was drawn so a test can check it.

Usage::

    xy = atom_coordinates(d.atoms, method="tsne", seed=0)
    fig = figure1(coherence, xy, labels={348: "#348 short QA"})
    save_figure(fig, profile, "fig1_atoms")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gatoms.build import paths  # noqa: E402
from gatoms.method.steering.metrics import SteeredAtom  # noqa: E402


def atom_coordinates(atoms: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(K, 2) coordinates of the atoms (K, P): t-SNE on cosine distance, or the top-2 PCA scores."""
    atoms = np.asarray(atoms, dtype=np.float64)
    K = atoms.shape[0]
    if method == "pca" or K < 5:
        centred = atoms - atoms.mean(axis=0)
        if K < 2:
            return np.zeros((K, 2))
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        return np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    if method != "tsne":
        raise ValueError(f"map method must be 'tsne' or 'pca', got {method!r}")
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (K - 1) / 3)))
    return TSNE(n_components=2, metric="cosine", init="pca", perplexity=perplexity,
                random_state=seed).fit_transform(atoms)


def label_points(ax: plt.Axes, coords: np.ndarray, labels: dict[int, str]) -> dict[int, tuple[float, float]]:
    """Annotate ``labels[atom]`` at ``coords[atom]`` for each labelled atom; returns atom → (x, y) drawn."""
    drawn = {}
    # Alternate the text's side so that neighbouring labels overlap less; the arrow keeps each
    # label tied to its own point.
    offsets = [((6, 6), "left"), ((6, -12), "left"), ((-6, 6), "right"), ((-6, -12), "right")]
    for i, (atom, text) in enumerate(labels.items()):
        x, y = float(coords[atom, 0]), float(coords[atom, 1])
        offset, ha = offsets[i % len(offsets)]
        ax.annotate(text, xy=(x, y), xytext=offset, textcoords="offset points", fontsize=7, ha=ha,
                    arrowprops={"arrowstyle": "-", "lw": 0.5})
        ax.plot([x], [y], marker="o", ms=6, mfc="none", mec="k", mew=0.8)
        drawn[atom] = (x, y)
    return drawn


def figure1(coherence: np.ndarray, coords: np.ndarray, labels: dict[int, str],
            thresholds: tuple[float, ...] = (0.1, 0.5)) -> plt.Figure:
    """Left: histogram of coherence (log counts) with the paper's thresholds; right: the atom map
    coloured by coherence with ``labels`` (atom → text) on their own atoms."""
    coherence = np.asarray(coherence, dtype=np.float64)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.3]})
    a.hist(coherence, bins=40, color="#4477aa")
    a.set_yscale("log")
    for t in thresholds:
        a.axvline(t, color="k", ls="--", lw=0.8)
        a.text(t, a.get_ylim()[1] * 0.6, f" {(coherence > t).sum()} > {t}", fontsize=8)
    a.set_xlabel("coherence (mean pairwise cosine of top-20 raw gradients)")
    a.set_ylabel("atoms")
    a.set_title("Coherence distribution")
    sc = b.scatter(coords[:, 0], coords[:, 1], c=coherence, s=10, cmap="viridis")
    fig.colorbar(sc, ax=b, label="coherence")
    label_points(b, coords, labels)
    b.set_xticks([])
    b.set_yticks([])
    b.set_title("Atom map (top atoms labelled)")
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, profile: str, name: str) -> Path:
    """Save as ``figures/<profile>/<name>.png`` and ``.pdf``; returns the PNG path."""
    png = paths.figure(profile, name, "png")
    fig.savefig(png, dpi=150, bbox_inches="tight")
    fig.savefig(paths.figure(profile, name, "pdf"), bbox_inches="tight")
    plt.close(fig)
    return png


# ---- Figure 2: steering curves ---------------------------------------------------------------------
def curve_position(alpha: float, grid: Sequence[float]) -> float:
    """x position of a signed α on an axis with the signed grid (and 0) evenly spaced: grid α sit at integers,
    others between their neighbours by log-interpolation (beyond the ends: one grid step per factor 2)."""
    signed = sorted({0.0, *grid, *(-a for a in grid)})
    mid = signed.index(0.0)
    a = abs(alpha)
    if a == 0:
        return float(mid)
    g = sorted(grid)
    if a <= g[0]:
        pos = a / g[0]
    elif a >= g[-1]:
        pos = len(g) + math.log2(a / g[-1])
    else:
        k = max(i for i, x in enumerate(g) if x <= a)
        pos = k + 1 + (math.log(a) - math.log(g[k])) / (math.log(g[k + 1]) - math.log(g[k])) if a != g[k] else k + 1
    return mid + math.copysign(pos, alpha)


def plot_steering(behaviors: dict[str, SteeredAtom], alphas: Sequence[float]):
    """Figure 2 analogue, from step 06's metrics. Top row: rate on the test inviting prompts against signed α
    (grid evenly spaced), Wilson 95% bars, hollow red markers where the variant is not intact, stars at the
    budgeted ±α* (dashed lines), the share of degenerate responses dotted. Bottom row: the atom's signed
    effect at α* (red, bootstrap interval) among each null's directions (grey). Returns the figure."""
    names = list(behaviors)
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 5.6), squeeze=False,
                             gridspec_kw={"height_ratios": [1.4, 1]})
    signed = sorted({0.0, *alphas, *(-a for a in alphas)})
    for j, b in enumerate(names):
        m, ax, bx = behaviors[b], axes[0][j], axes[1][j]
        pts = sorted(m.curve, key=lambda p: p.alpha)
        xs = [curve_position(p.alpha, alphas) for p in pts]
        ax.plot(xs, [p.rate for p in pts], color="C0", lw=1.2, zorder=1)
        for x, p in zip(xs, pts):
            budgeted = abs(p.alpha) == m.alpha and p.alpha != 0
            ax.errorbar([x], [p.rate], yerr=[[p.rate - p.ci[0]], [p.ci[1] - p.rate]], color="C0", capsize=2,
                        marker="*" if budgeted else "o", ms=9 if budgeted else 4,
                        mfc="C0" if p.intact else "white", mec="C0" if p.intact else "C3", zorder=2)
        ax.plot(xs, [p.degenerate for p in pts], ":", color="C3", lw=1, label="degenerate share")
        for s in (1, -1):
            ax.axvline(curve_position(s * m.alpha, alphas), color="0.4", ls="--", lw=0.7, zorder=0)
        ax.set_title(f"{b} (atom #{m.atom}) — {'steered' if m.steered else 'not steered'}", fontsize=8)
        ax.set_xticks(range(len(signed)), [f"{a:g}" for a in signed], fontsize=6, rotation=90)
        ax.set_xlabel(f"signed α (← away | toward →); α* = {m.alpha:.3g}", fontsize=7)
        ax.set_ylim(-0.03, 1.03)
        kinds = list(m.nulls)
        for k, kind in enumerate(kinds):
            e = np.asarray(m.nulls[kind].effects)
            jitter = np.linspace(-0.15, 0.15, len(e)) if len(e) > 1 else np.zeros(len(e))
            bx.plot(k + jitter, 100 * e, "o", color="0.6", ms=3)
        lo, hi = m.signed_ci
        bx.errorbar([len(kinds)], [100 * m.signed], yerr=[[100 * (m.signed - lo)], [100 * (hi - m.signed)]],
                    color="C3", marker="D", ms=5, capsize=3)
        bx.axhline(0, color="0.7", lw=0.8)
        bx.set_xticks(range(len(kinds) + 1), [*kinds, "atom"], fontsize=7)
        bx.set_xlim(-0.6, len(kinds) + 0.6)
    axes[0][0].set_ylabel("behaviour rate (test, inviting)", fontsize=8)
    axes[1][0].set_ylabel("signed effect at α* (pp)", fontsize=8)
    axes[0][-1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    return fig


# ---- the ablations ------------------------------------------------------------------------------------
def plot_methods(rows: list[dict[str, Any]]):
    """Grouped bars of the ground-truth metrics (shares of the families, F1, NMI, purity) per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    share = lambda key: [r.get(key, 0) / max(r["n_families"], 1) for r in rows]  # noqa: E731
    metrics = [("families recovered\n(best-atom F1 ≥ 0.5)", share("families_recovered")),
               ("mean best-atom F1", [r.get("mean_best_f1", 0) for r in rows]),
               ("families ≥ 90% of a\ntop-50 atom's documents", share("families_in_top50")),
               ("NMI (strongest atom\nvs family)", [r["nmi"] for r in rows]),
               ("purity of the top-50\natoms' top-20 documents", [r["purity_top50"] for r in rows])]
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / len(rows)
    x = np.arange(len(metrics))
    for i, r in enumerate(rows):
        vals = [m[1][i] for m in metrics]
        bars = ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width, label=r["label"])
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.set_xticks(x, [m[0] for m in metrics], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("score (higher is better)")
    ax.legend(fontsize=7, ncols=min(len(rows), 5), loc="upper center", bbox_to_anchor=(0.5, -0.22))
    ax.set_title("Ground-truth discovery: preconditioning and baselines")
    fig.tight_layout()
    return fig


# ---- the figures of steps 00–02 -------------------------------------------------------------------------
def _moving_mean(values: list[float], width: int = 20) -> list[float]:
    return [sum(values[max(0, k - width + 1):k + 1]) / len(values[max(0, k - width + 1):k + 1])
            for k in range(len(values))]


def finetune_loss_figure(base_history: list[float], lora_history: list[float], base_final_loss: float,
                         lora_final_loss: float) -> plt.Figure:
    """Step 00: the loss of every training step (base pre-training if any, LoRA fine-tuning) with its moving
    mean, and the eval-mode loss of the base and fine-tuned models on the fine-tuning documents."""
    panels = [(name, h) for name, h in (("base pre-training", base_history), ("LoRA fine-tuning", lora_history)) if h]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.2), squeeze=False)
    for ax, (name, h) in zip(axes[0], panels):
        ax.plot(range(1, len(h) + 1), h, color="0.8", lw=0.8, label="per step")
        ax.plot(range(1, len(h) + 1), _moving_mean(h), color="C0", label="moving mean (20)")
        if name.startswith("LoRA"):
            ax.axhline(base_final_loss, color="C3", ls="--", lw=1, label=f"base model {base_final_loss:.3f}")
            ax.axhline(lora_final_loss, color="C2", ls="--", lw=1, label=f"fine-tuned {lora_final_loss:.3f}")
        ax.set(title=name, xlabel="step", ylabel="response-token loss", yscale="log")
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def grad_norms_figure(n_response_tokens: np.ndarray, norms: np.ndarray, title: str) -> plt.Figure:
    """Step 01: each document's raw gradient norm against its number of response tokens."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.scatter(n_response_tokens, norms, s=4, alpha=0.4)
    ax.set(xscale="log", yscale="log", xlabel="response tokens", ylabel="‖g_n‖ (raw LoRA gradient)", title=title)
    fig.tight_layout()
    return fig


def _module_kind(name: str, kind: str) -> str:
    return name.split(".")[-3] + "." + kind  # e.g. q_proj.lora_A


def spectra_figure(eigenvalues: dict[str, dict[str, Any]], layout: Any, k: int, title: str) -> plt.Figure:
    """Step 02: every module's eigenvalues (EKFAC and KFAC, one panel each) divided by its largest, with the
    cut at k; ``eigenvalues`` is mode → module name → (o, i) tensor."""
    kinds = sorted({_module_kind(m.name, m.kind) for m in layout})
    colors = dict(zip(kinds, plt.cm.tab10.colors))
    fig, axes = plt.subplots(1, len(eigenvalues), figsize=(5 * len(eigenvalues), 3.8), sharey=True, squeeze=False)
    for ax, (mode, eig) in zip(axes[0], eigenvalues.items()):
        for m in layout:
            e = np.sort(np.asarray(eig[m.name]).ravel())[::-1]
            ax.plot(np.arange(1, e.size + 1), e / e[0], color=colors[_module_kind(m.name, m.kind)], alpha=0.5, lw=0.8)
        ax.axvline(k, color="k", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="direction rank in its module",
               title=f"{mode.upper()} eigenvalues (÷ the module's largest)")
    axes[0][0].set_ylabel("eigenvalue / top eigenvalue")
    axes[0][-1].legend(handles=[plt.Line2D([], [], color=colors[c], label=c) for c in kinds], fontsize=8,
                       loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def energy_figure(ks: list[int], curves: dict[str, np.ndarray], k: int, title: str) -> plt.Figure:
    """Step 02: the fraction of ‖g‖² kept by the top-k directions per module, against k (mean and the
    10–90% band over documents), for each mode's choice of directions."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for mode, kept in curves.items():
        ax.plot(ks, kept.mean(0), marker="o", ms=3, label=f"top-k by {mode.upper()} (mean; band 10–90%)")
        ax.fill_between(ks, *np.percentile(kept, [10, 90], axis=0), alpha=0.15)
    ax.axvline(k, color="k", ls=":", lw=1)
    ax.set(xscale="log", ylim=(0, 1), xlabel="k (directions kept per module)", ylabel="fraction of ‖g‖² kept",
           title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def whitening_figure(second_moments: dict[str, np.ndarray], title: str) -> plt.Figure:
    """Step 02: each coordinate's share of the projected energy, sorted, raw against whitened."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, s in second_moments.items():
        s = np.sort(s)[::-1]
        ax.plot(np.arange(1, s.size + 1), s / s.sum(), label=label)
    ax.set(xscale="log", yscale="log", xlabel="coordinate of z (sorted)", ylabel="share of Σ_n ‖z_n‖²", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
