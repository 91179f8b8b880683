"""Where a profile's documents and model come from, and reading step 00's artifacts back.

- :func:`finetune_documents` — the fine-tuning documents: the synthetic world's, or a user's JSONL file.
- :func:`capability_grader` — how the held-out documents' answers are graded (the world's grader, or none).
- :func:`load_finetuned`, :func:`load_documents`, :func:`load_eval_prompts` — the fine-tuned model and the
  documents that step ``00_finetune`` recorded, for the later steps.
"""

from __future__ import annotations

from pathlib import Path

from gatoms.build import paths
from gatoms.data.documents import Document, EvalPrompt, read_eval_prompts, read_jsonl, write_jsonl
from gatoms.lm.finetune import FinetuneConfig


def finetune_documents(cfg: FinetuneConfig, world_docs: list[Document] | None = None) -> list[Document]:
    """The fine-tuning documents: the world's (``world_docs``) or the JSONL file's, capped at ``n_docs``."""
    if cfg.uses_world:
        if world_docs is None:
            raise ValueError("finetune.data is 'world' but no world documents were given")
        docs = world_docs
    else:
        docs = read_jsonl(cfg.data_path())
    return docs[: cfg.n_docs] if cfg.n_docs else docs


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
    return str(store.path(paths.BASE_MODEL)) if name == "embedded" else name


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
