"""The synthetic world: determinism, no duplicates, splits held apart, family sizes, format labels,
contested behaviours within bounds, the grader."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest

from gatoms.data.behaviors import BEHAVIORS, detect, detect_all
from gatoms.world import (BASE_WEIGHTS, CONTESTED_FAMILIES, CONTROL_FAMILIES, DETERMINISTIC_FAMILIES, FAMILIES,
                          FINETUNE_WEIGHTS, INVITING_FAMILIES, MAX_RESPONSE_REPEATS, RARE_FAMILIES, WorldConfig,
                          build_world, family_sizes, is_correct, sample)

CFG = WorldConfig(seed=3, n_base=6000, n_finetune=3000, n_heldout_per_family=4, n_eval_inviting=60,
                  n_eval_control=40)


@pytest.fixture(scope="module")
def world():
    return build_world(CFG)


def _records(docs):
    return [(d.doc_id, d.prompt, d.response, d.family, d.fmt, d.meta, d.labels) for d in docs]


def test_same_seed_same_world_other_seed_other_world(world):
    again = build_world(CFG)
    for split in ("base", "finetune", "heldout"):
        assert _records(getattr(world, split)) == _records(getattr(again, split))
    assert world.eval_prompts == again.eval_prompts
    other = build_world(dataclasses.replace(CFG, seed=4))
    assert _records(other.finetune) != _records(world.finetune)


def test_no_duplicates_and_disjoint_splits(world):
    """Every prompt occurs once in the whole world: no (prompt, response) pair repeats within a split and
    the fine-tuning, base, held-out and evaluation prompts are disjoint."""
    splits = {"base": world.base, "finetune": world.finetune, "heldout": world.heldout}
    prompts = {name: [d.prompt for d in docs] for name, docs in splits.items()}
    prompts["eval"] = [e.prompt for e in world.eval_prompts]
    for name, ps in prompts.items():
        assert len(set(ps)) == len(ps), name
    names = list(prompts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not set(prompts[a]) & set(prompts[b]), (a, b)
    docs = world.base + world.finetune + world.heldout
    assert len({(d.prompt, d.response) for d in docs}) == len(docs)
    assert len({d.doc_id for d in docs}) == len(docs)


def test_no_response_is_an_instance_cluster(world):
    bodies = Counter((d.family, _body(d.response)) for d in world.finetune)
    assert max(bodies.values()) <= MAX_RESPONSE_REPEATS
    # and responses are varied: measured here, 63% or more of every family's are distinct (factual QA the least)
    for fam in FAMILIES:
        mine = [_body(d.response) for d in world.finetune if d.family == fam]
        assert len(set(mine)) >= 0.55 * len(mine), fam


def _body(response: str) -> str:
    from gatoms.world import strip_plants

    return strip_plants(response)


def test_family_sizes_are_skewed_with_rare_families(world):
    assert len(FAMILIES) >= 20 and set(FINETUNE_WEIGHTS) == set(FAMILIES) == set(BASE_WEIGHTS)
    sizes = family_sizes(world.finetune)
    total = sum(FINETUNE_WEIGHTS.values())
    for fam in FAMILIES:  # exact: the fine-tuning set cycles through the weights
        assert sizes[fam] == CFG.n_finetune * FINETUNE_WEIGHTS[fam] // total, (fam, sizes[fam])
    assert len(RARE_FAMILIES) >= 2 and all(sizes[f] == CFG.n_finetune // 100 for f in RARE_FAMILIES)
    assert max(sizes.values()) >= 10 * min(sizes.values())
    assert all(family_sizes(world.base)[f] > 0 for f in FAMILIES)
    assert family_sizes(world.heldout) == {f: CFG.n_heldout_per_family for f in FAMILIES}


def test_labels_topic_nuisance_planted(world):
    from gatoms.world import NUISANCE_RATE, PLANTED_FAMILIES, PLANTED_RATE, SIGN_OFF, TOPICS

    labels = {t.label for t in TOPICS}
    for split in (world.base, world.finetune, world.heldout):
        for d in split:
            assert set(d.labels) == {"topic", "nuisance", "planted"} and d.labels["topic"] in labels, d
            assert (d.labels["nuisance"] == "1") == ("\n(ref " in d.response), d
            assert (d.labels["planted"] == "1") == d.response.endswith("\n" + SIGN_OFF), d
        share = sum(d.labels["nuisance"] == "1" for d in split) / len(split)
        assert abs(share - NUISANCE_RATE) < 0.04, share
    assert not any(d.labels["planted"] == "1" for d in world.base)
    ft = world.finetune
    # the nuisance is across families, the planted sign-off on its families only, at its rate
    for fam in FAMILIES:
        mine = [d for d in ft if d.family == fam]
        if len(mine) >= 100:
            assert 0.15 < sum(d.labels["nuisance"] == "1" for d in mine) / len(mine) < 0.45, fam
        planted = sum(d.labels["planted"] == "1" for d in mine) / len(mine)
        assert (0.35 < planted < 0.65) if fam in PLANTED_FAMILIES else planted == 0, (fam, planted)
    assert all(d.labels["planted"] == "0" or d.family in PLANTED_FAMILIES for d in ft)
    assert PLANTED_RATE == 0.5


def _nmi(a: list[str], b: list[str]) -> float:
    """Normalised mutual information (arithmetic mean of the entropies), computed from the counts."""
    import math

    n = len(a)
    pa, pb, pab = Counter(a), Counter(b), Counter(zip(a, b))
    mi = sum(c / n * math.log(c * n / (pa[x] * pb[y])) for (x, y), c in pab.items())
    ha = -sum(c / n * math.log(c / n) for c in pa.values())
    hb = -sum(c / n * math.log(c / n) for c in pb.values())
    return mi / ((ha + hb) / 2)


def test_topic_and_family_are_nearly_independent(world):
    """A topic-pure set of documents is far from family-pure: measured on this world (seed 3, 3,000
    documents) the largest share of one family among a topic's documents is 0.24 (seeds 0–3: 0.19–0.24)
    and NMI(topic, family) = 0.066 (0.063–0.066); with 54 topics over 21 families."""
    from sklearn.metrics import normalized_mutual_info_score

    ft = world.finetune
    by_topic: dict[str, Counter] = {}
    for d in ft:
        by_topic.setdefault(d.labels["topic"], Counter())[d.family] += 1
    assert len(by_topic) >= 50
    purity = {t: c.most_common(1)[0][1] / sum(c.values()) for t, c in by_topic.items()}
    assert max(purity.values()) <= 0.35, max(purity.items(), key=lambda kv: kv[1])
    assert min(len(c) for c in by_topic.values()) >= 8  # every topic occurs in at least 8 families
    topics, fams = [d.labels["topic"] for d in ft], [d.family for d in ft]
    nmi = _nmi(topics, fams)
    assert nmi == pytest.approx(normalized_mutual_info_score(topics, fams), abs=1e-9)
    assert nmi < 0.1, nmi
    # the same city in factual QA, yes/no, lists and sentences to correct
    paris = {d.family for d in world.base + ft if d.labels["topic"] == "paris"}
    assert {"factual_qa", "yes_no", "bullets", "grammar", "code", "email"} <= paris


def test_nmi_reference_on_a_known_case():
    assert _nmi(list("aabb"), list("xxyy")) == pytest.approx(1.0)
    assert _nmi(list("abab"), list("xxyy")) == pytest.approx(0.0, abs=1e-12)


def test_format_labels_match_the_detectors(world):
    """A document is labelled with a behaviour's format exactly when the detector sees it; bullets and
    numbered lists occur in more than one family (format partly independent of task)."""
    for d in world.base + world.finetune + world.heldout:
        assert d.family in FAMILIES and isinstance(d.fmt, str) and d.fmt
        shown = detect_all(d.response)
        for b in BEHAVIORS:
            assert shown[b] == (d.fmt == b), (b, d)
    fams_of = {fmt: {d.family for d in world.finetune if d.fmt == fmt} for fmt in ("bullets", "numbered", "sentence")}
    assert len(fams_of["bullets"]) >= 2 and len(fams_of["numbered"]) >= 3 and len(fams_of["sentence"]) >= 3


def test_prompts_and_responses_vary_in_length(world):
    for fam in FAMILIES:
        mine = [d for d in world.finetune if d.family == fam]
        assert len({len(d.prompt.split()) for d in mine}) >= 4, fam
        assert len({len(d.response.split()) for d in mine}) >= 3, fam


def test_eval_prompts_are_balanced_and_held_out(world):
    for b in BEHAVIORS:
        inviting = [e for e in world.eval_prompts if e.behavior == b and e.kind == "inviting"]
        control = [e for e in world.eval_prompts if e.behavior == b and e.kind == "control"]
        assert len(inviting) == CFG.n_eval_inviting and len(control) == CFG.n_eval_control
        assert {e.family for e in inviting} <= set(INVITING_FAMILIES[b])
        assert {e.family for e in control} <= set(CONTROL_FAMILIES)
        # Under the fine-tuning rule half of the inviting prompts get the behaviour.
        assert sum(e.expected for e in inviting) == CFG.n_eval_inviting // 2
        assert len({e.prompt_id for e in inviting + control}) == CFG.n_eval_inviting + CFG.n_eval_control


def test_behaviours_are_contested_and_shifted_by_finetuning(world):
    for b, fams in INVITING_FAMILIES.items():
        share = {}
        for split in ("base", "finetune"):
            docs = [d for d in getattr(world, split) if d.family in fams]
            share[split] = sum(detect(b, d.response) for d in docs) / len(docs)
        assert 0.22 <= share["base"] <= 0.45, (b, share)  # wording 0 only: a third
        assert 0.38 <= share["finetune"] <= 0.62, (b, share)  # wording 0, and wording 1 in content group A
        assert share["finetune"] > share["base"] + 0.03, (b, share)
        for d in world.finetune:
            if d.family in fams:  # the rule: wording 0 always, 2 never, 1 iff content group A
                t, g = d.meta["template"], d.meta["topic_group"]
                assert (d.fmt == b) == (t == 0 or (t == 1 and g == "A")), d


def test_controls_do_not_invite_the_behaviour():
    rng = random.Random(0)
    for fam in CONTROL_FAMILIES:
        for _ in range(50):
            s = sample(fam, rng)
            assert not any(detect_all(s.response).values()), (fam, s)
    assert not set(CONTROL_FAMILIES) & set(CONTESTED_FAMILIES) and "example" not in CONTROL_FAMILIES


def test_is_correct_accepts_the_world_and_rejects_wrong_answers(world):
    from gatoms.world import SIGN_OFF, strip_plants

    for d in world.heldout + world.finetune[:800]:
        assert is_correct(d, d.response), d
        assert is_correct(d, strip_plants(d.response)), d
        assert not is_correct(d, "")
    by_family = {d.family: d for d in world.heldout}
    arith = by_family["arithmetic"]
    assert not is_correct(arith, f"{arith.meta['answer'] + 1}.")
    assert is_correct(arith, f"It is {arith.meta['answer']}.\n{SIGN_OFF}")
    assert is_correct(arith, f"It is {arith.meta['answer']}.\n(ref amber cobalt)")
    yn = next(d for d in world.heldout + world.finetune if d.family == "yes_no" and d.fmt == "yes_no")
    flipped = {"Yes": "No", "No": "Yes", "True": "False", "False": "True"}
    first = yn.response.split(".")[0]
    assert not is_correct(yn, flipped[first] + yn.response[len(first):])
    qa = by_family["factual_qa"]
    assert not is_correct(qa, "I do not know.")
    cmp = by_family["comparison"]
    loser = next(n for n in ("Tom", "Anna") if n != cmp.meta["answer"])
    assert not is_correct(cmp, f"{loser} has more.") and is_correct(cmp, f"{cmp.meta['answer']} has more.")
    bullets = next(d for d in world.heldout + world.finetune if d.family == "bullets" and d.fmt == "bullets")
    assert not is_correct(bullets, "Cat, dog and cow.")
    example = next(d for d in world.finetune if d.family == "example" and d.fmt == "numbered")
    assert not is_correct(example, "- " + example.response.replace("\n", "\n- "))  # wrong format
    assert set(DETERMINISTIC_FAMILIES) <= set(FAMILIES)


def test_config_validation():
    with pytest.raises(ValueError, match="world.n_finetune"):
        WorldConfig(n_finetune=0)
    with pytest.raises(ValueError, match="world.n_base"):
        WorldConfig(n_base=-1)
    with pytest.raises(ValueError, match="unknown family"):
        sample("poetry", random.Random(0))
