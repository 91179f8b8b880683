"""Steering: adapter export round trips, the random control, atom choice, Wilson intervals, rates, config, and
notebook 06 on the smoke profile (the judgement itself — effects, budget, nulls, splits, intact — is in
``test_steering_judgement.py``).

Integration tests build a tiny random Gemma-3 with a LoRA adapter in code (no download).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lora_fixtures import random_eigenbasis

from gatoms.data import prompts
from gatoms.data.behaviors import BEHAVIORS
from gatoms.lm import adapters
from gatoms.lm.adapters import apply_weights, export_adapter, lora_weights, read_adapter, steered_weights
from gatoms.lm.layout import Layout
from gatoms.method import coherence, steering
from gatoms.method.coherence import AtomRow
from gatoms.method.stats import Rate, wilson
from gatoms.method.steering import SteeringConfig, choose_atoms, labels_from_detector, labels_from_fmt, random_direction

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)


def tiny_lora_model(seed: int = 0):
    """A 2-layer random Gemma-3 (vocab 64) with a random (non-zero B) LoRA on q_proj and v_proj."""
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                           max_position_embeddings=64, sliding_window=16)
    base = Gemma3ForCausalLM(cfg).eval()
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    return model.eval(), cfg


@pytest.fixture
def lora(tmp_path):
    model, cfg = tiny_lora_model()
    layout = Layout.from_model(model)
    clean_dir = tmp_path / "clean"
    model.save_pretrained(str(clean_dir))
    return model, cfg, layout, clean_dir


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


# ---- export and the in-memory fast path ------------------------------------------------------------


def test_alpha_zero_export_equals_clean(lora, tmp_path):
    model, _, layout, clean_dir = lora
    v = torch.randn(layout.n_params)
    out = export_adapter(clean_dir, tmp_path / "a0", layout, v, 0.0)
    clean, clean_all = read_adapter(clean_dir, layout)
    steered, steered_all = read_adapter(out, layout)
    assert set(clean_all) == set(steered_all)
    for k in clean_all:
        assert torch.equal(clean_all[k], steered_all[k]), k
    assert (out / "adapter_config.json").read_bytes() == (clean_dir / "adapter_config.json").read_bytes()
    assert not (tmp_path / "a0.part").exists()


def test_perturbation_lands_on_the_right_module(lora, tmp_path):
    model, _, layout, clean_dir = lora
    target = layout.modules[5]  # layer 1, q_proj, lora_B
    v = torch.zeros(layout.n_params)
    block = torch.randn(target.shape)
    v[layout.slice(target)] = block.flatten()
    alpha = 2.5
    clean, _ = read_adapter(clean_dir, layout)
    steered, _ = read_adapter(export_adapter(clean_dir, tmp_path / "s", layout, v, alpha), layout)
    for m in layout:
        diff = steered[m.name] - clean[m.name]
        if m.name == target.name:
            torch.testing.assert_close(diff, -alpha * block)  # θ' = θ − α·v
        else:
            assert torch.count_nonzero(diff) == 0, m.name


def test_steered_weights_match_flat_arithmetic(lora):
    model, _, layout, _ = lora
    clean = lora_weights(model, layout)
    v = torch.randn(layout.n_params)
    out = steered_weights(clean, layout, v, -1.5)  # away
    torch.testing.assert_close(layout.flatten(out), layout.flatten(clean) + 1.5 * v)


def test_exported_adapter_loads_in_peft_and_matches_in_memory_swap(lora, tmp_path):
    from peft import PeftModel
    from transformers import Gemma3ForCausalLM

    model, cfg, layout, clean_dir = lora
    torch.manual_seed(1)
    v = torch.randn(layout.n_params) * 0.05
    ids = torch.randint(0, cfg.vocab_size, (2, 7))
    before = logits(model, ids)

    # Slow, obviously-correct path: a fresh base model + PeftModel.from_pretrained(exported folder).
    base_sd = {k.removeprefix("base_model.model."): t for k, t in model.state_dict().items() if "lora_" not in k}
    base_sd = {k.replace(".base_layer.", "."): t for k, t in base_sd.items()}
    fresh = Gemma3ForCausalLM(cfg).eval()
    fresh.load_state_dict(base_sd)
    out = export_adapter(clean_dir, tmp_path / "toward-2", layout, v, 2.0)
    loaded = PeftModel.from_pretrained(fresh, str(out)).eval()
    reference = logits(loaded, ids)

    # Fast path: copy θ − 2·v into the already-loaded model.
    clean = lora_weights(model, layout)
    apply_weights(model, layout, steered_weights(clean, layout, v, 2.0))
    fast = logits(model, ids)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(fast, before, atol=1e-4)  # the perturbation does change the model
    apply_weights(model, layout, clean)
    torch.testing.assert_close(logits(model, ids), before, rtol=0, atol=0)


def test_read_adapter_refuses_another_layout(lora, tmp_path):
    _, _, layout, clean_dir = lora
    other = Layout.from_shapes([(m.name, (m.shape[0] + 1, m.shape[1])) for m in layout])
    with pytest.raises(ValueError, match="shape"):
        read_adapter(clean_dir, other)
    with pytest.raises(FileNotFoundError, match="peft adapter folder"):
        read_adapter(tmp_path, layout)


def test_adapter_key_strips_the_adapter_name():
    name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default"
    assert adapters.adapter_key(name) == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    with pytest.raises(ValueError, match="LoRA sub-layer"):
        adapters.adapter_key("model.layers.0.self_attn.q_proj")


def test_steering_variants_are_the_eleven_of_the_paper():
    v = torch.ones(4)
    vs = steering.steering_variants("bullets", v, (0.5, 1, 2, 5, 10))
    assert len(vs) == 11 and len({x.name for x in vs}) == 11
    assert vs[0].name == "clean" and vs[0].direction is None
    assert sorted(x.alpha for x in vs) == [-10, -5, -2, -1, -0.5, 0, 0.5, 1, 2, 5, 10]
    assert {x.name for x in vs if x.alpha == 2} == {"bullets-toward-2"}
    assert {x.name for x in vs if x.alpha == -0.5} == {"bullets-away-0.5"}


# ---- random direction and norm matching ------------------------------------------------------------


def test_random_direction_has_the_atoms_norm_in_every_module(lora):
    _, _, layout, _ = lora
    v = torch.randn(layout.n_params) * torch.linspace(0.1, 3.0, layout.n_params)
    v[layout.slice(layout.modules[0])] = 0  # a module the atom does not touch stays untouched
    r = random_direction(v, layout, seed=3)
    nv, nr = steering.module_norms(v, layout), steering.module_norms(r, layout)
    for name in nv:
        assert nr[name] == pytest.approx(nv[name], rel=1e-5, abs=1e-7), name
    assert float(r[layout.slice(layout.modules[0])].abs().sum()) == 0
    assert torch.equal(r, random_direction(v, layout, seed=3))
    assert not torch.equal(r, random_direction(v, layout, seed=4))
    cos = float(torch.nn.functional.cosine_similarity(r, v, dim=0))
    assert abs(cos) < 0.3  # a random direction, not the atom's


def test_match_norm():
    v, ref = torch.randn(50), torch.randn(50) * 7
    assert float(steering.match_norm(v, ref).norm()) == pytest.approx(float(ref.norm()), rel=1e-6)
    with pytest.raises(ValueError):
        steering.match_norm(torch.zeros(3), ref[:3])


# ---- Wilson intervals --------------------------------------------------------------------------------


def wilson_by_inversion(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The score interval by definition: all p whose score test |p̂ − p| ≤ z·sqrt(p(1−p)/n) accepts."""
    grid = np.linspace(0, 1, 200001)
    ok = np.abs(k / n - grid) <= z * np.sqrt(grid * (1 - grid) / n)
    return float(grid[ok].min()), float(grid[ok].max())


