"""The atom atlas: one self-contained HTML page per profile, ``figures/<profile>/atlas.html``.

    python -m gatoms.report.atlas --profile tiny        (what ``make atlas`` runs)

Every atom of ``04_coherence/atom_table.csv`` with its coherence, active documents and description; its
top documents (prompt and response from ``00_finetune/train.jsonl``, coloured by true task family where
the data has labels, the atom's majority family highlighted); and, for the atoms ``06_steering``
steered, the measured curve of behaviour rate against signed α on the test prompts (inline SVG, Wilson 95%
intervals; hollow where the variant did not keep the model intact, larger at the budgeted α) and its verdict.
Searchable and sortable; no server, no external URL — the data is embedded in the page as JSON and the
page is plain HTML, CSS and JavaScript (``gatoms/templates/atlas.html``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from gatoms.build import paths
from gatoms.build.store import ArtifactError, StepStore, write_text
from gatoms.method.gradients.storage import load_rows
from gatoms.method.steering.metrics import SteeringMetrics
from gatoms.report.paper import BEHAVIOR_NAMES
from gatoms.report.results import Results, load_results

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parent / "templates" / "atlas.html"
PLACEHOLDER_DATA = "/*__ATLAS_DATA__*/"
PLACEHOLDER_TITLE = "__ATLAS_TITLE__"
MAX_CHARS = 3000
"""Longest prompt or response shown in full; longer ones are clipped (keeps the page small at paper scale)."""


def read_documents(profile: str) -> dict[int, dict[str, Any]]:
    """Gradient row → its document ({id, prompt, response, family, fmt}), through the row index of step
    01 (:func:`gatoms.method.gradients.load_rows`): never by line order."""
    return {n: {"id": d.doc_id, "prompt": d.prompt, "response": d.response, "family": d.family, "fmt": d.fmt}
            for n, d in enumerate(load_rows(profile))}


def steering_curves(profile: str, metrics: SteeringMetrics | None) -> dict[int, list[dict[str, Any]]]:
    """Atom → its measured steering curves: [{behavior, name, verdict, alpha_star, points: [{alpha, rate, lo,
    hi, k, n, intact}]}].

    From ``06_steering/generations.jsonl`` (one record per response: behavior, kind, alpha, prompt_kind, split,
    detected), rates on the test inviting prompts for the behaviour's atom (α = 0 is the clean adapter);
    whether each variant kept the model intact, from the step's metrics.
    """
    if not metrics or not metrics.behaviors:
        return {}
    gen = StepStore(profile, "06_steering").path(paths.GENERATIONS)
    if not gen.exists():
        return {}
    from gatoms.method.steering import curve, rates

    with open(gen, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    table = rates(records, split="test")
    out: dict[int, list[dict[str, Any]]] = {}
    for behavior, info in metrics.behaviors.items():
        c = curve(table, behavior, "atom", "inviting")
        if not c:
            continue
        intact = {p.alpha: p.intact for p in info.curve}
        points = []
        for alpha, r in sorted(c.items()):
            lo, hi = r.ci
            points.append({"alpha": alpha, "rate": r.rate, "lo": lo, "hi": hi, "k": r.k, "n": r.n,
                           "intact": intact.get(alpha, True)})
        out.setdefault(int(info.atom), []).append(
            {"behavior": behavior, "name": BEHAVIOR_NAMES.get(behavior, behavior), "verdict": info.verdict,
             "alpha_star": info.alpha, "points": points})
    return out


def atlas_data(res: Results) -> dict[str, Any]:
    """Everything the page shows, as JSON-able data."""
    if not res.atom_table:
        raise ArtifactError(
            f"no atom table for profile {res.profile!r}; build it with `make coherence PROFILE={res.profile}`")
    docs = read_documents(res.profile)
    row_of = {d["id"]: n for n, d in docs.items()}
    curves = steering_curves(res.profile, res.metrics.get("06_steering"))
    used: dict[int, dict[str, Any]] = {}
    atoms = []
    for row in res.atom_table:
        unknown = [i for i in row.top_doc_ids if i not in row_of]
        if unknown:
            raise ArtifactError(f"atom {row.atom} lists documents {unknown[:3]} that are not rows of the "
                                f"gradients of profile {res.profile!r}; rebuild with `make coherence FORCE=1`")
        top = [row_of[i] for i in row.top_doc_ids]
        for i in top:
            used[i] = {**docs[i], "prompt": clip(docs[i]["prompt"]), "response": clip(docs[i]["response"])}
        atoms.append({
            "rank": row.rank, "atom": row.atom, "coherence": row.coherence, "active_docs": row.active_docs,
            "description": row.description, "family": row.family, "family_share": row.family_share,
            "keywords": row.words, "top_fmt": row.top_fmt, "top_fmt_share": row.top_fmt_share, "docs": top,
            "steering": curves.get(row.atom, []),
        })
    families = sorted({d["family"] for d in docs.values() if d.get("family")})
    m03, m04 = res.metrics.get("03_atoms"), res.metrics.get("04_coherence")
    summary = {
        "n_atoms": len(atoms),
        "n_docs": len(docs),
        "alpha": m03.alpha if m03 else None,
        "n_coh_gt_0_5": m04.n_coh_gt_0_5 if m04 else None,
        "n_coh_gt_0_1": m04.n_coh_gt_0_1 if m04 else None,
        "families_recovered": m04.families_recovered if m04 else None,
        "n_families": m04.n_families if m04 else None,
        "steered": sorted(b for a in atoms for b in (c["behavior"] for c in a["steering"])),
    }
    return {
        "profile": res.profile,
        "summary": summary,
        "families": families,
        "atoms": atoms,
        "docs": {str(i): d for i, d in sorted(used.items())},
    }


def clip(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … [{len(text) - limit:,} more characters]"


def render(data: dict[str, Any]) -> str:
    """The HTML page with ``data`` embedded as JSON (every ``<`` escaped, so no string can end the script)."""
    template = TEMPLATE.read_text(encoding="utf-8")
    payload = json.dumps(data, ensure_ascii=False, sort_keys=True, allow_nan=False, default=_jsonable)
    payload = payload.replace("<", "\\u003c")  # no data can open or close a tag inside the script element
    title = f"Atom atlas — {data['profile']}"
    return template.replace(PLACEHOLDER_TITLE, _escape_html(title)).replace(PLACEHOLDER_DATA, payload)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON-able: {type(x).__name__}")


def _escape_html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def write_atlas(profile: str) -> Path:
    """Write ``figures/<profile>/atlas.html`` from the profile's artifacts; returns its path."""
    data = _finite(atlas_data(load_results(profile)))
    out = paths.atlas_file(profile)
    write_text(out, render(data))
    s = data["summary"]
    log.info("wrote %s: %d atoms, %d documents shown, steering for %s", out, s["n_atoms"],
             len(data["docs"]), ", ".join(s["steered"]) or "none")
    return out


def _finite(x: Any) -> Any:
    """``x`` with NaN and infinities replaced by None (JSON has neither)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gatoms.report.atlas", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="tiny", help="profile whose atoms to show (configs/<profile>.yaml)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        out = write_atlas(args.profile)
    except ArtifactError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[gatoms] atlas        profile={args.profile:<8} {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
