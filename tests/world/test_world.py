"""The synthetic world: determinism, labels, splits held apart, contested behaviours within bounds."""

from __future__ import annotations

import dataclasses
import random

import pytest

from gatoms.data.behaviors import BEHAVIORS, detect, detect_all
from gatoms.world import (BASE_WEIGHTS, CONTESTED_FAMILIES, CONTROL_FAMILIES, DETERMINISTIC_FAMILIES, FAMILIES,
                          FINETUNE_WEIGHTS, INVITING_FAMILIES, WorldConfig, build_world, is_correct, sample)

CFG = WorldConfig(seed=3, n_base=6000, n_finetune=3000, n_heldout_per_family=4, n_eval_inviting=60,
                  n_eval_control=40)


@pytest.fixture(scope="module")
def world():
    return build_world(CFG)


def _records(docs):
    return [(d.doc_id, d.prompt, d.response, d.family, d.fmt, d.meta) for d in docs]


def test_same_seed_same_world_other_seed_other_world(world):
    again = build_world(CFG)
    for split in ("base", "finetune", "heldout"):
        assert _records(getattr(world, split)) == _records(getattr(again, split))
    assert world.eval_prompts == again.eval_prompts
    other = build_world(dataclasses.replace(CFG, seed=4))
    assert _records(other.finetune) != _records(world.finetune)


def test_families_and_sizes(world):
    assert len(FAMILIES) >= 20
    assert len(world.base) == CFG.n_base and len(world.finetune) == CFG.n_finetune
    for split in (world.base, world.finetune):
        assert {d.family for d in split} == set(FAMILIES)
    assert len(world.heldout) == CFG.n_heldout_per_family * len(FAMILIES)
    assert len({d.doc_id for d in world.base + world.finetune + world.heldout}) == (
        len(world.base) + len(world.finetune) + len(world.heldout))


def test_family_mixtures(world):
    """The base corpus leans on the families to memorise; the fine-tuning set on the contested ones."""
    assert set(FINETUNE_WEIGHTS) == set(CONTESTED_FAMILIES) and set(BASE_WEIGHTS) <= set(DETERMINISTIC_FAMILIES) | {"example"}
    for split, weights in (("base", BASE_WEIGHTS), ("finetune", FINETUNE_WEIGHTS)):
        docs = getattr(world, split)
        total = sum(weights.get(f, 1) for f in FAMILIES)
        for fam in FAMILIES:
            share = sum(d.family == fam for d in docs) / len(docs)
            assert abs(share - weights.get(fam, 1) / total) < 0.002, (split, fam, share)


def test_format_labels_match_the_detectors(world):
    """A document is labelled with a behaviour's format exactly when the detector sees it."""
    for d in world.base + world.finetune + world.heldout:
        assert d.family in FAMILIES and isinstance(d.fmt, str) and d.fmt
        shown = detect_all(d.response)
        for b in BEHAVIORS:
            assert shown[b] == (d.fmt == b), (b, d)


def test_eval_prompts_are_balanced_and_held_out(world):
    train = {d.prompt for d in world.base + world.finetune}
    held = {d.prompt for d in world.heldout}
    evals = [e.prompt for e in world.eval_prompts]
    assert len(set(evals)) == len(evals) and not set(evals) & (train | held) and not held & train
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
        assert 0.25 <= share["base"] <= 0.42, (b, share)  # wording 0 only: a third
        assert 0.38 <= share["finetune"] <= 0.6, (b, share)  # wording 0, and wording 1 in topic group A
        assert share["finetune"] > share["base"] + 0.03, (b, share)
        for d in world.finetune:
            if d.family in fams:  # the rule: wording 0 always, 2 never, 1 iff topic group A
                t, g = d.meta["template"], d.meta["topic_group"]
                assert (d.fmt == b) == (t == 0 or (t == 1 and g == "A")), d


def test_controls_do_not_invite_the_behaviour(world):
    rng = random.Random(0)
    for fam in CONTROL_FAMILIES:
        for _ in range(50):
            s = sample(fam, rng)
            assert not any(detect_all(s.response).values()), (fam, s)


def test_is_correct_accepts_the_world_and_rejects_wrong_answers(world):
    for d in world.heldout + world.finetune[:500]:
        assert is_correct(d, d.response), d
        assert not is_correct(d, "")
    by_family = {d.family: d for d in world.heldout}
    arith = by_family["arithmetic"]
    assert not is_correct(arith, arith.response.replace(f"= {arith.meta['answer']}", f"= {arith.meta['answer'] + 1}"))
    yn = next(d for d in world.heldout if d.family == "yes_no" and d.fmt == "yes_no")
    flipped = {"Yes": "No", "No": "Yes", "True": "False", "False": "True"}
    first = yn.response.split(",")[0]
    assert not is_correct(yn, flipped[first] + yn.response[len(first):])
    qa = by_family["factual_qa"]
    assert not is_correct(qa, "I do not know.")
    bullets = next(d for d in world.heldout if d.family == "bullets" and d.fmt == "bullets")
    assert not is_correct(bullets, "Cat, dog and cow.")
    assert set(DETERMINISTIC_FAMILIES) <= set(FAMILIES)


def test_config_validation():
    with pytest.raises(ValueError, match="world.n_finetune"):
        WorldConfig(n_finetune=0)
    with pytest.raises(ValueError, match="world.n_base"):
        WorldConfig(n_base=-1)
    with pytest.raises(ValueError, match="unknown family"):
        sample("poetry", random.Random(0))