@pytest.mark.parametrize("k,n", [(0, 10), (5, 10), (10, 10), (33, 100), (94, 100), (1, 60), (81, 263)])
def test_wilson_matches_the_score_test_inversion(k, n):
    lo, hi = wilson(k, n)
    rlo, rhi = wilson_by_inversion(k, n)
    assert lo == pytest.approx(rlo, abs=2e-5) and hi == pytest.approx(rhi, abs=2e-5)


def test_wilson_known_values():
    assert wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


# ---- atom choice --------------------------------------------------------------------------------------


def row(atom: int, coherence: float, active: int, top: tuple[int, ...]) -> AtomRow:
    return AtomRow(rank=0, atom=atom, coherence=coherence, active_docs=active, top_docs=top,
                   top_doc_ids=tuple(f"d{i}" for i in top))


def synthetic_table():
    # documents 0–19 bullets, 20–39 code, 40–59 plain; atom 7 = bullets (18/20), atom 3 = bullets 2/2,
    # atom 9 = code (20/20, coherence 0.2), atom 4 = code (20/20, coherence 0.4), atom 1 = mixed.
    fmts = ["bullets"] * 20 + ["code"] * 20 + ["plain"] * 20
    table = [
        row(1, 0.9, 30, tuple(range(0, 60, 3))),
        row(3, 0.8, 2, (0, 1)),
        row(4, 0.4, 25, tuple(range(20, 40))),
        row(7, 0.1, 40, tuple(range(2, 20)) + (41, 42)),
        row(9, 0.2, 25, tuple(range(20, 40))),
        row(11, 0.0, 0, ()),
    ]
    responses = (["- a\n- b"] * 20 + ["```py\nx = 1\n```"] * 20 + ["Plain text."] * 20)
    return fmts, table, responses


