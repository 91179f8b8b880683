"""Per-document gradients: hooks vs the authors' per-document loop, factors vs brute force, storage,
resume, refusal of bad input, the Gemma-3 4B layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lora_fixtures import bruteforce_factors, random_docs, tiny_lora_model

from gatoms.build import paths
from gatoms.build.config import ConfigError, build_section
from gatoms.lm.encoding import EncodedDoc
from gatoms.lm.layout import Layout, gemma3_4b_layout
from gatoms.method.ekfac import Factors
from gatoms.method.gradients import ExtractConfig, extract_gradients, open_gradients, plan_batches, reference_gradients

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)

CFG = dict(batch_tokens=96, checkpoint_seconds=0.0, device="cpu")


def max_rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """max over rows of ‖a − ref‖∞ / ‖ref‖∞."""
    return float((np.abs(a - ref).max(1) / np.abs(ref).max(1)).max())


@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_hooks_match_per_document_loop(arch, tmp_path):
    model = tiny_lora_model(arch)
    docs = random_docs(24, seed=1, min_len=4, max_len=48)
    ref = reference_gradients(model, docs)
    res = extract_gradients(model, docs, tmp_path, ExtractConfig(**CFG), progress=False)
    assert (res.n_docs, res.n_params) == ref.shape
    assert len(plan_batches([len(d.input_ids) for d in docs], CFG["batch_tokens"])) > 3  # several, mixed
    got = open_gradients(tmp_path).rows(slice(None))
    assert np.all(np.abs(ref).max(1) > 0)
    assert max_rel_err(got, ref) <= 1e-5
    # all parameters are left as they were: frozen, eval
    assert not any(p.requires_grad for p in model.parameters())


def test_rows_do_not_depend_on_batching(tmp_path):
    model = tiny_lora_model("gemma3")
    docs = random_docs(16, seed=2)
    extract_gradients(model, docs, tmp_path / "a", ExtractConfig(batch_tokens=1, device="cpu"), progress=False)
    extract_gradients(model, docs, tmp_path / "b", ExtractConfig(batch_tokens=4096, device="cpu"), progress=False)
    a, b = (open_gradients(tmp_path / x).rows(slice(None)) for x in "ab")
    assert max_rel_err(b, a) <= 1e-5


def test_factors_match_bruteforce(tmp_path):
    model = tiny_lora_model("gemma3")
    docs = random_docs(10, seed=3)
    res = extract_gradients(model, docs, tmp_path, ExtractConfig(**CFG), progress=False)
    A, S, T, grads_ok = bruteforce_factors(model, docs)
    assert all(grads_ok.values()), grads_ok  # the captured δ really is ∂L/∂output
    f = Factors.load(tmp_path / paths.FACTORS)
    assert f.n_tokens == res.n_tokens == T and f.fisher == "empirical"
    for name in A:
        for got, want in ((f.A[name], A[name]), (f.S[name], S[name])):  # float32 vs float64 sums
            torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
    # q_proj and v_proj lora_A see the same input: their A factors are identical.
    qa = [n for n in A if "q_proj.lora_A" in n][0]
    assert torch.equal(f.A[qa], f.A[qa.replace("q_proj", "v_proj")])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_storage_roundtrip(dtype, tmp_path):
    model = tiny_lora_model("gemma3")
    docs = random_docs(8, seed=4)
    extract_gradients(model, docs, tmp_path / "f32", ExtractConfig(**CFG), progress=False)
    extract_gradients(model, docs, tmp_path / dtype, ExtractConfig(**CFG, dtype=dtype), progress=False)
    full = open_gradients(tmp_path / "f32").rows(slice(None))
    r = open_gradients(tmp_path / dtype)
    assert r.dtype == dtype and r.shape == full.shape
    expect = torch.from_numpy(full).to(getattr(torch, dtype)).float().numpy()
    np.testing.assert_array_equal(r.rows(slice(None)), expect)
    np.testing.assert_array_equal(r.rows([5, 1, 3]), expect[[5, 1, 3]])  # any order, only those rows
    np.testing.assert_array_equal(np.concatenate([b for _, b in r.chunks(3)]), expect)


class Interrupt(RuntimeError):
    pass


def _interrupt_after(n: int):
    count = {"n": 0}

    def on_batch(_):
        count["n"] += 1
        if count["n"] == n:
            raise Interrupt

    return on_batch


@pytest.mark.parametrize("fisher", [False, True])
def test_resume_after_interruption_is_bit_identical(fisher, tmp_path):
    model = tiny_lora_model("gemma3")
    docs = random_docs(30, seed=5)
    cfg = ExtractConfig(**CFG, fisher=fisher)
    n_batches = len(plan_batches([len(d.input_ids) for d in docs], cfg.batch_tokens))
    full = extract_gradients(model, docs, tmp_path / "full", cfg, progress=False)
    stop = n_batches + 2 if fisher else 3  # fisher: interrupt inside the second (factor) pass
    with pytest.raises(Interrupt):
        extract_gradients(model, docs, tmp_path / "cut", cfg, progress=False, on_batch=_interrupt_after(stop))
    assert (tmp_path / "cut" / (paths.GRADS + ".part")).exists()
    with pytest.raises(FileNotFoundError, match=r"\.part"):  # the reader refuses an incomplete run
        open_gradients(tmp_path / "cut")
    with pytest.raises(ValueError, match="incomplete"):
        open_gradients(tmp_path / "cut" / (paths.GRADS + ".part"))
    resumed = extract_gradients(model, docs, tmp_path / "cut", cfg, progress=False)
    assert resumed.resumed_batches == stop
    a, b = open_gradients(tmp_path / "full"), open_gradients(tmp_path / "cut")
    np.testing.assert_array_equal(a.rows(slice(None)), b.rows(slice(None)))
    fa, fb = a.factors(), b.factors()
    assert fa.n_tokens == fb.n_tokens == full.n_tokens
    for name in fa.A:
        assert torch.equal(fa.A[name], fb.A[name]) and torch.equal(fa.S[name], fb.S[name])
    assert not list((tmp_path / "cut").glob("checkpoint*"))
    # and a third run finds everything done
    assert extract_gradients(model, docs, tmp_path / "cut", cfg, progress=False).skipped


def test_fisher_pass_is_seeded_and_differs_from_empirical(tmp_path):
    model = tiny_lora_model("gemma3")
    docs = random_docs(12, seed=6)
    runs = {}
    for name, kw in {"emp": {}, "f0": {"fisher": True}, "f0b": {"fisher": True, "batch_tokens": 4096},
                     "f1": {"fisher": True, "fisher_seed": 1}}.items():
        extract_gradients(model, docs, tmp_path / name, ExtractConfig(**{**CFG, **kw}), progress=False)
        runs[name] = open_gradients(tmp_path / name)
    np.testing.assert_array_equal(runs["emp"].rows(slice(None)), runs["f0"].rows(slice(None)))
    f = {k: r.factors() for k, r in runs.items()}
    assert f["f0"].fisher == "true" and f["emp"].fisher == "empirical"
    n = next(iter(f["emp"].S))
    assert not torch.allclose(f["emp"].S[n], f["f0"].S[n], rtol=1e-3)
    assert not torch.allclose(f["f0"].S[n], f["f1"].S[n], rtol=1e-3)
    # per-document seeds: the sampled labels do not depend on how documents are batched
    torch.testing.assert_close(f["f0"].S[n], f["f0b"].S[n], rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(f["emp"].A[n], f["f0"].A[n])  # A does not depend on the labels


def test_document_without_response_is_refused(tmp_path):
    model = tiny_lora_model("gemma3")
    docs = random_docs(3, seed=7)
    bad = EncodedDoc("no-answer", [5, 6, 7, 8], [-100, -100, -100, -100])
    with pytest.raises(ValueError, match="no-answer"):
        extract_gradients(model, [*docs, bad], tmp_path, ExtractConfig(**CFG), progress=False)
    cut = EncodedDoc("cut-off", [5, 6, 7, 8, 9], [-100, -100, -100, 8, 9])
    with pytest.raises(ValueError, match="cut-off.*max_length"):
        extract_gradients(model, [cut], tmp_path, ExtractConfig(**{**CFG, "max_length": 3}), progress=False)
    with pytest.raises(ValueError, match="no-answer"):
        reference_gradients(model, [bad])


def test_reader_checks_layout_and_documents(tmp_path):
    model = tiny_lora_model("gemma3")
    docs = random_docs(5, seed=8)
    extract_gradients(model, docs, tmp_path, ExtractConfig(**CFG), progress=False)
    r = open_gradients(tmp_path)
    r.check(Layout.from_model(model), [d.doc_id for d in docs])
    with pytest.raises(ValueError, match="layout mismatch"):
        r.check(Layout.from_model(tiny_lora_model("gemma3", layers=3)))
    with pytest.raises(ValueError, match="document mismatch"):
        r.check(doc_ids=[d.doc_id for d in docs][::-1])
    meta = json.loads((tmp_path / paths.GRADS_META).read_text())
    meta["doc_ids"] = meta["doc_ids"][:-1]
    (tmp_path / paths.GRADS_META).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not belong together"):
        open_gradients(tmp_path)


def test_changed_inputs_start_over(tmp_path):
    model = tiny_lora_model("gemma3")
    docs = random_docs(6, seed=9)
    extract_gradients(model, docs, tmp_path, ExtractConfig(**CFG), progress=False)
    other = random_docs(6, seed=10)
    res = extract_gradients(model, other, tmp_path, ExtractConfig(**CFG), progress=False)
    assert not res.skipped
    np.testing.assert_allclose(open_gradients(tmp_path).rows(slice(None)), reference_gradients(model, other), rtol=1e-4, atol=1e-6)


def test_plan_batches_respects_budget():
    lengths = [5, 50, 7, 7, 30, 1, 200, 12]
    batches = plan_batches(lengths, 60)
    assert sorted(n for b in batches for n in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[n] for n in b) <= 60
    flat = [lengths[n] for b in batches for n in b]
    assert flat == sorted(flat)


def test_gemma3_4b_layout_on_meta_device():
    layout = gemma3_4b_layout()
    assert len(layout) == 136 and layout.n_params == 2_228_224
    shapes = {m.name.split("layers.0.")[-1]: m.shape for m in layout if ".layers.0." in m.name}
    assert shapes == {
        "self_attn.q_proj.lora_A.default": (8, 2560), "self_attn.q_proj.lora_B.default": (2048, 8),
        "self_attn.v_proj.lora_A.default": (8, 2560), "self_attn.v_proj.lora_B.default": (1024, 8),
    }


def test_config_validation():
    assert build_section("extract", {"dtype": "bfloat16"}).dtype == "bfloat16"
    with pytest.raises(ConfigError, match="dtype"):
        build_section("extract", {"dtype": "int8"})
    with pytest.raises(ConfigError, match="valid keys"):
        build_section("extract", {"batch": 3})
    with pytest.raises(ValueError, match="bfloat16 needs a GPU"):
        extract_gradients(tiny_lora_model(), random_docs(2), "/nonexistent-never-written",
                          ExtractConfig(compute_dtype="bfloat16", device="cpu"), progress=False)


def test_notebook_01_extract_runs_on_smoke(smoke_step):
    store = smoke_step("01_extract")
    m = store.metrics()
    reader = open_gradients(store.dir)
    assert reader.shape == (m["n_docs"], m["n_params"]) and len(reader.layout) == m["n_modules"]
    assert m["docs_per_second"] > 0 and m["dtype"] == "float32"
    # Every smoke document fits in max_length: none excluded, one row per fine-tuning document.
    n_train = sum(1 for _ in open(smoke_step("00_finetune").path(paths.TRAIN_DOCS), encoding="utf-8"))
    assert m["n_excluded"] == 0 and m["n_docs"] == n_train == len(reader.doc_ids)
    norms = np.linalg.norm(reader.rows(slice(None)), axis=1)
    assert np.all(np.isfinite(norms)) and np.all(norms > 0)
    assert set(reader.factors().A) == {mod.name for mod in reader.layout}


def test_command_line_extraction_equals_the_notebooks(smoke_step, tmp_artifacts):
    """``python -m gatoms.method.gradients --profile smoke`` (what torchrun runs on each rank) writes the rows
    the notebook wrote, into a step folder that the notebook then reuses."""
    import shutil

    from gatoms.method.gradients.__main__ import main

    smoke = smoke_step("01_extract").dir.parent
    shutil.copytree(smoke / "00_finetune", tmp_artifacts / "artifacts" / "smoke" / "00_finetune")
    assert main(["--profile", "smoke"]) == 0
    ours, notebook = open_gradients(tmp_artifacts / "artifacts" / "smoke" / "01_extract"), open_gradients(smoke / "01_extract")
    assert ours.doc_ids == notebook.doc_ids
    np.testing.assert_array_equal(ours.rows(slice(None)), notebook.rows(slice(None)))
