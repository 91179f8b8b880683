"""The BIG-bench mixture (gatoms.data.bigbench) on a small fake sdist laid out like bigbench-1.0.0: the
renderings, a seeded and recorded recipe, deduplication, disjoint held-out examples, the cache and the
errors on a missing or wrong archive. No download: the real archive is only read by the smol profile."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from gatoms.data import bigbench as bb


def _task(name: str, kind: str, n: int) -> dict:
    if kind == "yes_no":
        ex = [{"input": f"{name} statement {i}", "target": ["Yes, because.", "No."][i % 2]} for i in range(n)]
    elif kind == "code":
        ex = [{"input": f"print({i})", "target": f"prints the number {i}"} for i in range(n)]
    elif kind == "numbered":
        ex = [{"input": f"zeta alpha w{i}", "target": f"alpha w{i} zeta"} for i in range(n)]
    elif kind == "bullets":
        ex = [{"input": f"a city in country {i}", "target": [f"city{i}a", f"city{i}b"]} for i in range(n)]
    else:
        ex = [{"input": f"{name} question {i}", "target_scores": {f"answer {i}": 1, "wrong": 0}} for i in range(n)]
    ex.append(dict(ex[0]))  # an exact duplicate: must be dropped
    return {"name": name, "examples": ex, "example_input_prefix": "Q: ", "example_output_prefix": "A:"}


def _sdist(path, n=12, drop=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, kind in bb.TASKS.items():
            if name in drop:
                continue
            blob = json.dumps(_task(name, kind, n)).encode()
            info = tarfile.TarInfo(f"bigbench-1.0.0/bigbench/benchmark_tasks/{name}/task.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    return _sdist(tmp_path_factory.mktemp("bb") / bb.SDIST)


def test_renderings_give_each_behaviour_its_format():
    yes = bb.render("strategyqa", "yes_no", {}, {"input": "Is ice cold?", "target": "Yes. Ice is frozen water."})
    assert yes == ("Is ice cold?", "Yes. Ice is frozen water.", "yes_no")
    assert bb.render("strategyqa", "yes_no", {}, {"input": "x", "target": "Maybe."}) is None
    code = bb.render("code_line_description", "code", {}, {"input": "print(1)\n", "target": "prints one"})
    assert code == ("Write Python code that prints one.", "```python\nprint(1)\n```", "code")
    num = bb.render("word_sorting", "numbered", {}, {"input": "b a", "target": "a b"})
    assert num[1:] == ("1. a\n2. b", "numbered")
    assert bb.render("word_sorting", "numbered", {}, {"input": "a", "target": "a"}) is None  # nothing to order
    bul = bb.render("qa_wikidata", "bullets", {}, {"input": "a fruit", "target": ["apple", "pear", "apple"]})
    assert bul[1:] == ("- apple\n- pear", "bullets")
    plain = bb.render("odd_one_out", "answer", {"example_input_prefix": "Q: "},
                      {"input": "cat dog car", "target_scores": {"car": 1, "cat": 0}})
    assert plain == ("Q: cat dog car", "Car.", "plain")


def test_mixture_is_seeded_deduplicated_recorded_and_disjoint(sdist):
    tasks = bb.read_tasks(sdist)
    recipe = bb.Recipe(n_docs=100, seed=3, heldout_per_task=2)
    train, heldout, realised = bb.draw(tasks, recipe)
    again = bb.draw(tasks, recipe)
    assert [d.doc_id for d in train] == [d.doc_id for d in again[0]] and realised == again[2]
    other = bb.draw(tasks, bb.Recipe(n_docs=100, seed=4, heldout_per_task=2))[0]
    assert [d.doc_id for d in train] != [d.doc_id for d in other]
    assert len(train) == realised["n_train"] == 100 and sum(realised["counts"].values()) == 100
    prompts = [d.prompt.lower() for d in train + heldout]
    assert len(prompts) == len(set(prompts))  # the planted duplicates were dropped; held-out is disjoint
    families = {d.family for d in train}
    assert len(families) == len(bb.TASKS) + 1 and "missing_input" in families  # ≥ 20 labelled task types
    assert {"yes_no", "code", "numbered", "bullets", "refusal", "plain"} == set(realised["fmt_counts"])
    assert all(sum(d.family == f for d in heldout) == 2 for f in families - {"missing_input"})


def test_build_mixture_caches_and_records_the_archive(sdist, tmp_path):
    recipe = bb.Recipe(n_docs=60)
    train, heldout, realised = bb.build_mixture(sdist, recipe, tmp_path)
    assert realised["sdist"] == {"file": bb.SDIST, "sha256": bb.sha256_file(sdist)}
    out = tmp_path / f"bigbench-{recipe.key()}"
    assert json.loads((out / "recipe.json").read_text())["key"] == recipe.key()
    cached = bb.build_mixture(tmp_path / "no-such-archive.tar.gz", recipe, tmp_path)  # read from the cache
    assert [d.doc_id for d in cached[0]] == [d.doc_id for d in train] and len(cached[1]) == len(heldout)


def test_bad_archives_and_recipes_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="pip download --no-deps"):
        bb.read_tasks(tmp_path / bb.SDIST)
    partial = _sdist(tmp_path / "partial.tar.gz", drop=("strategyqa",))
    with pytest.raises(ValueError, match="strategyqa"):
        bb.read_tasks(partial)
    with pytest.raises(ValueError, match="n_docs"):
        bb.Recipe(n_docs=3)


def test_grader_accepts_the_answer_as_a_phrase(sdist):
    train, _, _ = bb.draw(bb.read_tasks(sdist), bb.Recipe(n_docs=60))
    doc = next(d for d in train if d.fmt == "plain")
    answer = doc.meta["answers"][0]
    assert bb.is_answer(doc, f"The answer is {answer.upper()}!") and not bb.is_answer(doc, "wrong")
    code = next(d for d in train if d.fmt == "code")
    assert bb.is_answer(code, "```python\nprint(2)\n```") and not bb.is_answer(code, "print 2")