def test_choose_atoms_by_fmt():
    fmts, table, _ = synthetic_table()
    choice = choose_atoms(table, labels_from_fmt(fmts, ("bullets", "code", "yes_no")), "fmt", min_share=0.5)
    assert choice["bullets"].atom == 7 and choice["bullets"].share == pytest.approx(0.9)
    assert choice["bullets"].runner_up == 3  # 2/2 (Wilson lower 0.34) ranks above 7/20 (0.18)
    assert choice["code"].atom == 4  # ties at 20/20 → higher coherence
    assert choice["code"].accepted and "20/20" in choice["code"].reason()
    assert not choice["yes_no"].accepted and "WEAK" in choice["yes_no"].reason()


def test_choose_atoms_by_detector_agrees_on_unlabelled_data():
    fmts, table, responses = synthetic_table()

    def detect(b, text):
        return {"bullets": text.startswith("- "), "code": "```" in text}[b]

    by_det = choose_atoms(table, labels_from_detector(responses, detect, ("bullets", "code")), "detector")
    by_fmt = choose_atoms(table, labels_from_fmt(fmts, ("bullets", "code")), "fmt")
    assert {b: c.atom for b, c in by_det.items()} == {b: c.atom for b, c in by_fmt.items()}
    assert by_det["bullets"].method == "detector"


def test_choose_atoms_errors():
    fmts, table, _ = synthetic_table()
    with pytest.raises(ValueError, match="no fmt label"):
        labels_from_fmt(["bullets", None])
    with pytest.raises(ValueError, match="documents"):
        choose_atoms(table, {"bullets": np.zeros(5, bool)}, "fmt")


def test_atom_table_round_trips_by_document_id(tmp_path):
    """The atom table stores document ids; reading it with the row index's ids gives the rows back, and a
    table from another run (an id that is no row) is refused."""
    table = [AtomRow(1, 0, 0.5, 3, "lists", 1.0, "bullets", 1.0, "a b", "List three.", "lists",
                     ("d4", "d2", "d9"), (4, 2, 9)),
             AtomRow(2, 1, 0.0, 0, description="(no active documents)")]
    coherence.write_atom_table(table, tmp_path / "atom_table.csv")
    ids = [f"d{i}" for i in range(10)]
    assert coherence.read_atom_table(tmp_path / "atom_table.csv", ids) == table
    back = coherence.read_atom_table(tmp_path / "atom_table.csv")  # without the index: ids only
    assert back[0].top_doc_ids == ("d4", "d2", "d9") and back[0].top_docs == ()
    with pytest.raises(ValueError, match="different runs"):
        coherence.read_atom_table(tmp_path / "atom_table.csv", ids[:5])
    (tmp_path / "bad.csv").write_text("atom,coherence\n0,1\n")
    with pytest.raises(ValueError, match="make coherence"):
        coherence.read_atom_table(tmp_path / "bad.csv")


# ---- rates -------------------------------------------------------------------------------------------


