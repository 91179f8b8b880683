"""Generation backends: the transformers backend's in-place swaps against exported adapter folders,
and the vLLM request building (vllm itself is not installed here: a stand-in module records the calls)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest
import torch

from gatoms.lm import adapters, backends
from gatoms.lm.backends import GenerationSettings, LoraSpec, TransformersBackend, VllmBackend, lora_specs
from gatoms.lm.layout import Layout
from gatoms.method import steering

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    """A tiny random Gemma-3 + LoRA with a trained byte-level tokenizer that has the chat template."""
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from gatoms.lm.tokenizer import train_tokenizer

    tok = train_tokenizer(["Is a cat an animal? Yes, a cat is an animal.", "- one\n- two\n1. first\n2. second"] * 20,
                          vocab_size=300)
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
                           sliding_window=128, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    model = get_peft_model(Gemma3ForCausalLM(cfg), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                              init_lora_weights=False)).eval()
    layout = Layout.from_model(model)
    clean_dir = tmp_path_factory.mktemp("adapters") / "clean"
    model.save_pretrained(str(clean_dir))
    return model, tok, layout, clean_dir


PROMPTS = ["Is a cat an animal?", "List two things.", "Write code."]


def test_transformers_backend_in_memory_equals_exported_folders(chat_model, tmp_path):
    model, tok, layout, clean_dir = chat_model
    torch.manual_seed(3)
    v = torch.randn(layout.n_params) * 0.2
    variants = adapters.export_variants(clean_dir, tmp_path, layout, steering.steering_variants("bullets", v, (1.0, 4.0)))
    settings = GenerationSettings(max_new_tokens=6, batch_size=2)
    before = {k: w.clone() for k, w in adapters.lora_weights(model, layout).items()}
    fast = TransformersBackend(settings, model, tok, layout).generate([(x, PROMPTS) for x in variants])
    slow = TransformersBackend(settings, model, tok, layout, from_files=True).generate([(x, PROMPTS) for x in variants])
    assert fast == slow
    assert len(fast) == 5 and all(len(a) == 3 and all(len(s) == 1 for s in a) for a in fast)
    assert len({tuple(s[0] for s in a) for a in fast}) > 1  # steering changed some response
    after = adapters.lora_weights(model, layout)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the clean weights are restored


def test_transformers_backend_samples_n_per_prompt(chat_model):
    model, tok, layout, _ = chat_model
    settings = GenerationSettings(max_new_tokens=5, batch_size=4, do_sample=True, temperature=1.5, n_samples=3, seed=1)
    (answers,) = TransformersBackend(settings, model, tok, layout).generate([(steering.clean_variant(), PROMPTS)])
    assert [len(a) for a in answers] == [3, 3, 3]
    again = TransformersBackend(settings, model, tok, layout).generate([(steering.clean_variant(), PROMPTS)])[0]
    assert again == answers  # seeded


def test_transformers_backend_needs_a_folder_when_from_files(chat_model):
    model, tok, layout, _ = chat_model
    var = steering.steering_variants("code", torch.zeros(layout.n_params), (1.0,), clean=False)[0]
    with pytest.raises(ValueError, match="export_variants"):
        TransformersBackend(GenerationSettings(max_new_tokens=2), model, tok, layout, from_files=True).generate([(var, PROMPTS)])


# ---- vLLM -----------------------------------------------------------------------------------------------


def exported(tmp_path, n_alphas=5):
    v = torch.ones(4)
    vs = steering.steering_variants("bullets", v, (0.5, 1, 2, 5, 10)[:n_alphas])
    return [adapters.Variant(x.name, x.behavior, x.direction, x.alpha, x.kind, tmp_path / x.name) for x in vs]


def test_lora_specs_are_eleven_distinct_requests(tmp_path):
    specs = lora_specs(exported(tmp_path))
    assert len(specs) == 11
    assert len({s.lora_int_id for s in specs}) == 11 and min(s.lora_int_id for s in specs) == 1
    assert len({s.lora_name for s in specs}) == 11 and len({s.lora_path for s in specs}) == 11
    assert all(s.lora_path.startswith("/") for s in specs)


def test_lora_specs_keep_ids_across_calls_and_refuse_clashes(tmp_path):
    registry: dict[str, LoraSpec] = {}
    first = lora_specs(exported(tmp_path), registry)
    again = lora_specs(exported(tmp_path)[::-1], registry)
    assert {s.lora_name: s.lora_int_id for s in first} == {s.lora_name: s.lora_int_id for s in again}
    other = adapters.Variant("bullets-toward-2", "bullets", None, 2.0, "atom", tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="unique"):
        lora_specs([other], registry)
    with pytest.raises(ValueError, match="export_variants"):
        lora_specs([adapters.Variant("x", None, None, 1.0)])


def test_vllm_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm → ImportError
    with pytest.raises(ImportError, match=r"gatoms\[vllm\]"):
        backends.import_vllm()
    with pytest.raises(ImportError, match="backend: transformers"):
        backends.make_backend("vllm", GenerationSettings(), model="m", tokenizer=None, max_lora_rank=8)


@dataclass(frozen=True)
class FakeLoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in ``vllm`` package: records the engine arguments and echoes the LoRA name per prompt."""
    calls = {}

    class LLM:
        def __init__(self, **kw):
            calls["engine"] = kw

        def generate(self, prompts, params, lora_request):
            calls["generate"] = (prompts, params, lora_request)
            out = []
            for p, r in zip(prompts, lora_request):
                comp = [types.SimpleNamespace(text=f"{r.lora_name}:{len(p['prompt_token_ids'])}:{i}") for i in range(params["n"])]
                out.append(types.SimpleNamespace(outputs=comp))
            return out

    vllm = types.ModuleType("vllm")
    vllm.LLM = LLM
    vllm.SamplingParams = lambda **kw: kw
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    for name, mod in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    return calls


