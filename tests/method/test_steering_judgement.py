"""How step 06 judges steering, on toys whose answer is known: the dev/test split, signed vs symmetric
effects and their paired bootstrap, α from a KL budget, every null's p-value on a planted toy (an atom that
truly shifts a rate vs one that does not), the intact verdict and the metrics' round trip. No model."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch
from lora_fixtures import random_eigenbasis

from gatoms.data.documents import Document, EvalPrompt
from gatoms.lm.adapters import Variant
from gatoms.lm.layout import Layout
from gatoms.method import steering as st
from gatoms.method.steering.metrics import BestCell, CurvePoint, SteeredAtom, SteeringMetrics

# ---- the dev/test split -----------------------------------------------------------------------------------


def eval_prompts(n_inv=30, n_ctl=20, behaviors=("bullets", "code")):
    out = []
    for b in behaviors:
        out += [EvalPrompt(b, "inviting", f"{b} inviting prompt {i}", f"{b}-inviting-{i:03d}") for i in range(n_inv)]
        out += [EvalPrompt(b, "control", f"neutral prompt {i}", f"{b}-control-{i:03d}") for i in range(n_ctl)]
    return out  # the controls' texts repeat across behaviours, as a shared neutral set would


def test_dev_and_test_never_share_a_prompt():
    prompts = eval_prompts()
    items = st.split_prompts(prompts, 1 / 3, seed=0)
    st.check_disjoint(items)
    for attr in ("prompt_id", "prompt"):
        dev = {getattr(i, attr) for i in items if i.split == "dev"}
        test = {getattr(i, attr) for i in items if i.split == "test"}
        assert dev and test and not dev & test, attr
    for b in ("bullets", "code"):  # stratified: a third of each behaviour's inviting prompts
        assert sum(i.split == "dev" and i.behavior == b and i.kind == "inviting" for i in items) == 10
    assert [i.prompt_id for i in items] == [p.prompt_id for p in prompts]  # order kept
    assert items == st.split_prompts(prompts, 1 / 3, seed=0)  # seeded
    assert items != st.split_prompts(prompts, 1 / 3, seed=1)
    leaked = [dataclasses.replace(items[0], split="test" if items[0].split == "dev" else "dev")] + items[1:]
    leaked.append(dataclasses.replace(items[0]))  # the same prompt on the other side
    with pytest.raises(ValueError, match="both dev and test"):
        st.check_disjoint(leaked)
    with pytest.raises(ValueError, match="at least 2"):
        st.split_prompts(eval_prompts(n_inv=1), 0.5, 0)


def test_max_prompts_keeps_a_seeded_subset_of_each_stratum():
    prompts = eval_prompts()
    items = st.split_prompts(prompts, 1 / 3, seed=0, limit=12)
    for b in ("bullets", "code"):
        for kind in ("inviting", "control"):
            mine = [i for i in items if i.behavior == b and i.kind == kind]
            assert len(mine) == 12 and sum(i.split == "dev" for i in mine) == 4  # a third of the 12
    st.check_disjoint(items)
    full = {i.prompt_id: i.split for i in st.split_prompts(prompts, 1 / 3, seed=0)}
    assert {i.prompt_id for i in items} < set(full)
    assert items == st.split_prompts(prompts, 1 / 3, seed=0, limit=12)  # seeded
    assert {i.prompt_id for i in items} != {i.prompt_id for i in st.split_prompts(prompts, 1 / 3, seed=1, limit=12)}
    assert st.split_prompts(prompts, 1 / 3, seed=0, limit=100) == st.split_prompts(prompts, 1 / 3, seed=0)


def test_capability_items_take_the_families_in_turn():
    docs = [Document(f"{f}{i}", f"q {f} {i}", "a", f) for f in ("arithmetic", "factual_qa", "poem") for i in range(3)]
    items = st.capability_items(docs, ("arithmetic", "factual_qa"), limit=5)
    assert [i.prompt_id for i in items] == ["arithmetic0", "factual_qa0", "arithmetic1", "factual_qa1", "arithmetic2"]
    assert all(i.kind == "capability" and i.doc is not None for i in items)
    assert len(st.capability_items(docs, ("arithmetic", "factual_qa"))) == 6


def test_the_world_grader_only_for_world_documents():
    from gatoms.lm.sources import capability_grader
    from gatoms.world import DETERMINISTIC_FAMILIES, is_correct

    docs = [Document(f"{f}{i}", f"q {f} {i}", "a", f) for f in ("arithmetic", "factual_qa", "poem") for i in range(3)]
    assert capability_grader(docs, "auto") == (None, ["arithmetic", "factual_qa", "poem"], {})  # "poem": not the world's
    with pytest.raises(ValueError, match="grader: none"):
        capability_grader(docs, "world")
    world = [d for d in docs if d.family != "poem"]
    grade, families, own = capability_grader(world, "auto")
    assert grade is is_correct and families == list(DETERMINISTIC_FAMILIES) and own["yes_no"] == ("yes_no",)
    assert capability_grader(world, "none")[0] is None


# ---- signed vs symmetric effects ---------------------------------------------------------------------------


def test_signed_and_symmetric_parts_of_a_known_curve():
    """r(α) = base + a·α + b·α² per prompt (in expectation): the signed part is a·α and the symmetric b·α²."""
    n = 400
    base = (np.arange(n) % 2).astype(float)  # rate 0.5
    up, down = base.copy(), base.copy()
    up[(base == 0) & (np.arange(n) % 10 < 6)] = 1  # +0.3: r(+α) = 0.8
    down[(base == 1) & (np.arange(n) % 10 < 2)] = 0  # -0.1: r(-α) = 0.4
    e = st.effect(up, down, base, alpha=2.0, n_boot=500, seed=0)
    assert e.toward == pytest.approx(0.8) and e.away == pytest.approx(0.4) and e.base == pytest.approx(0.5)
    assert e.signed == pytest.approx(0.2) and e.symmetric == pytest.approx(0.1)
    assert e.toward_shift == pytest.approx(0.3) and e.away_shift == pytest.approx(-0.1)
    assert e.signed_ci[0] < 0.2 < e.signed_ci[1] and e.significant()
    # A model breaking both ways: both signs lose the behaviour — all symmetric, nothing signed.
    broken = np.zeros(n)
    b = st.effect(broken, broken, base, alpha=50.0, n_boot=500, seed=0)
    assert b.signed == 0 and b.symmetric == pytest.approx(-0.5) and b.signed_ci == (0.0, 0.0)
    assert not b.significant() and b.toward_shift == b.away_shift == pytest.approx(-0.5)


def test_paired_bootstrap_matches_a_loop_reference():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 2, size=(37, 3)).astype(float)
    fast = st.bootstrap_ci(values, n_boot=300, seed=7)
    gen = np.random.default_rng(7)
    idx = gen.integers(0, 37, size=(300, 37))
    means = np.array([[values[row, j].mean() for j in range(3)] for row in idx])  # the same resamples, one by one
    ref = np.array([[np.percentile(means[:, j], 2.5), np.percentile(means[:, j], 97.5)] for j in range(3)])
    np.testing.assert_allclose(fast, ref)
    assert st.bootstrap_ci(values, 300, 7).tolist() == fast.tolist()  # seeded


def curve_records(hits: dict[float, list[int]], behavior="bullets", kind="atom", split="test"):
    return [{"behavior": behavior, "kind": "clean" if a == 0 else kind, "alpha": a, "prompt_kind": "inviting",
             "split": split, "prompt_id": f"p{i}", "sample": 0, "detected": bool(h), "degenerate": False}
            for a, row in hits.items() for i, h in enumerate(row)]


def test_effect_of_reads_the_records_paired_by_prompt():
    hits = {0.0: [1, 0, 0, 1], 3.0: [1, 1, 0, 1], -3.0: [0, 0, 0, 1]}
    recs = curve_records(hits)
    recs = recs[::-1]  # order does not matter: prompts are matched by id
    e = st.effect_of(recs, "bullets", "atom", 3.0, n_boot=100, seed=0)
    assert (e.base, e.toward, e.away, e.n) == (0.5, 0.75, 0.25, 4)
    assert e.signed == pytest.approx(0.25) and e.symmetric == pytest.approx(0.0)
    assert st.signed_effect(recs, "bullets", "atom", 3.0) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="without an answer"):
        st.effect_of(recs[1:], "bullets", "atom", 3.0, 100, 0)
    with pytest.raises(ValueError, match="no test inviting records"):
        st.effect_of(recs, "code", "atom", 3.0, 100, 0)


# ---- α from the KL budget --------------------------------------------------------------------------------


@pytest.mark.parametrize("c_up,c_down,budget", [(1e-3, 1e-3, 0.1), (4e-3, 1e-3, 0.1), (1e-3, 1e-2, 0.05),
                                                (1.0, 1.0, 0.1), (1e-7, 1e-7, 0.1)])
def test_budget_alpha_on_a_toy(c_up, c_down, budget):
    """KL(α) = c·α² per sign: α* = sqrt(budget / max(c)) — inside the grid, below it and above it."""
    calls = []

    def kl(a):
        calls.append(a)
        return (c_up if a > 0 else c_down) * a * a

    b = st.budget_alpha(kl, budget, grid=(1.0, 2.5, 5.0, 10.0, 25.0), steps=10)
    made = list(calls)
    truth = np.sqrt(budget / max(c_up, c_down))
    if truth > 25.0 * 2 ** 4:  # beyond the search: the budget is reported unreached
        assert not b.reached and b.alpha == 25.0 * 2 ** 4
        return
    assert b.reached and b.alpha <= truth and b.alpha == pytest.approx(truth, rel=0.01)
    assert b.kl <= budget and b.kl == pytest.approx(max(kl(b.alpha), kl(-b.alpha)))
    assert [t[0] for t in b.trace] == [a for a in made if a > 0]  # every evaluation recorded, both signs
    assert all(t[1] == kl(t[0]) and t[2] == kl(-t[0]) for t in b.trace)


def test_budget_alpha_refuses_a_budget_it_cannot_meet():
    with pytest.raises(ValueError, match="budget"):
        st.budget_alpha(lambda a: 1.0, 0.1, (1.0, 2.0), steps=3)  # KL 1 at every α


# ---- nulls on a planted toy ---------------------------------------------------------------------------------

LAYOUT = Layout.from_shapes([(f"m{i}.lora_{'A' if i % 2 == 0 else 'B'}.default", (8, 8)) for i in range(4)])
N_PROMPTS = 200


class PlantedBackend:
    """A stand-in model: prompt i answers with a bullet list when its threshold (i + 0.5) / N is below
    0.5 + gain · α · cos(direction, planted) — the behaviour moves only along the planted direction."""

    def __init__(self, planted: torch.Tensor, gain: float):
        self.w, self.gain = planted / planted.norm(), gain

    def generate(self, jobs):
        out = []
        for v, prompts in jobs:
            if v.direction is None:
                p = 0.5
            else:
                u = v.direction.double()
                p = 0.5 + self.gain * v.alpha * float(u @ self.w.double()) / float(u.norm())
            out.append([["- a\n- b" if (int(t.rsplit(" ", 1)[1]) + 0.5) / N_PROMPTS < p else "Plain."] for t in prompts])
        return out


def planted_toy():
    proj = random_eigenbasis(LAYOUT, k=8, seed=1)
    rng = np.random.default_rng(0)
    atoms = rng.standard_normal((30, proj.dim))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)  # a dictionary of unit atoms
    planted = proj.unproject(atoms[0])  # atom 0 is the behaviour's direction
    items = [st.Item(f"prompt {i}", f"p{i:03d}", "inviting", "bullets", "test") for i in range(N_PROMPTS)]
    return proj, atoms, planted, items


@pytest.mark.parametrize("kind", st.NULL_KINDS)
def test_each_null_separates_a_planted_atom_from_one_that_does_not_steer(kind):
    proj, atoms, planted, items = planted_toy()
    backend, alpha = PlantedBackend(planted, gain=0.4), 1.0
    others = [int(j) for j in range(2, 30)]
    orth = torch.as_tensor(atoms[1], dtype=torch.float64)
    z0 = torch.as_tensor(atoms[0], dtype=torch.float64)
    dead = proj.unproject(orth - (orth @ z0) * z0).double()  # atom 1 made orthogonal to the planted one in z
    dead = dead - (dead @ planted.double()) / planted.double().norm() ** 2 * planted.double()  # and in θ
    results = {}
    for name, v in (("planted", planted.float()), ("dead", dead.float())):
        nulls = st.null_directions(kind, v, LAYOUT, 20, seed=5, proj=proj, atoms=atoms, candidates=others)
        assert len(nulls) == 20 and all(lab.startswith(kind + ":") for lab, _ in nulls)
        jobs = [(Variant("clean", kind="clean"), items)]
        for label, u in [("atom", v), *nulls]:
            jobs += [(Variant(st.variant_name("bullets", label, s * alpha), "bullets", u, s * alpha, label), items)
                     for s in (1, -1)]
        recs = st.evaluate(backend, jobs)
        atom_effect = st.signed_effect(recs, "bullets", "atom", alpha)
        effects = [st.signed_effect(recs, "bullets", lab, alpha) for lab, _ in nulls]
        results[name] = st.null_test(kind, atom_effect, effects, [lab for lab, _ in nulls])
    planted_r, dead_r = results["planted"], results["dead"]
    assert planted_r.atom_effect == pytest.approx(0.4, abs=0.01)  # the planted shift, recovered
    assert planted_r.p_value == pytest.approx(1 / 21) and planted_r.percentile == 100.0
    assert abs(dead_r.atom_effect) < 0.01 and dead_r.p_value > 0.2
    assert planted_r.n == dead_r.n == 20 and len(planted_r.effects) == 20


def test_null_directions_match_the_atom_where_they_should():
    proj, atoms, planted, _ = planted_toy()
    v = planted.float()
    for kind in ("random", "subspace"):
        for _, u in st.null_directions(kind, v, LAYOUT, 5, seed=2, proj=proj):
            for m in LAYOUT:  # the atom's norm in every module
                assert float(u[LAYOUT.slice(m)].norm()) == pytest.approx(float(v[LAYOUT.slice(m)].norm()), rel=1e-5)
    sub = st.null_directions("subspace", v, LAYOUT, 3, seed=2, proj=proj)
    for _, u in sub:  # in the atoms' subspace: projecting and unprojecting gives it back
        z = proj.project(u[None].double())[0]
        back = st.match_module_norms(proj.unproject(z), v, LAYOUT)
        torch.testing.assert_close(back, u, rtol=1e-4, atol=1e-6)
    picked = st.null_directions("atoms", v, LAYOUT, 5, seed=2, proj=proj, atoms=atoms, candidates=[3, 4, 5, 6, 7, 8])
    ids = [int(lab.split(":")[1]) for lab, _ in picked]
    assert len(set(ids)) == 5 and set(ids) <= {3, 4, 5, 6, 7, 8}
    torch.testing.assert_close(picked[0][1], proj.unproject(atoms[ids[0]]))
    assert [lab for lab, _ in st.null_directions("random", v, LAYOUT, 4, seed=2)] == \
        [lab for lab, _ in st.null_directions("random", v, LAYOUT, 4, seed=2)]
    with pytest.raises(ValueError, match="unknown null kind"):
        st.null_directions("gaussian", v, LAYOUT, 2, seed=0)


def test_null_candidates_leave_out_the_behaviours_own_atoms():
    from gatoms.method.coherence import AtomRow

    labels = np.array([True] * 10 + [False] * 10)
    rows = [AtomRow(0, 0, 0.5, 10, top_docs=tuple(range(10))), AtomRow(0, 1, 0.5, 10, top_docs=tuple(range(10, 20))),
            AtomRow(0, 2, 0.5, 10, top_docs=(0, 1, 12, 13, 14)), AtomRow(0, 3, 0.0, 1, top_docs=(15,)),
            AtomRow(0, 4, 0.4, 8, top_docs=(16, 17))]
    assert st.null_candidates(rows, labels, exclude=[4], min_share=0.5) == [1, 2]


def test_null_test_is_the_empirical_p_value():
    r = st.null_test("random", 0.2, [0.1, 0.3, 0.2, -0.1])
    assert r.p_value == pytest.approx(3 / 5) and r.percentile == pytest.approx(50.0)
    assert st.null_test("random", 0.5, [0.1] * 19).p_value == pytest.approx(1 / 20)
    empty = st.null_test("random", 0.5, [])
    assert empty.n == 0 and empty.p_value != empty.p_value


# ---- intact ---------------------------------------------------------------------------------------------


def test_intact_needs_capability_and_kl():
    rule = st.IntactRule(kl_max=0.06, max_capability_drop=0.05, max_ppl_ratio=1.2, graded=True)
    ok = st.judge(rule, kl=0.05, nll=1.0, clean_nll=1.0, capability=0.78, clean_capability=0.80)
    assert ok.intact and ok.reasons == () and ok.capability_drop == pytest.approx(0.02)
    lost = st.judge(rule, kl=0.01, nll=1.0, clean_nll=1.0, capability=0.70, clean_capability=0.80)
    assert not lost.intact and "capability" in lost.reasons[0]
    far = st.judge(rule, kl=0.2, nll=1.0, clean_nll=1.0, capability=0.80, clean_capability=0.80)
    assert not far.intact and "KL" in far.reasons[0]
    both = st.worse(ok, lost)
    assert not both.intact and both.capability == 0.70 and both.kl == 0.05
    ungraded = st.IntactRule(0.06, 0.05, 1.2, graded=False)
    assert st.judge(ungraded, 0.01, nll=1.1, clean_nll=1.0).intact  # perplexity ×1.105
    assert not st.judge(ungraded, 0.01, nll=1.3, clean_nll=1.0).intact  # ×1.35
    with pytest.raises(ValueError, match="capability"):
        st.judge(rule, 0.01, 1.0, 1.0)
    cfg = st.SteeringConfig(kl_intact=2.0)
    assert st.IntactRule.from_config(cfg, True, budget=0.03).kl_max == pytest.approx(0.06)


def test_capability_is_compared_on_the_same_documents():
    recs = [{"variant": "clean", "prompt_kind": "capability", "prompt_id": f"h{i}", "correct": c}
            for i, c in enumerate((1, 1, 0, 1))]
    recs += [{"variant": "yes_no-toward-2", "prompt_kind": "capability", "prompt_id": f"h{i}", "correct": c}
             for i, c in ((0, 1), (2, 1))]  # graded on two of the documents only (not the behaviour's own)
    recs += [{"variant": "yes_no-toward-2", "prompt_kind": "inviting", "prompt_id": "p0", "correct": None}]
    graded = st.capability(recs)
    assert graded["clean"] == {"h0": 1.0, "h1": 1.0, "h2": 0.0, "h3": 1.0}
    assert st.paired_capability(graded, "yes_no-toward-2") == (1.0, 0.5, 2)  # clean on h0, h2: 1 of 2
    assert st.paired_capability(graded, "bullets-toward-2") is None
    graded["odd"] = {"h9": 1.0}
    with pytest.raises(ValueError, match="no graded clean answer"):
        st.paired_capability(graded, "odd")


# ---- what is recorded ---------------------------------------------------------------------------------------


def steered_atom(**changes) -> SteeredAtom:
    values = dict(atom=7, coherence=0.4, chosen_by="detector", share=1.0, accepted=True, alpha=3.5, budget_reached=True,
                  kl_dev=0.03, n=40, base=0.25, base_ci=[0.1, 0.4], toward=0.75, toward_ci=[0.6, 0.85], away=0.05,
                  away_ci=[0.01, 0.2], signed=0.35, signed_ci=[0.25, 0.45], symmetric=0.15, symmetric_ci=[0.0, 0.3],
                  toward_shift=0.5, toward_shift_ci=[0.3, 0.6], away_shift=-0.2, away_shift_ci=[-0.3, -0.1],
                  control_base=0.0, control_toward=0.05, control_away=0.0, degenerate_toward=0.1,
                  degenerate_away=0.0, intact=True, kl=0.035, capability=0.8, capability_clean=0.81, ppl_ratio=1.02,
                  intact_reasons=[], significant=True, beats_nulls=True, steered=True, verdict="steered")
    values.update(changes)
    return SteeredAtom(**values)


def test_metrics_round_trip_with_nested_results():
    row = steered_atom(nulls={"random": st.null_test("random", 0.35, [0.0, 0.1], ["random:0", "random:1"], [0.01])},
                       best_toward=BestCell(5.0, 0.8, [0.6, 0.9], 0.85, True),
                       curve=[CurvePoint(0.0, 0.25, [0.1, 0.4], 0.0, 0.0, 0.81, True)])
    m = SteeringMetrics(seconds=3.0, behaviors={"bullets": row}, oracle={"bullets": steered_atom(chosen_by="fmt")},
                        steered=["bullets"], kl_budget=0.03, alphas=[1.0, 2.0])
    back = SteeringMetrics.from_json(m.to_json())
    assert back == m and isinstance(back.behaviors["bullets"].nulls["random"], st.NullResult)
    assert isinstance(back.behaviors["bullets"].best_toward, BestCell)
    data = m.to_json()
    data["behaviors"]["bullets"]["ran_on"] = {}
    with pytest.raises(ValueError, match="unknown metrics"):
        SteeringMetrics.from_json(data)


def test_samples_are_seeded_and_cover_every_alpha():
    hits = {0.0: [1, 0, 0, 1], 3.0: [1, 1, 0, 1], -3.0: [0, 0, 0, 1]}
    recs = [dict(r, prompt=r["prompt_id"], response="- a\n- b" if r["detected"] else "x") for r in curve_records(hits)]
    rows = st.samples(recs, "bullets", n=2, seed=0)
    assert [r["alpha"] for r in rows] == [-3.0, -3.0, 0.0, 0.0, 3.0, 3.0]
    assert rows == st.samples(list(reversed(recs)), "bullets", n=2, seed=0)
    digest = hashlib.sha256(repr(rows).encode()).hexdigest()
    assert digest == hashlib.sha256(repr(st.samples(recs, "bullets", n=2, seed=0)).encode()).hexdigest()
