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

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gatoms import paths  # noqa: E402


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