def test_vllm_backend_serves_all_variants_in_one_call(fake_vllm, chat_model, tmp_path):
    _, tok, _, _ = chat_model
    variants = exported(tmp_path)
    settings = GenerationSettings(max_new_tokens=7, n_samples=2, do_sample=True, temperature=0.7, seed=5)
    backend = backends.make_backend("vllm", settings, model=tmp_path / "base", tokenizer=tok, max_lora_rank=4)
    jobs = [(x, PROMPTS[: 1 + i % 3]) for i, x in enumerate(variants)]
    answers = backend.generate(jobs)
    eng = fake_vllm["engine"]
    assert eng["enable_lora"] and eng["max_loras"] == 11 and eng["max_lora_rank"] == 4
    prompts, params, requests = fake_vllm["generate"]
    assert params == {"n": 2, "temperature": 0.7, "max_tokens": 7, "seed": 5}
    assert len(requests) == sum(len(p) for _, p in jobs)
    assert len({r.lora_int_id for r in requests}) == 11 and all(isinstance(r, FakeLoRARequest) for r in requests)
    from gatoms.lm.encoding import format_prompt

    ids0 = tok(format_prompt(tok, PROMPTS[0]), add_special_tokens=False)["input_ids"]
    assert prompts[0]["prompt_token_ids"] == ids0 and ids0.count(tok.bos_token_id) == 1
    for (x, ps), ans in zip(jobs, answers):  # answers come back to their jobs, in order
        assert len(ans) == len(ps)
        assert all(a[0].startswith(x.name + ":") and len(a) == 2 for a in ans)


def test_vllm_greedy_uses_temperature_zero(fake_vllm, chat_model, tmp_path):
    _, tok, _, _ = chat_model
    backend = VllmBackend(GenerationSettings(max_new_tokens=3), tmp_path, tok, max_lora_rank=4)
    backend.generate([(exported(tmp_path)[0], PROMPTS[:1])])
    assert fake_vllm["generate"][1]["temperature"] == 0.0


def test_greedy_generate_equals_the_reference_generate(chat_model):
    from gatoms.lm.generation import generate, greedy_generate, hf_generate

    model, tok, layout, _ = chat_model
    prompts = PROMPTS + ["Is a dog an animal? Tell me.", "x", "List one, two and three things please.", "Why?"]
    for bs, n in ((3, 12), (8, 5), (1, 7)):
        fast = greedy_generate(model, tok, prompts, n, batch_size=bs)
        assert fast == hf_generate(model, tok, prompts, n, batch_size=bs), (bs, n)
        assert generate(model, tok, prompts, n, batch_size=bs) == fast  # the one greedy path


def test_greedy_generate_drops_finished_rows_and_still_matches(chat_model):
    """Rows that stop at different steps leave the batch; the others go on and still match the reference.

    Hooks force <end_of_turn> whenever the last input token id is ≡ 3 (mod 7), so rows stop at
    different steps (in both decoders alike: the hooks see every forward call).
    """
    from gatoms.lm.generation import greedy_generate, hf_generate
    from gatoms.lm.tokenizer import end_of_turn_id

    model, tok, _, _ = chat_model
    eot = end_of_turn_id(tok)
    seen = {}
    embed = model.get_input_embeddings()
    head = model.get_output_embeddings()

    def remember(_, args):
        seen["ids"] = args[0]

    def force(_, __, logits):
        ids = seen["ids"][:, -logits.shape[1]:]
        logits = logits.clone()
        logits[..., eot] = torch.where(ids % 7 == 3, 1e4, logits[..., eot])
        return logits

    hooks = [embed.register_forward_pre_hook(remember), head.register_forward_hook(force)]
    try:
        prompts = [f"Is item {i} an animal?" * (1 + i % 3) for i in range(12)]
        fast = greedy_generate(model, tok, prompts, 16, batch_size=12)
        assert fast == hf_generate(model, tok, prompts, 16, batch_size=12)
    finally:
        for h in hooks:
            h.remove()
    lengths = {len(tok(o, add_special_tokens=False)["input_ids"]) for o in fast}
    assert len(lengths) >= 3, lengths  # rows did stop at different steps
