"""EKFAC: eigenbasis vs dense brute force, projection/unprojection, whitening, storage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lora_fixtures import bruteforce_factors, random_docs, tiny_lora_model

from gatoms.build.config import ConfigError, build_section
from gatoms.method.ekfac import (Eigenbasis, Projection, ProjectionSettings, ekfac_eigenvalues, energy_curves,
                                 fit_eigenbasis, normalize_rows)
from gatoms.method.gradients import ExtractConfig, extract_gradients, open_gradients, reference_gradients

TIER = "integration"  # builds or trains a tiny model, or runs a subprocess (tests/conftest.py)


def proj(basis, **settings) -> Projection:
    """The basis under ProjectionSettings(**settings) (defaults for the rest)."""
    return Projection(basis, ProjectionSettings(**settings))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """A tiny model, 40 documents, their gradients and the fitted eigenbasis (with EKFAC Λ)."""
    out = tmp_path_factory.mktemp("ekfac")
    model = tiny_lora_model("gemma3", seed=3)
    docs = random_docs(40, seed=12)
    extract_gradients(model, docs, out, ExtractConfig(batch_tokens=128, device="cpu"), progress=False)
    reader = open_gradients(out)
    basis = ekfac_eigenvalues(reader, fit_eigenbasis(reader.factors(), reader.layout))
    return model, docs, reader, basis


def test_kfac_reconstruction_equals_kron_of_bruteforce_factors(extracted):
    model, docs, reader, basis = extracted
    A, S, _, _ = bruteforce_factors(model, docs)
    for m in list(reader.layout)[:4]:  # lora_A and lora_B of q_proj and v_proj
        qs, qa = basis.q_s[m.name], basis.q_a[m.name]
        K = torch.kron(qs, qa)  # columns: the (j, k) directions, row-major like vec(G)
        dense_kfac = K @ torch.diag(torch.kron(basis.lam_s[m.name], basis.lam_a[m.name])) @ K.T
        want = torch.kron(S[m.name], A[m.name])  # the dense KFAC Fisher from the same tokens
        torch.testing.assert_close(dense_kfac, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
        # the kfac eigenvalue of direction (j, k) is λ_S[j] λ_A[k]
        torch.testing.assert_close(basis.eigenvalues("kfac")[m.name].reshape(-1), torch.kron(basis.lam_s[m.name], basis.lam_a[m.name]))


def test_ekfac_eigenvalues_are_the_dense_fisher_diagonal_in_the_eigenbasis(extracted):
    model, docs, reader, basis = extracted
    g = torch.from_numpy(reference_gradients(model, docs)).double()  # (N, D) by the authors' loop
    for m in reader.layout:
        gm = g[:, m.offset : m.offset + m.size]
        F = gm.T @ gm / len(docs)  # dense per-document empirical Fisher of this module (D_m, D_m)
        K = torch.kron(basis.q_s[m.name], basis.q_a[m.name])
        want = torch.diagonal(K.T @ F @ K)
        got = basis.ekfac[m.name].reshape(-1)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6 * float(want.max()))


def test_whitened_coordinates_have_unit_second_moment(extracted):
    _, _, reader, basis = extracted
    Z = proj(basis, k=10, eigen_mode="ekfac", damping=0.0, damping_mode="absolute").project(reader)
    np.testing.assert_allclose((Z.astype(np.float64) ** 2).mean(0), 1.0, rtol=1e-4)
    Z = proj(basis, k=10, eigen_mode="ekfac", damping=0.1, damping_mode="relative").project(reader)
    lam = np.concatenate([np.sort(basis.ekfac[m.name].numpy().ravel())[::-1][:10] for m in reader.layout])
    eps = np.repeat([0.1 * basis.ekfac[m.name].mean().item() for m in reader.layout], 10)
    np.testing.assert_allclose((Z.astype(np.float64) ** 2).mean(0), lam / (lam + eps), rtol=1e-4)


@pytest.mark.parametrize("mode", ["ekfac", "kfac"])
@pytest.mark.parametrize("whiten", [True, False])
def test_project_unproject_is_identity_on_retained_subspace(extracted, mode, whiten):
    _, _, reader, basis = extracted
    P = proj(basis, k=12, eigen_mode=mode, whiten=whiten)
    g = reader.rows(slice(0, 6)).astype(np.float64)
    z = P.project(g)
    assert z.shape == (6, len(reader.layout) * 12) == (6, P.dim) and z.dtype == np.float32
    v = P.unproject(z, dtype=torch.float64)
    np.testing.assert_allclose(P.project(v.numpy()), z, rtol=1e-5, atol=1e-6 * np.abs(z).max())
    # unproject ∘ project is the orthogonal projection onto the kept directions
    p = P.unproject(P.project(g), dtype=torch.float64).numpy()
    residual = g - p
    assert np.abs((residual * p).sum(1)).max() <= 1e-4 * (p * p).sum(1).max()
    single = P.unproject(z[2], dtype=torch.float64)
    assert single.shape == (reader.layout.n_params,)
    torch.testing.assert_close(single, v[2])


def test_exact_when_k_is_every_direction(tmp_path):
    # 4 heads of 16 = 64 = hidden: every module has 8 × 64 = 512 directions.
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=300, hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=4, num_key_value_heads=4, head_dim=16, attn_implementation="eager")
    model = get_peft_model(Gemma3ForCausalLM(cfg), LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    docs = random_docs(6, seed=13)
    extract_gradients(model, docs, tmp_path, ExtractConfig(device="cpu"), progress=False)
    reader = open_gradients(tmp_path)
    assert {m.size for m in reader.layout} == {512}
    basis = fit_eigenbasis(reader.factors(), reader.layout)
    g = reader.rows(slice(None)).astype(np.float64)
    for whiten in (True, False):
        P = proj(basis, k=512, eigen_mode="kfac", whiten=whiten)
        z, energy = P.project(g, return_energy=True)
        np.testing.assert_allclose(energy, 1.0, rtol=1e-10)
        back = P.unproject(z, dtype=torch.float64).numpy()
        np.testing.assert_allclose(back, g, rtol=1e-5, atol=1e-5 * np.abs(g).max())


def test_preconditioned_unprojection_divides_instead_of_multiplying(extracted):
    _, _, reader, basis = extracted
    P = proj(basis, k=8)
    z = P.project(reader.rows(slice(0, 3)))
    pre = P.unproject(z, preconditioned=True, dtype=torch.float64).numpy()
    raw = P.with_settings(whiten=False).project(pre)  # the rotated coordinates placed by unproject
    eig = np.concatenate([np.sort(basis.ekfac[m.name].numpy().ravel())[::-1][:8] for m in reader.layout])
    eps = np.repeat(list(basis.epsilon("ekfac", 0.1, "relative").values()), 8)
    np.testing.assert_allclose(raw, z / np.sqrt(eig + eps), rtol=1e-4, atol=1e-6 * np.abs(raw).max())


def test_topk_orders_directions_by_eigenvalue(extracted):
    _, _, reader, basis = extracted
    for mode in ("ekfac", "kfac"):
        eig = basis.eigenvalues(mode)
        for name, idx in basis.topk(7, mode).items():
            flat = eig[name].reshape(-1)
            assert torch.equal(flat[idx], torch.sort(flat, descending=True).values[:7])
    with pytest.raises(ValueError, match="lower ekfac.k"):
        basis.topk(10_000, "ekfac")


def test_energy_kept(extracted):
    _, _, reader, basis = extracted
    _, energy = proj(basis, k=20).project(reader, return_energy=True)
    curve = energy_curves(reader, basis, [1, 5, 20, 50], ("ekfac",))["ekfac"]
    np.testing.assert_allclose(curve[:, 2], energy, rtol=1e-10)
    assert np.all(np.diff(curve, axis=1) >= -1e-12) and np.all(curve <= 1 + 1e-9)
    both = energy_curves(reader, basis, [1, 5, 20, 50], ("ekfac", "kfac"), chunk_rows=7)
    np.testing.assert_allclose(both["ekfac"], curve, rtol=1e-10)
    np.testing.assert_allclose(both["kfac"], energy_curves(reader, basis, [1, 5, 20, 50], ("kfac",))["kfac"], rtol=1e-10)
    _, kfac_energy = proj(basis, k=5, eigen_mode="kfac").project(reader, return_energy=True)
    np.testing.assert_allclose(both["kfac"][:, 1], kfac_energy, rtol=1e-10)


def test_save_load_roundtrip_keeps_settings(extracted, tmp_path):
    _, _, reader, basis = extracted
    P = proj(basis, k=9, eigen_mode="kfac", whiten=True, damping=1e-6, damping_mode="absolute")
    P.save(tmp_path / "eigen.safetensors")
    loaded = Projection.load(tmp_path / "eigen.safetensors")
    assert loaded.settings == P.settings and loaded.layout == P.layout
    assert all(torch.equal(loaded.top[n], P.top[n]) for n in P.top)
    assert not loaded.basis.full  # saved with only the eigenvector columns its top-k use, in float32
    Z = P.project(reader)
    assert np.linalg.norm(loaded.project(reader) - Z) <= 1e-6 * np.linalg.norm(Z)
    z = Z[0]
    v = P.unproject(z, dtype=torch.float64)
    assert float((loaded.unproject(z, dtype=torch.float64) - v).norm()) <= 1e-6 * float(v.norm())
    assert Eigenbasis.load(tmp_path / "eigen.safetensors").ekfac is not None  # the basis alone, too
    with pytest.raises(ValueError, match="incomplete"):
        Projection.load(tmp_path / "eigen.safetensors.part")


def test_kfac_basis_needs_no_ekfac_pass(extracted):
    _, _, reader, basis = extracted
    bare = fit_eigenbasis(reader.factors(), reader.layout)
    with pytest.raises(ValueError, match="ekfac_eigenvalues"):
        proj(bare, k=5)
    np.testing.assert_array_equal(proj(bare, k=5, eigen_mode="kfac").project(reader),
                                  proj(basis, k=5, eigen_mode="kfac").project(reader))


def test_normalize_rows_refuses_zero_rows():
    X = normalize_rows(np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float32))
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="doc-b"):
        normalize_rows(np.array([[1.0, 0.0], [0.0, 0.0]]), ["doc-a", "doc-b"])


def test_config_validation():
    assert build_section("ekfac", {"k": 10, "eigen_mode": "kfac"}).settings().k == 10
    for bad in ({"k": 0}, {"eigen_mode": "ekfac2"}, {"damping": -1.0}, {"damping_mode": "rel"}):
        with pytest.raises(ConfigError):
            build_section("ekfac", bad)


def test_notebook_02_ekfac_runs_on_smoke(smoke_step):
    from gatoms.build import paths

    store = smoke_step("02_ekfac")
    m = store.metrics()
    P = Projection.load(store.path(paths.EIGEN))
    assert P.settings.k == m["k"] and P.settings.eigen_mode == m["eigen_mode"]
    assert m["projected_dim"] == P.dim and 0 < m["energy_kept"] <= 1
    Z, X = store.load_npy(paths.Z), store.load_npy(paths.X)
    assert Z.shape == X.shape == (m["n_docs"], m["projected_dim"])
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    reader = open_gradients(store.dir.parent / "01_extract")  # (the smoke tree's env is gone by now)
    Z4 = P.project(reader.rows(np.arange(4)))  # float64 from the saved float32 columns vs the float32 passes
    assert np.linalg.norm(Z4 - Z[:4]) <= 1e-5 * np.linalg.norm(Z[:4])