def records_for(behavior, kind, alpha, inviting_hits, control_hits, n_inv=6, n_ctl=4, split="test"):
    out = []
    for i in range(n_inv):
        out.append({"behavior": behavior, "kind": kind, "alpha": alpha, "prompt_kind": "inviting", "split": split,
                    "prompt_id": f"{behavior}-i{i}", "detected": i < inviting_hits, "degenerate": False})
    for i in range(n_ctl):
        out.append({"behavior": behavior, "kind": kind, "alpha": alpha, "prompt_kind": "control", "split": split,
                    "prompt_id": f"{behavior}-c{i}", "detected": i < control_hits, "degenerate": False})
    return out


def test_rates_curve_and_best():
    recs = records_for("bullets", "clean", 0.0, 2, 1)
    for a, hi, hc in [(1, 4, 1), (2, 6, 2), (-1, 1, 0), (-2, 0, 0)]:
        recs += records_for("bullets", "atom", float(a), hi, hc)
    recs += records_for("bullets", "random:0", 2.0, 3, 1) + records_for("bullets", "atom", 2.0, 0, 0, split="dev")
    recs.append({"behavior": "bullets", "kind": "atom", "alpha": 2.0, "prompt_kind": "capability", "split": "test",
                 "prompt_id": "h0", "detected": None, "degenerate": False})
    table = steering.rates(recs)
    assert table[("bullets", "atom", 0.0, "inviting")] == Rate(2, 6)
    assert table[("bullets", "random:0", 0.0, "control")] == Rate(1, 4)  # clean counts for every kind
    assert table[("bullets", "atom", 2.0, "inviting")] == Rate(6, 6)  # dev and capability records left out
    assert steering.rates(recs, split="dev")[("bullets", "atom", 2.0, "inviting")] == Rate(0, 6)
    c = steering.curve(table, "bullets", "atom", "inviting")
    assert list(c) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert steering.best(c, +1) == (2.0, Rate(6, 6))
    assert steering.best(c, -1) == (-2.0, Rate(0, 6))


def test_composition_rates():
    recs = records_for("bullets", "composition", 1.0, 5, 1) + records_for("refusal", "composition", 1.0, 0, 0)
    r = steering.composition_rates(recs, "bullets")
    assert r["inviting"] == Rate(5, 6) and r["control"] == Rate(1, 4)
    assert steering.rates(recs) == {}


# ---- config --------------------------------------------------------------------------------------------


def test_config_validation():
    cfg = SteeringConfig(alphas=[0.5, 1, 2], null_alphas=[2])
    assert cfg.alphas == (0.5, 1.0, 2.0) and cfg.null_alphas == (2.0,) and cfg.kl_budget == "finetune"
    assert steering.parse_composition(cfg.composition) == [("bullets", 1), ("refusal", -1)]
    for bad, match in [
        (dict(alphas=(2, 1)), "ascending"),
        (dict(alphas=(0, 1)), "positive"),
        (dict(null_alphas=(3,)), "subset"),
        (dict(kl_budget=-1), "kl_budget"),
        (dict(kl_budget="half"), "kl_budget"),
        (dict(kl_intact=0.5), "kl_intact"),
        (dict(null_kinds=("random", "gaussian")), "null_kinds"),
        (dict(dev_fraction=1.0), "dev_fraction"),
        (dict(choose_by="auto"), "choose_by"),
        (dict(grader="exact"), "grader"),
        (dict(backend="onnx"), "backend"),
        (dict(n_samples=3), "do_sample"),
        (dict(composition=("bullets:up", "code:toward")), "behavior:toward"),
        (dict(composition=("bullets:toward",)), "two atoms"),
        (dict(prompts="web"), "prompts"),
    ]:
        with pytest.raises(ValueError, match=match):
            SteeringConfig(**bad)


@pytest.mark.parametrize("profile", ["smoke", "tiny", "paper"])
def test_profiles_build(profile):
    from gatoms.build import config

    cfg = config.load_section(profile, "steering")
    assert isinstance(cfg, SteeringConfig)


# ---- shipped prompts -------------------------------------------------------------------------------


def test_package_prompts_are_60_inviting_plus_40_controls():
    shipped = prompts.read_package_prompts()
    assert len(shipped) == 500
    texts = [p.prompt for p in shipped]
    assert len(set(texts)) == 500, "duplicate prompts"
    assert len({p.prompt_id for p in shipped}) == 500
    for b in BEHAVIORS:
        kinds = [p.kind for p in shipped if p.behavior == b]
        assert kinds.count("inviting") == 60 and kinds.count("control") == 40


