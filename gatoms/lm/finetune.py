"""Training: base pre-training of the embedded model, and LoRA fine-tuning (the paper's setting).

- :func:`train_base` pre-trains the tiny Gemma-3 from scratch on the world's base corpus, with the
  loss on response tokens only (the prompt is context, as in instruction tuning), so it starts as an
  instruction-following model.
- :func:`finetune_lora` adds LoRA (r=8, alpha=16, dropout 0.1 on q_proj and v_proj of every decoder
  layer: 4 LoRA modules per layer) and trains it on the fine-tuning documents, loss on response tokens
  only — the same loss the attribution step differentiates (the reference trained on prompt tokens
  too; we keep training and attribution consistent).

Both trainings are seeded (initialisation, batch order, dropout) and run in float32 losses.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from gatoms.build import paths
from gatoms.build.metrics import StepMetrics
from gatoms.data.documents import Document
from gatoms.lm.encoding import EncodedDoc, collate, encode_documents
from gatoms.lm.model import ModelConfig, lora_target_modules

log = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    """The fine-tuning data and the LoRA fine-tuning (defaults: the paper's LoRA)."""

    data: str = "world"
    """``world``: the synthetic world's fine-tuning set; ``bigbench``: the BIG-bench mixture of ``n_docs`` real
    tasks (:mod:`gatoms.data.bigbench`); else a JSONL file of chat ``messages`` or
    ``prompt``/``response`` lines (relative paths are from the repository root), e.g. ``data/sft.jsonl``."""
    n_docs: int | None = None
    """Use at most this many documents of ``data`` (the first ones); None: all."""
    lora_r: int = 8
    """LoRA rank (the paper: 8)."""
    lora_alpha: int = 16
    """LoRA alpha; the update is scaled by alpha / r (the paper: 16)."""
    lora_dropout: float = 0.1
    """Dropout on the LoRA input during training (the paper: 0.1); off in eval mode."""
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    """Linear layers of every decoder layer that get LoRA (the paper: q_proj and v_proj)."""
    epochs: int = 2
    """Passes over the fine-tuning documents."""
    lr: float = 5e-3
    """Peak AdamW learning rate of the LoRA parameters (warm-up, then cosine decay to a tenth); the
    tiny model's; profile paper sets 2e-4 for Gemma-3 4B."""
    batch_size: int = 16
    """Documents per optimiser step."""
    max_length: int = 500
    """Tokens per document after the chat template (the reference: 500); longer ones are truncated and
    those left with no response token are excluded."""
    seed: int = 0
    """Seed of the LoRA initialisation, the batch order and dropout."""
    max_new_tokens: int = 64
    """Greedy decoding length for the held-out check and the behaviour base rates."""
    eval_batch_size: int = 64
    """Prompts per generation batch for the held-out check and the base rates."""

    def __post_init__(self):
        if not isinstance(self.data, str) or not self.data:
            raise ValueError("finetune.data must be 'world' or the path of a JSONL file")
        if self.n_docs is not None and self.n_docs < 1:
            raise ValueError(f"finetune.n_docs must be positive or null, got {self.n_docs}")
        if self.lora_r < 1 or self.lora_alpha <= 0:
            raise ValueError(f"finetune.lora_r must be >= 1 and lora_alpha > 0, got {self.lora_r}, {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"finetune.lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.target_modules or not all(isinstance(t, str) for t in self.target_modules):
            raise ValueError(f"finetune.target_modules must be a non-empty list of layer names, got {self.target_modules!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("finetune.epochs, finetune.batch_size and finetune.eval_batch_size must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"finetune.lr must be positive, got {self.lr}")
        if self.max_length < 2 or self.max_new_tokens < 1:
            raise ValueError("finetune.max_length must be >= 2 and finetune.max_new_tokens >= 1")

    @property
    def uses_world(self) -> bool:
        return self.data == "world"

    def data_path(self) -> Path:
        """The JSONL file (resolved against the repository root when relative)."""
        p = Path(self.data)
        return p if p.is_absolute() else paths.root() / p


# ---- losses and the training loop -------------------------------------------------------------------------


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _split_head(model: nn.Module) -> tuple[nn.Module, nn.Module, float | None] | None:
    """(decoder, lm_head, final logit soft-cap) of a plain ``*ForCausalLM`` (or a peft model of one)."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder, head = getattr(lm, "model", None), getattr(lm, "lm_head", None)
    if not type(lm).__name__.endswith("ForCausalLM") or decoder is None or not isinstance(head, nn.Linear):
        return None
    return decoder, head, getattr(lm.config, "final_logit_softcapping", None)


def response_loss(model: nn.Module, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the next token on response positions (labels != -100), in float32.

    ``reduction="mean"``: over all response tokens of the batch; ``"sum"``; ``"none"``: per document sums (B,).
    For a plain causal LM the output layer runs on the response positions only (the logits of prompt
    positions are never needed: a third of the tiny model's compute, most of Gemma's memory); other
    models go through their full forward.
    """
    dev = _device_of(model)
    ids = batch["input_ids"].to(dev)  # (B, T)
    labels = batch["labels"].to(dev)  # (B, T)
    mask = batch["attention_mask"]  # (B, T)
    # Right padding needs no attention mask in a causal model (no real token attends to a later pad),
    # and without one attention takes the fast causal kernel; left or inner padding does need it.
    needs_mask = bool((mask[:, :-1] < mask[:, 1:]).any())
    kwargs = {"attention_mask": mask.to(dev)} if needs_mask else {}
    targets = labels[:, 1:]  # (B, T-1): position t predicts token t+1
    keep = targets != -100  # (B, T-1)
    split = _split_head(model)
    if split is not None:
        decoder, head, softcap = split
        hidden = decoder(input_ids=ids, **kwargs).last_hidden_state[:, :-1]  # (B, T-1, H)
        logits = head(hidden[keep]).float()  # (n, V), n = response tokens of the batch
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        nll = nn.functional.cross_entropy(logits, targets[keep], reduction="none")  # (n,)
        rows = keep.nonzero()[:, 0]  # (n,) document of each response token
    else:
        logits = model(input_ids=ids, **kwargs).logits.float()[:, :-1]  # (B, T-1, V)
        nll = nn.functional.cross_entropy(logits[keep], targets[keep], reduction="none")  # (n,)
        rows = keep.nonzero()[:, 0]
    if reduction == "none":
        return torch.zeros(ids.shape[0], device=dev, dtype=nll.dtype).index_add(0, rows, nll)
    if reduction == "sum":
        return nll.sum()
    return nll.sum() / max(1, nll.numel())


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _train(model: nn.Module, params: list[nn.Parameter], encoded: list[EncodedDoc], pad_id: int,
           steps: int, batch_size: int, lr: float, seed: int, epoch_order: bool) -> list[float]:
    """AdamW (warm-up, cosine decay, gradient norm clipped at 1); returns the loss of every step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    warmup = max(1, steps // 20)
    history: list[float] = []
    queue: list[list[int]] = []
    order: list[int] = []
    model.train()
    for step in range(steps):
        if not queue:
            # Draw 8 batches' worth of documents — the next ones of a fresh permutation per pass
            # (epoch_order) or independently at random — sort them by length and cut them into
            # batches, so batches pad little; the batches are then visited in random order.
            need = 8 * batch_size
            if epoch_order:
                while len(order) < need:
                    order += torch.randperm(len(encoded), generator=gen).tolist()
                chunk, order = order[:need], order[need:]
            else:
                chunk = torch.randint(len(encoded), (need,), generator=gen).tolist()
            chunk.sort(key=lambda i: len(encoded[i].input_ids))
            batches = [chunk[k:k + batch_size] for k in range(0, need, batch_size)]
            queue = [batches[k] for k in torch.randperm(len(batches), generator=gen).tolist()]
        idx = queue.pop()
        for group in opt.param_groups:
            group["lr"] = lr * _schedule(step, steps, warmup)
        loss = response_loss(model, collate([encoded[i] for i in idx], pad_id))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        history.append(float(loss.detach()))
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            log.info("step %d/%d loss %.4f", step + 1, steps, history[-1])
    model.eval()
    return history


def train_base(model: nn.Module, tokenizer, docs: list[Document], cfg: ModelConfig,
               max_length: int | None = None) -> list[float]:
    """Pre-train the embedded model on the base corpus (response-only loss); returns per-step losses.

    ``cfg.base_steps`` steps of ``cfg.base_batch_size`` random documents, AdamW at ``cfg.base_lr``.
    """
    max_length = max_length or cfg.max_position_embeddings
    enc = encode_documents(tokenizer, docs, max_length).encoded
    torch.manual_seed(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    return _train(model, params, enc, tokenizer.pad_token_id, cfg.base_steps, cfg.base_batch_size,
                  cfg.base_lr, cfg.seed, epoch_order=False)


def pretrain_embedded(cfg: ModelConfig, base_docs: list[Document]):
    """The embedded model from nothing: a BPE tokenizer trained on the base corpus (Gemma's special tokens
    and chat template), a tiny Gemma-3 from ``cfg``, pre-trained on the corpus. Returns (model, tokenizer,
    loss per pre-training step)."""
    from gatoms.lm.model import build_tiny_model
    from gatoms.lm.tokenizer import train_tokenizer

    tokenizer = train_tokenizer([t for d in base_docs for t in (d.prompt, d.response)], cfg.vocab_size)
    model = build_tiny_model(cfg, len(tokenizer))
    history = train_base(model, tokenizer, base_docs, cfg)
    return model, tokenizer, history


def loss_rows(base_history: list[float], lora_history: list[float]) -> list[dict[str, object]]:
    """The rows of ``loss.csv``: phase (base / lora), step, loss."""
    return ([{"phase": "base", "step": k + 1, "loss": f"{v:.6f}"} for k, v in enumerate(base_history)]
            + [{"phase": "lora", "step": k + 1, "loss": f"{v:.6f}"} for k, v in enumerate(lora_history)])


def apply_lora(model: nn.Module, cfg: FinetuneConfig):
    """Wrap ``model`` in a peft LoRA model per ``cfg`` (seeded initialisation; B starts at zero)."""
    from peft import LoraConfig, get_peft_model

    targets = lora_target_modules(model, cfg.target_modules)
    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def finetune_lora(base_model: nn.Module, tokenizer, docs: list[Document], cfg: FinetuneConfig):
    """LoRA fine-tuning on ``docs`` with response-only loss; returns ``(peft_model, loss_history)``.

    ``cfg.epochs`` passes in a seeded order, batches of ``cfg.batch_size``. Documents with no response
    token within ``cfg.max_length`` are excluded (and logged) by the encoder. The model is returned in
    eval mode (LoRA dropout off).
    """
    enc = encode_documents(tokenizer, docs, cfg.max_length).encoded
    if not enc:
        raise ValueError("no document has a response token within finetune.max_length; raise it")
    model = apply_lora(base_model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    steps = cfg.epochs * math.ceil(len(enc) / cfg.batch_size)
    torch.manual_seed(cfg.seed)
    history = _train(model, params, enc, tokenizer.pad_token_id, steps, cfg.batch_size, cfg.lr, cfg.seed,
                     epoch_order=True)
    return model, history


@torch.no_grad()
def evaluate_loss(model: nn.Module, tokenizer, docs: list[Document], max_length: int,
                  batch_size: int = 64) -> float:
    """Mean response-token cross-entropy of ``model`` (eval mode) on ``docs``."""
    enc = encode_documents(tokenizer, docs, max_length).encoded
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(enc), batch_size):
        batch = collate(enc[start:start + batch_size], tokenizer.pad_token_id)
        total += float(response_loss(model, batch, reduction="sum"))
        count += int((batch["labels"][:, 1:] != -100).sum())
    model.train(was_training)
    return total / max(count, 1)


# ---- the fine-tuning data ---------------------------------------------------------------------------------


# ---- what step 00 records ---------------------------------------------------------------------------
@dataclass
class FinetuneMetrics(StepMetrics):
    """Step 00's ``metrics.json``: the documents, the LoRA, the losses, the held-out check and base rates."""

    step: ClassVar[str] = "00_finetune"
    n_finetune_docs: int = 0
    """Fine-tuning documents kept (after excluding those with no response token)."""
    n_task_families: int = 0
    """Distinct ``family`` labels among them (0 without labels)."""
    n_excluded_docs: int = 0
    trainable_params: int = 0
    """LoRA parameters (= D, the length of a gradient row)."""
    n_lora_modules: int = 0
    base_params: int = 0
    base_final_loss: float | None = None
    """Mean response-token loss of the base model on the fine-tuning documents (eval mode)."""
    lora_final_loss: float | None = None
    """The same after LoRA fine-tuning."""
    base_train_final_loss: float | None = None
    """Mean training loss of the last 20 base pre-training steps (embedded model only)."""
    lora_train_final_loss: float | None = None
    heldout: dict[str, float] = field(default_factory=dict)
    """Family → fraction of held-out prompts answered right (or in the right format)."""
    heldout_deterministic_mean: float | None = None
    """Mean of ``heldout`` over arithmetic, factual QA and yes/no."""
    behavior_base_rates: dict[str, float] = field(default_factory=dict)
    """Behaviour → rate on its inviting evaluation prompts (fine-tuned model, greedy)."""
    behavior_control_rates: dict[str, float] = field(default_factory=dict)
    """Behaviour → rate on its control prompts."""
    behavior_rates_base_model: dict[str, float] = field(default_factory=dict)
    """Behaviour → rate on its inviting prompts without the adapter."""
    n_eval_prompts: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def tail_mean(history: list[float], n: int = 20) -> float | None:
    """Mean of the last ``n`` training losses (None for an empty history)."""
    return round(sum(history[-n:]) / len(history[-n:]), 6) if history else None
