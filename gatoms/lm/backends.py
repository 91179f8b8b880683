"""Generation backends for steering, behind one interface: ``backend.generate(jobs)``.

A job is a :class:`gatoms.lm.adapters.Variant` (which adapter) and the prompts to answer with it; the answer
is, per prompt, a list of ``n_samples`` responses (one when greedy, as in the paper).

- :class:`TransformersBackend` (default): one loaded peft model; each variant's LoRA weights are copied
  into it in place (no reload) — from the variant's direction and α, or from its exported adapter folder —
  then :func:`gatoms.lm.generation.generate` (greedy with finished rows dropped, or sampling).
- :class:`VllmBackend` (optional extra ``pip install 'gatoms[vllm]'``, CUDA): one engine with every
  variant served as a LoRA module (one ``LoRARequest`` per exported adapter folder), all jobs in one
  ``generate`` call — how the paper served its 11 variants. vllm is imported only when the engine starts.

Usage::

    backend = make_backend("transformers", settings, model=peft_model, tokenizer=tok, layout=layout)
    answers = backend.generate([(variant, prompts), ...])   # answers[j][i] = [response, ...]
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gatoms.lm.adapters import Variant, apply_weights, lora_weights, read_adapter, steered_weights
from gatoms.lm.encoding import format_prompt
from gatoms.lm.generation import generate
from gatoms.lm.layout import Layout

log = logging.getLogger(__name__)

VLLM_MISSING = ("the vllm backend needs the optional extra: pip install 'gatoms[vllm]' (and a CUDA GPU); "
                "or set steering.backend: transformers")

Job = tuple[Variant, Sequence[str]]
"""(variant, prompts) — answer these prompts with this adapter."""


@dataclass(frozen=True)
class GenerationSettings:
    """How responses are generated (the generation fields of the steering config)."""

    max_new_tokens: int = 300
    batch_size: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    n_samples: int = 1
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: Any) -> GenerationSettings:
        return cls(cfg.max_new_tokens, cfg.batch_size, cfg.do_sample, cfg.temperature, cfg.n_samples, cfg.seed)


class Backend(ABC):
    """Generates responses for (variant, prompts) jobs."""

    name: str = ""

    def __init__(self, settings: GenerationSettings):
        self.settings = settings

    @abstractmethod
    def generate(self, jobs: Sequence[Job]) -> list[list[list[str]]]:
        """answers[j][i] = the ``n_samples`` responses to prompt i of job j."""


# ---- transformers -----------------------------------------------------------------------------------


class TransformersBackend(Backend):
    """One peft model; variants are swapped in place (fast path) or read from their adapter folders.

    ``from_files=True`` makes every variant load its exported folder (the path vLLM would use) instead
    of being computed from its direction — the tests compare the two.
    """

    name = "transformers"

    def __init__(self, settings: GenerationSettings, model: nn.Module, tokenizer: Any, layout: Layout,
                 from_files: bool = False):
        super().__init__(settings)
        self.model, self.tokenizer, self.layout, self.from_files = model, tokenizer, layout, from_files
        self.clean = lora_weights(model, layout)

    def weights(self, variant: Variant) -> dict[str, torch.Tensor]:
        """The LoRA weights of a variant (keyed by layout module name)."""
        if self.from_files or (variant.direction is None and variant.alpha != 0):
            if variant.path is None:
                raise ValueError(f"variant {variant.name} has no exported adapter folder; export_variants first")
            weights, _ = read_adapter(variant.path, self.layout)
            return weights
        return steered_weights(self.clean, self.layout, variant.direction, variant.alpha)

    def generate(self, jobs: Sequence[Job]) -> list[list[list[str]]]:
        s = self.settings
        answers = []
        try:
            for variant, prompts in jobs:
                apply_weights(self.model, self.layout, self.weights(variant))
                samples = [generate(self.model, self.tokenizer, list(prompts), s.max_new_tokens,
                                    batch_size=s.batch_size, do_sample=s.do_sample, temperature=s.temperature,
                                    seed=s.seed + i) for i in range(s.n_samples)]
                answers.append([list(r) for r in zip(*samples)])
                log.info("generated %d × %d responses with %s", len(prompts), s.n_samples, variant.name)
        finally:
            apply_weights(self.model, self.layout, self.clean)
        return answers


# ---- vLLM ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoraSpec:
    """The arguments of one ``vllm.lora.request.LoRARequest``."""

    lora_name: str
    lora_int_id: int
    """Globally unique and > 0: vLLM caches adapters by this id."""
    lora_path: str


def lora_specs(variants: Sequence[Variant], registry: dict[str, LoraSpec] | None = None) -> list[LoraSpec]:
    """One LoRA request per variant (ids 1, 2, … in order of first appearance, kept in ``registry``).

    Every variant must have been exported (``path``); names must be unique per path, and a name seen
    before (in ``registry``) keeps its id — reusing an id for other weights would serve stale ones.
    """
    registry = {} if registry is None else registry
    out = []
    for v in variants:
        if v.path is None:
            raise ValueError(f"variant {v.name} has no adapter folder; the vllm backend serves exported "
                             "adapters only (steering.export_variants)")
        path = str(Path(v.path).resolve())
        spec = registry.get(v.name)
        if spec is None:
            used = {s.lora_path for s in registry.values()}
            if path in used:
                raise ValueError(f"adapter folder {path} is already served under another name")
            spec = LoraSpec(v.name, len(registry) + 1, path)
            registry[v.name] = spec
        elif spec.lora_path != path:
            raise ValueError(f"variant name {v.name} was served from {spec.lora_path}, now {path}; names must be unique")
        out.append(spec)
    return out


def import_vllm() -> Any:
    """The vllm module, or an ImportError that says how to install it."""
    try:
        import vllm
    except ImportError as e:
        raise ImportError(VLLM_MISSING) from e
    return vllm


def lora_requests(specs: Sequence[LoraSpec]) -> list[Any]:
    """``vllm.lora.request.LoRARequest`` objects for the specs (imports vllm)."""
    import_vllm()
    from vllm.lora.request import LoRARequest

    return [LoRARequest(lora_name=s.lora_name, lora_int_id=s.lora_int_id, lora_path=s.lora_path) for s in specs]


def chat_token_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The prompt's token ids exactly as :func:`gatoms.lm.generation.generate` feeds them (chat template
    with the model-turn header; the template's own <bos>, no second one)."""
    return [int(t) for t in tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]]