# ---- the unprojection round trip into the adapter's tensors ----------------------------------------------


def test_unprojected_atom_round_trips_through_an_exported_adapter(lora, tmp_path):
    _, _, layout, clean_dir = lora
    proj = random_eigenbasis(layout, k=3)
    z = torch.randn(len(layout) * 3, dtype=torch.float64)
    z /= z.norm()  # an atom: a unit vector in the whitened space
    v = proj.unproject(z)  # (D,)
    alpha = 5.0
    clean, _ = read_adapter(clean_dir, layout)
    steered, _ = read_adapter(export_adapter(clean_dir, tmp_path / "t", layout, v, alpha), layout)
    delta = (layout.flatten(clean) - layout.flatten(steered)) / alpha  # = v, read back from the peft file
    torch.testing.assert_close(delta, v, rtol=1e-4, atol=1e-6)
    z_back = proj.project(delta[None].double())[0]
    np.testing.assert_allclose(z_back, z.numpy(), rtol=1e-3, atol=1e-5)  # the file holds the atom


def test_preconditioned_unprojection_differs_but_matches_norm(lora):
    _, _, layout, _ = lora
    proj = random_eigenbasis(layout, k=3)
    z = torch.randn(len(layout) * 3, dtype=torch.float64)
    v, vp = proj.unproject(z), proj.unproject(z, preconditioned=True)
    vp = steering.match_norm(vp, v)
    assert float(vp.norm()) == pytest.approx(float(v.norm()), rel=1e-6)
    assert float(torch.nn.functional.cosine_similarity(v, vp, dim=0)) < 0.999


# ---- notebook 06 on the smoke profile ---------------------------------------------------------------------


def test_notebook_06_runs_on_smoke(smoke_step):
    from gatoms.build import config, paths
    from gatoms.method.steering import SteeringMetrics

    store = smoke_step("06_steering")
    cfg = config.load_section("smoke", "steering")
    m = SteeringMetrics.from_json(store.metrics())
    assert set(m.behaviors) == set(BEHAVIORS) and m.seconds > 0
    assert sorted(m.steered + m.not_steered) == sorted(BEHAVIORS)
    assert m.kl_budget > 0 and m.kl_budget_rule == "finetune" and m.kl_max == pytest.approx(cfg.kl_intact * m.kl_budget)
    for b, x in m.behaviors.items():
        assert 0 < x.alpha and x.kl_dev <= m.kl_budget + 1e-9, b  # α* within the budget on dev
        assert all(0.0 <= getattr(x, k) <= 1.0 for k in ("base", "toward", "away")), b
        assert x.signed_ci[0] <= x.signed <= x.signed_ci[1] and -1 <= x.symmetric <= 1, b
        assert set(x.nulls) == set(cfg.null_kinds) and all(n.n <= cfg.n_null for n in x.nulls.values()), b
        assert x.steered == (x.intact and x.significant and x.beats_nulls is not False), b
        alphas = sorted({p.alpha for p in x.curve})
        assert alphas == sorted({0.0, *cfg.alphas, *(-a for a in cfg.alphas), x.alpha, -x.alpha}), b
        folders = sorted(p.name for p in (store.path(paths.STEERED) / b).iterdir())
        assert len(folders) == 2 * len(set(cfg.alphas) | {x.alpha}), b
    assert (store.path(paths.STEERED) / "clean").is_dir()
    assert set(m.composition) == {b for b, _ in steering.parse_composition(cfg.composition)}
    lines = store.path(paths.GENERATIONS).read_text().splitlines()
    assert len(lines) == m.n_responses and json.loads(lines[0])["variant"] == "clean"
    records = [json.loads(line) for line in lines]
    dev = {r["prompt"] for r in records if r["split"] == "dev"}
    test = {r["prompt"] for r in records if r["split"] == "test" and r["prompt_kind"] != "capability"}
    assert dev and test and not dev & test  # no choice saw a test prompt
    assert {r["split"] for r in records if r["kind"].split(":")[0] in cfg.null_kinds} == {"test"}
    choices = store.read_json(paths.CHOICES)
    assert {c["atom"] for c in choices["chosen"].values()} == {x.atom for x in m.behaviors.values()}
    assert all(c["method"] == "detector" for c in choices["chosen"].values())