class VllmBackend(Backend):
    """One vLLM engine; every variant is a LoRA module of it (its exported folder)."""

    name = "vllm"

    def __init__(self, settings: GenerationSettings, model: str | Path, tokenizer: Any, max_lora_rank: int,
                 max_loras: int = 11, **engine_kwargs: Any):
        super().__init__(settings)
        self.model_path, self.tokenizer = str(model), tokenizer
        self.max_lora_rank, self.max_loras, self.engine_kwargs = max_lora_rank, max_loras, engine_kwargs
        self.registry: dict[str, LoraSpec] = {}
        self._llm = None

    def engine(self) -> Any:
        if self._llm is None:
            vllm = import_vllm()
            self._llm = vllm.LLM(model=self.model_path, enable_lora=True, max_loras=self.max_loras,
                                 max_lora_rank=self.max_lora_rank, seed=self.settings.seed, **self.engine_kwargs)
        return self._llm

    def sampling_params(self) -> Any:
        vllm = import_vllm()
        s = self.settings
        return vllm.SamplingParams(n=s.n_samples, temperature=s.temperature if s.do_sample else 0.0,
                                   max_tokens=s.max_new_tokens, seed=s.seed)

    def requests(self, jobs: Sequence[Job]) -> tuple[list[dict[str, list[int]]], list[LoraSpec]]:
        """Flatten jobs into (token prompts, one LoRA spec per prompt) — the arguments of ``LLM.generate``."""
        specs = lora_specs([v for v, _ in jobs], self.registry)
        prompts, per_prompt = [], []
        for (_, ps), spec in zip(jobs, specs):
            for p in ps:
                prompts.append({"prompt_token_ids": chat_token_ids(self.tokenizer, p)})
                per_prompt.append(spec)
        return prompts, per_prompt

    def generate(self, jobs: Sequence[Job]) -> list[list[list[str]]]:
        prompts, specs = self.requests(jobs)
        unique = list(dict.fromkeys(specs))
        made = {s.lora_int_id: r for s, r in zip(unique, lora_requests(unique))}
        outputs = self.engine().generate(prompts, self.sampling_params(),
                                         lora_request=[made[s.lora_int_id] for s in specs])
        texts = [[c.text for c in o.outputs] for o in outputs]
        answers, i = [], 0
        for _, ps in jobs:
            answers.append(texts[i:i + len(ps)])
            i += len(ps)
        return answers


def make_backend(name: str, settings: GenerationSettings, **kwargs: Any) -> Backend:
    """``transformers`` → TransformersBackend(settings, model=, tokenizer=, layout=);
    ``vllm`` → VllmBackend(settings, model=<path>, tokenizer=, max_lora_rank=, …)."""
    if name == "transformers":
        return TransformersBackend(settings, **kwargs)
    if name == "vllm":
        import_vllm()
        return VllmBackend(settings, **kwargs)
    raise ValueError(f"unknown backend {name!r}; choose transformers or vllm")
