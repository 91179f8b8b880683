"""Per-document LoRA gradients (step 1 of METHOD.md) and the Kronecker factors of the same pass.

For each document n the gradient of its response-only, sum-reduced cross-entropy L_n with respect to
every LoRA sub-layer W_m, flattened in the order of :class:`gatoms.layout.Layout` → one row g_n of an
(N, D) matrix. Computed with hooks, for a whole padded batch at once::

    forward hook on lora_X   keeps its input      a  (B, T, i)
    tensor hook on its output receives            δ  (B, T, o)   (= ∂(Σ_n L_n)/∂output, scaling included)
    G_n = Σ_t δ_{n,t} a_{n,t}ᵀ                    einsum("bto,bti->boi")   (B, o, i)

Documents are independent within a batch (causal attention, right padding), so ∂(Σ_n L_n)/∂out_{n,t} is
∂L_n/∂out_{n,t}; padded positions have δ = 0. All parameters stay frozen: a forward hook on the input
embeddings makes them require grad, which is enough for the tensor hooks to fire, and no parameter
gradient is ever materialised. :func:`reference_gradients` is the authors' method (one document, one
``backward()``, read ``.grad``): the test reference and the benchmark baseline.

The same pass accumulates the Kronecker factors A_m = E_t[a aᵀ] (i, i) and S_m = E_t[δ δᵀ] (o, o) over
every real token (empirical Fisher); with ``fisher=True`` they come instead from a second, seeded pass
whose response labels are sampled from the model (the "true" Fisher the authors used).

Outputs, in ``out_dir`` (names in :mod:`gatoms.paths`)::

    grads.npy            (N, D) rows in document order; float32 | float16 | bfloat16 stored as uint16
    grads.json           layout, doc ids, dtype, n_params, n_modules, fingerprint of the inputs
    factors.safetensors  A.<module>, S.<module> (float32 means) + token count

Rows are streamed to ``grads.npy.part`` (a memmap); each rank checkpoints (rows flushed first, then its
factor partial sums and batch count, atomically) so a killed run, re-run, continues where it stopped and
ends bit-identical to an uninterrupted run. Under ``torchrun`` each rank takes every world_size-th batch
of one global batch plan (so every row is computed exactly as in a single process) and writes its rows
into the shared memmap; rank 0 sums the factors.

Usage::

    res = extract_gradients(peft_model, encoded_docs, store.dir, ExtractConfig(dtype="float32"))
    reader = open_gradients(store.dir); g = reader.rows([0, 5])      # (2, D) float32
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gatoms import paths
from gatoms.data import EncodedDoc
from gatoms.layout import Layout
from gatoms.store import require_final, save_safetensors

log = logging.getLogger(__name__)

STORAGE_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),  # the upper 16 bits of a float32, viewed as uint16
}
COMPUTE_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
FP16_MAX = 65504.0


@dataclass
class ExtractConfig:
    """Settings of step 01_extract (section ``extract:`` of a profile)."""

    max_length: int = 500
    """Documents are truncated to this many tokens (the reference used 500)."""
    batch_tokens: int = 4096
    """Token budget of one padded batch: documents are sorted by length and packed so that
    (documents in the batch) × (longest of them) ≤ batch_tokens (a longer document goes alone)."""
    dtype: str = "float32"
    """Storage dtype of grads.npy: float32 | float16 | bfloat16 (stored as uint16). Accumulation is fp32."""
    compute_dtype: str = "float32"
    """dtype of the model's forward/backward: float32, or bfloat16 (GPU only; the reference's choice).
    The loss and every gradient/factor accumulation are float32 either way."""
    fisher: bool = False
    """False: Kronecker factors from the dataset's labels, in the same pass (empirical Fisher).
    True: a second pass with response labels sampled from the model (true Fisher, as the reference)."""
    fisher_seed: int = 0
    """Seed of the label sampling when fisher is true (each document gets its own stream)."""
    device: str = "auto"
    """auto (cuda if available, else cpu) | cpu | cuda | cuda:N. Under torchrun, cuda means cuda:LOCAL_RANK."""
    checkpoint_seconds: float = 60.0
    """Write a resume checkpoint at most this often (0 = after every batch)."""

    def __post_init__(self):
        if self.max_length < 2:
            raise ValueError(f"max_length must be ≥ 2 (a prompt token and a response token), got {self.max_length}")
        if self.batch_tokens < 1:
            raise ValueError(f"batch_tokens must be ≥ 1, got {self.batch_tokens}")
        if self.dtype not in STORAGE_DTYPES:
            raise ValueError(f"dtype must be one of {list(STORAGE_DTYPES)}, got {self.dtype!r}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be one of {list(COMPUTE_DTYPES)}, got {self.compute_dtype!r}")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.checkpoint_seconds < 0:
            raise ValueError(f"checkpoint_seconds must be ≥ 0, got {self.checkpoint_seconds}")


@dataclass
class ExtractResult:
    """What :func:`extract_gradients` did."""

    out_dir: Path
    n_docs: int
    n_params: int
    n_modules: int
    n_tokens: int
    dtype: str
    seconds: float
    """Wall time of this call (a resumed call counts only its own work)."""
    docs_per_second: float
    """Documents processed by this call (all ranks) per second of this call."""
    resumed_batches: int = 0
    """Batches of this rank found done in a checkpoint and skipped."""
    skipped: bool = False
    """True when complete outputs with the same fingerprint were already there."""


# ---- Kronecker factors -----------------------------------------------------------------------------
@dataclass
class Factors:
    """Per-module Kronecker factors: A_m = E_t[a aᵀ] (i, i), S_m = E_t[δ δᵀ] (o, o)."""

    A: dict[str, torch.Tensor]
    S: dict[str, torch.Tensor]
    n_tokens: int
    """Tokens averaged over (every non-padding position of every document)."""
    fisher: str
    """``empirical`` (dataset labels) or ``true`` (labels sampled from the model)."""

    def save(self, path: Path) -> None:

        tensors = {f"A.{k}": v.float().contiguous() for k, v in self.A.items()}
        tensors |= {f"S.{k}": v.float().contiguous() for k, v in self.S.items()}
        save_safetensors(path, tensors, metadata={"n_tokens": str(self.n_tokens), "fisher": self.fisher})

    @classmethod
    def load(cls, path: Path) -> Factors:
        from safetensors import safe_open

        path = require_final(path)
        A, S = {}, {}
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            for key in f.keys():
                kind, name = key.split(".", 1)
                (A if kind == "A" else S)[name] = f.get_tensor(key)
        return cls(A=A, S=S, n_tokens=int(meta.get("n_tokens", 0)), fisher=meta.get("fisher", "empirical"))


# ---- batching --------------------------------------------------------------------------------------
def plan_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Group document indices into batches of similar length under a padded-token budget.

    Sorted by (length, index); a batch grows while len(batch) × max length ≤ batch_tokens. The plan
    depends only on the lengths, so every process of a torchrun job computes the same one.
    """
    order = sorted(range(len(lengths)), key=lambda n: (lengths[n], n))
    batches: list[list[int]] = []
    cur: list[int] = []
    for n in order:
        if cur and (len(cur) + 1) * lengths[n] > batch_tokens:
            batches.append(cur)
            cur = []
        cur.append(n)
    if cur:
        batches.append(cur)
    return batches


def _truncate(docs: Sequence[EncodedDoc], max_length: int) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) truncated to max_length; a document without a response token is an error."""
    out = []
    bad = []
    for d in docs:
        if len(d.input_ids) != len(d.labels):
            raise ValueError(f"document {d.doc_id!r}: input_ids and labels differ in length")
        ids, labels = list(d.input_ids[:max_length]), list(d.labels[:max_length])
        # The label of position 0 is never predicted (nothing precedes it).
        if not any(t != -100 for t in labels[1:]):
            bad.append(d.doc_id)
        out.append((ids, labels))
    if bad:
        raise ValueError(
            f"{len(bad)} document(s) have no response token after truncation to max_length={max_length} "
            f"(their gradient would be zero and cannot be normalised): {bad[:5]}{'…' if len(bad) > 5 else ''}. "
            "Drop them (gatoms.data.encode_documents excludes them) or raise extract.max_length."
        )
    return out


def _collate(items: list[tuple[list[int], list[int]]], pad_id: int, device) -> tuple[torch.Tensor, ...]:
    T = max(len(ids) for ids, _ in items)
    B = len(items)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for b, (ids, lab) in enumerate(items):
        input_ids[b, : len(ids)] = torch.tensor(ids)
        labels[b, : len(lab)] = torch.tensor(lab)
        mask[b, : len(ids)] = 1
    return input_ids.to(device), labels.to(device), mask.to(device)


def response_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ over response tokens of the cross-entropy, in float32. logits (B, T, V), labels (B, T)."""
    shift = labels[:, 1:]
    sel = shift != -100
    return F.cross_entropy(logits[:, :-1][sel].float(), shift[sel], reduction="sum")


@contextlib.contextmanager
def _logits_at(model: nn.Module) -> Iterator[dict]:
    """Compute the output layer only at the positions in ``state["positions"]`` ((B, T) bool).

    A forward pre-hook on the output embeddings (``lm_head``) replaces its input (B, T, H) by the selected
    rows (1, n, H), so the logits come back as (1, n, V) in row-major (document, position) order. Only
    the positions that predict a response token need logits; the rest would cost a (B, T, V) matmul, its
    softmax and a (B, T, V) zero gradient for nothing.
    """
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError("the model has no output embeddings (lm_head); gatoms needs a causal LM")
    state: dict = {}

    def pre_hook(module, args):
        hidden = args[0]  # (B, T, H)
        return (hidden[state["positions"]].unsqueeze(0), *args[1:])  # (1, n, H)

    handle = head.register_forward_pre_hook(pre_hook)
    try:
        yield state
    finally:
        handle.remove()


# ---- hooks -----------------------------------------------------------------------------------------
class _LoraHooks:
    """Forward hooks on every LoRA sub-layer (input a) + tensor hooks on their outputs (δ).

    Per batch it fills ``rows`` (B, D) with G = Σ_t δ aᵀ and/or adds Σ_t a aᵀ, Σ_t δ δᵀ over real tokens
    to float64 accumulators. Modules whose inputs are the same tensor (q/k/v lora_A of one layer) share
    one a aᵀ product per batch.
    """

    def __init__(self, model: nn.Module, layout: Layout, device: torch.device):
        self.layout = layout
        mods = dict(model.named_modules())
        self.specs = {m.name: m for m in layout}
        self.A = {m.name: torch.zeros(m.shape[1], m.shape[1], dtype=torch.float64, device=device) for m in layout}
        self.S = {m.name: torch.zeros(m.shape[0], m.shape[0], dtype=torch.float64, device=device) for m in layout}
        self.n_tokens = 0
        self.want_rows = False
        self.want_factors = False
        self.rows: torch.Tensor | None = None  # (B, D) float32
        self.tok_idx: torch.Tensor | None = None  # (n_tok,) flat indices of real tokens
        self._recent: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._handles = [mods[m.name].register_forward_hook(self._forward(m.name)) for m in layout]

    def start_batch(self, B: int, mask: torch.Tensor, rows: bool, factors: bool) -> None:
        self.want_rows, self.want_factors = rows, factors
        self.rows = torch.zeros(B, self.layout.n_params, dtype=torch.float32, device=mask.device) if rows else None
        self.tok_idx = mask.reshape(-1).nonzero().squeeze(1)
        self._recent = []
        if factors:
            self.n_tokens += int(self.tok_idx.numel())

    def end_batch(self) -> None:
        self._recent = []
        self.tok_idx = None

    def _forward(self, name: str):
        def hook(module, inputs, output):
            if not (self.want_rows or self.want_factors):
                return
            a = inputs[0].detach()  # (B, T, i)
            if self.want_factors:
                self._accumulate_A(name, a)
            if output.requires_grad:
                output.register_hook(self._backward(name, a))

        return hook

    def _accumulate_A(self, name: str, a: torch.Tensor) -> None:
        for prev, prod in self._recent:
            if prev is a or (prev.shape == a.shape and torch.equal(prev, a)):
                self.A[name] += prod
                return
        x = a.reshape(-1, a.shape[-1]).index_select(0, self.tok_idx).float()  # (n_tok, i)
        prod = (x.T @ x).double()
        self.A[name] += prod
        self._recent = [*self._recent[-3:], (a, prod)]

    def _backward(self, name: str, a: torch.Tensor):
        spec = self.specs[name]

        def hook(grad: torch.Tensor):  # (B, T, o)
            if self.want_rows:
                G = torch.einsum("bto,bti->boi", grad.float(), a.float())  # (B, o, i)
                self.rows[:, spec.offset : spec.offset + spec.size] = G.reshape(G.shape[0], -1)
            if self.want_factors:
                d = grad.reshape(-1, grad.shape[-1]).index_select(0, self.tok_idx).float()  # (n_tok, o)
                self.S[name] += (d.T @ d).double()

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


@contextlib.contextmanager
def _frozen_with_input_grad(model: nn.Module) -> Iterator[dict]:
    """Freeze every parameter, eval mode, and make the input embeddings' output require grad.

    Yields a dict whose ``"embeds"`` is the last embeddings output (the tensor to differentiate to).
    Restores requires_grad flags and the training mode afterwards.
    """
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    state: dict = {}

    def embed_hook(module, inputs, output):
        out = output.detach().requires_grad_(True)
        state["embeds"] = out
        return out

    handle = model.get_input_embeddings().register_forward_hook(embed_hook)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    try:
        yield state
    finally:
        handle.remove()
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
        model.train(was_training)


# ---- storage ---------------------------------------------------------------------------------------
def to_storage(rows: torch.Tensor, dtype: str) -> np.ndarray:
    """(B, D) float32 tensor → numpy array in the storage dtype (bfloat16 as its uint16 bit pattern)."""
    if dtype == "float32":
        return rows.float().cpu().numpy()
    if dtype == "float16":
        big = rows.abs().max().item() if rows.numel() else 0.0
        if big > FP16_MAX:
            raise ValueError(f"a gradient entry of magnitude {big:.3g} overflows float16; use extract.dtype: bfloat16")
        return rows.half().cpu().numpy()
    return rows.bfloat16().view(torch.int16).cpu().numpy().view(np.uint16)


def from_storage(block: np.ndarray, dtype: str) -> np.ndarray:
    """Stored rows → float32 (exact for every storage dtype)."""
    if dtype == "bfloat16":
        return (np.asarray(block, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.array(block, dtype=np.float32)  # a copy: never a view into the read-only memmap


# ---- fingerprint -----------------------------------------------------------------------------------
def _fingerprint(model: nn.Module, layout: Layout, items, doc_ids, cfg: ExtractConfig) -> str:
    """Hash of what determines the outputs: documents, LoRA weights, base config, extraction settings."""
    h = hashlib.sha256()
    settings = {k: getattr(cfg, k) for k in ("max_length", "batch_tokens", "dtype", "compute_dtype", "fisher", "fisher_seed")}
    h.update(json.dumps({"layout": layout.to_json(), "settings": settings}, sort_keys=True).encode())
    base_cfg = getattr(model, "config", None)
    if base_cfg is not None and hasattr(base_cfg, "to_json_string"):
        h.update(base_cfg.to_json_string().encode())
    for doc_id, (ids, labels) in zip(doc_ids, items):
        h.update(doc_id.encode() + b"\0")
        h.update(np.asarray(ids, dtype=np.int64).tobytes())
        h.update(np.asarray(labels, dtype=np.int64).tobytes())
    for w in layout.weights(model).values():
        h.update(w.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:24]


def _doc_seed(seed: int, doc_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()[:7], "little")


def _resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and torch.distributed.is_available() and torch.distributed.is_initialized():
        spec = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"extract.device={spec!r} but CUDA is not available; use device: auto or cpu")
    device = torch.device(spec)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # NCCL collectives run on the current device
    return device


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def _comm_device() -> torch.device:
    """Where collective tensors must live: the rank's GPU for NCCL, else the CPU (gloo)."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_min(flag: bool, world: int) -> bool:
    if world == 1:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_comm_device())
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
    return bool(t.item())


def _gather_sum(t: torch.Tensor, world: int) -> torch.Tensor:
    """Σ over ranks, added in rank order (deterministic); returned on the CPU."""
    if world == 1:
        return t.cpu()
    t = t.to(_comm_device()).contiguous()
    parts = [torch.empty_like(t) for _ in range(world)]
    torch.distributed.all_gather(parts, t)
    total = parts[0].clone()
    for p in parts[1:]:
        total += p
    return total.cpu()


# ---- checkpoints -----------------------------------------------------------------------------------
def _checkpoint_path(out_dir: Path, rank: int) -> Path:
    return out_dir / paths.EXTRACT_CHECKPOINT.format(rank=rank)


def _save_checkpoint(path: Path, hooks: _LoraHooks, meta: dict) -> None:

    tensors = {f"A.{k}": v.cpu() for k, v in hooks.A.items()} | {f"S.{k}": v.cpu() for k, v in hooks.S.items()}
    tensors["n_tokens"] = torch.tensor([hooks.n_tokens], dtype=torch.int64)
    save_safetensors(path, tensors, metadata={k: str(v) for k, v in meta.items()})


def _load_checkpoint(path: Path, hooks: _LoraHooks, fingerprint: str, world: int) -> tuple[int, int] | None:
    """Restore partial sums; returns (phase, batches done) or None if absent/stale."""
    from safetensors import safe_open

    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("fingerprint") != fingerprint or int(meta.get("world_size", -1)) != world:
                log.warning("ignoring checkpoint %s made for other inputs or another world size", path)
                return None
            for k in hooks.A:
                hooks.A[k].copy_(f.get_tensor(f"A.{k}"))
                hooks.S[k].copy_(f.get_tensor(f"S.{k}"))
            hooks.n_tokens = int(f.get_tensor("n_tokens")[0])
            return int(meta["phase"]), int(meta["batches_done"])
    except (OSError, KeyError, ValueError, RuntimeError) as e:  # unreadable → start this rank over
        log.warning("ignoring unreadable checkpoint %s: %s", path, e)
        return None


# ---- the extractor ---------------------------------------------------------------------------------
def extract_gradients(
    model: nn.Module,
    docs: Sequence[EncodedDoc],
    out_dir: Path,
    cfg: ExtractConfig | None = None,
    progress: bool = True,
    pad_id: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> ExtractResult:
    """Write every document's LoRA gradient to ``out_dir/grads.npy`` and the Kronecker factors.

    Args:
        model: a peft model with LoRA adapters. It is moved to ``cfg.device`` and ``cfg.compute_dtype``;
            its parameters' requires_grad flags and training mode are restored afterwards.
        docs: encoded documents (row n of grads.npy is docs[n]); each needs ≥ 1 response token.
        out_dir: folder for the outputs (normally ``StepStore.dir`` of 01_extract); created if missing.
        cfg: extraction settings.
        progress: show a progress bar (rank 0 only).
        pad_id: token id used for padding (never attended to: right padding + attention mask).
        on_batch: called with the global batch index after each batch is written and checkpointed.

    Returns:
        :class:`ExtractResult`. Re-running with the same model, documents and settings finds the
        complete outputs and returns at once (``skipped=True``), or resumes an interrupted run.
    """
    cfg = cfg or ExtractConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world = _dist()
    device = _resolve_device(cfg.device)
    if cfg.compute_dtype == "bfloat16" and device.type != "cuda":
        raise ValueError("extract.compute_dtype: bfloat16 needs a GPU; use float32 on CPU")
    if not docs:
        raise ValueError("no documents to extract")
    t0 = time.perf_counter()
    model.to(device=device, dtype=COMPUTE_DTYPES[cfg.compute_dtype])
    layout = Layout.from_model(model)
    items = _truncate(docs, cfg.max_length)
    doc_ids = [d.doc_id for d in docs]
    if len(set(doc_ids)) != len(doc_ids):
        raise ValueError("document ids are not unique")
    N, D = len(docs), layout.n_params
    fp = _fingerprint(model, layout, items, doc_ids, cfg)
    grads_path, meta_path, factors_path = out_dir / paths.GRADS, out_dir / paths.GRADS_META, out_dir / paths.FACTORS
    part = grads_path.with_name(grads_path.name + ".part")
    sdtype = STORAGE_DTYPES[cfg.dtype]

    # Complete outputs from the same inputs → nothing to do.
    if grads_path.exists() and meta_path.exists() and factors_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fp:
            log.info("skipping: %s already holds the gradients of these documents", out_dir)
            return ExtractResult(out_dir, N, D, len(layout), int(meta.get("n_tokens", 0)), cfg.dtype,
                                 float(meta.get("seconds", 0.0)), float(meta.get("docs_per_second", 0.0)),
                                 skipped=True)

    # The shared memmap: reuse a .part of the right shape (resume) or create it.
    def part_ok() -> bool:
        if not part.exists():
            return False
        try:
            mm = np.load(part, mmap_mode="r")
            return mm.shape == (N, D) and mm.dtype == sdtype
        except (ValueError, OSError):
            return False

    resume_file = _all_min(part_ok(), world)
    _barrier(world)
    if not resume_file and rank == 0:
        for stale in out_dir.glob(paths.EXTRACT_CHECKPOINT.format(rank="*")):
            stale.unlink()
        for f in (grads_path, meta_path, factors_path):
            f.unlink(missing_ok=True)
        mm = np.lib.format.open_memmap(part, mode="w+", dtype=sdtype, shape=(N, D))
        del mm
    _barrier(world)
    mm = np.load(part, mmap_mode="r+")

    batches = plan_batches([len(ids) for ids, _ in items], cfg.batch_tokens)
    mine = list(range(rank, len(batches), world))
    phases = [("rows", "factors")] if not cfg.fisher else [("rows",), ("factors",)]

    hooks = _LoraHooks(model, layout, device)
    ckpt = _checkpoint_path(out_dir, rank)
    state = _load_checkpoint(ckpt, hooks, fp, world) if resume_file else None
    start_phase, start_batch = state if state else (0, 0)
    resumed = sum(len(mine) for _ in range(start_phase)) + start_batch
    if state:
        log.info("rank %d resumes at phase %d, batch %d of %d", rank, start_phase, start_batch, len(mine))
    done_docs = 0
    last_ckpt = time.perf_counter()
    total_steps = len(phases) * len(mine)

    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=resumed, disable=not progress or rank != 0, desc="extract", unit="batch")
    try:
        with _frozen_with_input_grad(model) as emb, _logits_at(model) as head:
            for phase, jobs in enumerate(phases):
                if phase < start_phase:
                    continue
                for j, bi in enumerate(mine):
                    if phase == start_phase and j < start_batch:
                        continue
                    idx = batches[bi]
                    input_ids, labels, mask = _collate([items[n] for n in idx], pad_id, device)
                    hooks.start_batch(len(idx), mask, rows="rows" in jobs, factors="factors" in jobs)
                    positions = torch.zeros_like(mask, dtype=torch.bool)  # (B, T): predicts a response token
                    positions[:, :-1] = labels[:, 1:] != -100
                    head["positions"] = positions
                    logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
                    n_pred = int(positions.sum())
                    if logits.shape[:2] != (1, n_pred):
                        raise RuntimeError(f"the model reshaped the output layer's result to {tuple(logits.shape)}; "
                                           "gatoms expects lm_head(hidden) to be the logits")
                    if "rows" in jobs:
                        targets = labels[:, 1:][positions[:, :-1]]  # (n,)
                    else:  # true Fisher: labels sampled from the model on response positions
                        targets = _sample_targets(logits[0], positions.sum(1).tolist(), [doc_ids[n] for n in idx], cfg.fisher_seed)
                    loss = F.cross_entropy(logits[0].float(), targets, reduction="sum")
                    torch.autograd.grad(loss, [emb["embeds"]])
                    if "rows" in jobs:
                        order = np.argsort(idx)
                        mm[np.asarray(idx)[order]] = to_storage(hooks.rows, cfg.dtype)[order]
                    hooks.end_batch()
                    del logits, loss
                    done_docs += len(idx)
                    bar.update(1)
                    last_of_phase = j == len(mine) - 1
                    if last_of_phase or time.perf_counter() - last_ckpt >= cfg.checkpoint_seconds:
                        mm.flush()
                        _save_checkpoint(ckpt, hooks, {"fingerprint": fp, "world_size": world, "rank": rank,
                                                        "phase": phase if not last_of_phase else phase + 1,
                                                        "batches_done": j + 1 if not last_of_phase else 0})
                        last_ckpt = time.perf_counter()
                    if on_batch is not None:
                        on_batch(bi)
    finally:
        bar.close()
        hooks.remove()
    mm.flush()
    del mm

    # Merge: factor sums over ranks (rank order), normalise, write; the rename of grads.npy is last.
    n_tokens = int(_gather_sum(torch.tensor([hooks.n_tokens], dtype=torch.int64), world)[0])
    A = {k: _gather_sum(v, world) for k, v in hooks.A.items()}
    S = {k: _gather_sum(v, world) for k, v in hooks.S.items()}
    n_docs_done = int(_gather_sum(torch.tensor([done_docs], dtype=torch.int64), world)[0])
    _barrier(world)
    seconds = time.perf_counter() - t0
    dps = (n_docs_done / len(phases)) / seconds if seconds > 0 else 0.0
    if rank == 0:
        Factors(A={k: v / n_tokens for k, v in A.items()}, S={k: v / n_tokens for k, v in S.items()},
                n_tokens=n_tokens, fisher="true" if cfg.fisher else "empirical").save(factors_path)
        meta = {
            "layout": layout.to_json(),
            "doc_ids": doc_ids,
            "dtype": cfg.dtype,
            "n_params": D,
            "n_modules": len(layout),
            "n_docs": N,
            "n_tokens": n_tokens,
            "max_length": cfg.max_length,
            "fisher": "true" if cfg.fisher else "empirical",
            "fingerprint": fp,
            "seconds": round(seconds, 3),  # of the call that completed it (a resumed call: its own part)
            "docs_per_second": round(dps, 3),
        }
        tmp = meta_path.with_name(meta_path.name + ".part")
        tmp.write_text(json.dumps(meta) + "\n")
        os.replace(tmp, meta_path)
        os.replace(part, grads_path)
        for f in out_dir.glob(paths.EXTRACT_CHECKPOINT.format(rank="*")):
            f.unlink()
    _barrier(world)
    log.info("extracted %d documents × %d parameters in %.1fs (%.1f docs/s)", N, D, seconds, dps)
    return ExtractResult(out_dir, N, D, len(layout), n_tokens, cfg.dtype, seconds, dps, resumed_batches=resumed)


def _sample_targets(logits: torch.Tensor, counts: list[int], doc_ids: list[str], seed: int) -> torch.Tensor:
    """Response labels sampled from the model's predictive distribution, one seeded stream per document.

    logits (n, V): the response positions of the batch's documents in order, ``counts[b]`` rows each.
    The samples of a document do not depend on which batch or process it is in."""
    out = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
    with torch.no_grad():
        start = 0
        for count, doc_id in zip(counts, doc_ids):
            probs = torch.softmax(logits[start : start + count].float(), dim=-1)  # (count, V)
            g = torch.Generator(device=logits.device)
            g.manual_seed(_doc_seed(seed, doc_id))
            out[start : start + count] = torch.multinomial(probs, 1, generator=g).squeeze(1)
            start += count
    return out


# ---- the authors' method ---------------------------------------------------------------------------
def reference_gradients(
    model: nn.Module, docs: Sequence[EncodedDoc], max_length: int = 500, progress: bool = False
) -> np.ndarray:  # (N, D) float32
    """The per-document loop of the reference: one document, one ``backward()``, read ``.grad``.

    LoRA weights require grad (everything else frozen), model in eval mode, same response-only sum
    loss in float32. Slow and obviously correct: the test reference and the benchmark baseline.
    """
    layout = Layout.from_model(model)
    weights = layout.weights(model)
    items = _truncate(docs, max_length)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    device = next(model.parameters()).device
    for p in model.parameters():
        p.requires_grad_(False)
    for w in weights.values():
        w.requires_grad_(True)
    model.eval()
    out = np.zeros((len(items), layout.n_params), dtype=np.float32)
    from tqdm.auto import tqdm

    try:
        for n, (ids, labels) in enumerate(tqdm(items, disable=not progress, desc="reference", unit="doc")):
            for w in weights.values():
                w.grad = None
            input_ids = torch.tensor([ids], device=device)
            logits = model(input_ids=input_ids, use_cache=False).logits
            response_loss(logits, torch.tensor([labels], device=device)).backward()
            out[n] = torch.cat([weights[m.name].grad.reshape(-1).float() for m in layout]).cpu().numpy()
    finally:
        for w in weights.values():
            w.grad = None
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        model.train(was_training)
    return out


# ---- reading ---------------------------------------------------------------------------------------
class GradientReader:
    """Read-only access to a completed ``grads.npy`` + ``grads.json`` (never a ``.part``).

    ``rows(idx)`` reads only the requested rows and returns float32; ``chunks()`` iterates over row
    blocks so that peak memory stays ~chunk × D whatever N is.
    """

    def __init__(self, step_dir: Path):
        step_dir = Path(step_dir)
        if step_dir.name.endswith(".part") or step_dir.name == paths.GRADS:
            if step_dir.name.endswith(".part"):
                raise ValueError(f"refusing to read an incomplete file {step_dir}; re-run the extraction to finish it")
            step_dir = step_dir.parent
        self.dir = step_dir
        grads, meta = step_dir / paths.GRADS, step_dir / paths.GRADS_META
        if not grads.exists():
            part = grads.with_name(grads.name + ".part")
            hint = (f" (only the incomplete {part.name} is there: re-run `make extract` to resume it)"
                    if part.exists() else " (build it with `make extract`)")
            raise FileNotFoundError(f"no {grads}{hint}")
        if not meta.exists():
            raise FileNotFoundError(f"no {meta} beside {grads}; the extraction did not complete")
        self.meta = json.loads(meta.read_text())
        self.layout = Layout.from_json(self.meta["layout"])
        self.doc_ids: list[str] = list(self.meta["doc_ids"])
        self.dtype: str = self.meta["dtype"]
        self._mm = np.load(grads, mmap_mode="r")
        if self._mm.shape != (len(self.doc_ids), self.layout.n_params):
            raise ValueError(f"{grads} has shape {self._mm.shape} but {meta.name} describes "
                             f"({len(self.doc_ids)}, {self.layout.n_params}); the files do not belong together")
        if self._mm.dtype != STORAGE_DTYPES[self.dtype]:
            raise ValueError(f"{grads} stores {self._mm.dtype} but {meta.name} says {self.dtype}")

    @property
    def shape(self) -> tuple[int, int]:
        return self._mm.shape

    def __len__(self) -> int:
        return self._mm.shape[0]

    def rows(self, idx) -> np.ndarray:
        """Rows ``idx`` (int, slice, or index array) as float32: (D,) for an int, else (n, D)."""
        if isinstance(idx, slice):
            block = self._mm[idx]
        else:
            arr = np.asarray(idx)
            if arr.ndim == 0:
                return from_storage(self._mm[int(arr)], self.dtype)
            block = self._mm[np.sort(arr)] if arr.size else self._mm[:0]
            if arr.size:
                block = block[np.argsort(np.argsort(arr))]
        return from_storage(block, self.dtype)

    def default_chunk(self, budget_bytes: int = 128 * 2**20) -> int:
        return max(1, budget_bytes // (4 * max(1, self.layout.n_params)))

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start row, (n, D) float32 block) over all rows."""
        c = chunk_rows or self.default_chunk()
        for s in range(0, len(self), c):
            yield s, self.rows(slice(s, min(s + c, len(self))))

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        return self.chunks()

    def check(self, layout: Layout | None = None, doc_ids: Sequence[str] | None = None) -> None:
        """Raise ValueError if the stored layout or documents differ from the given ones."""
        if layout is not None:
            self.layout.check_matches(layout, what="stored gradients")
        if doc_ids is not None and list(doc_ids) != self.doc_ids:
            diff = next((i for i, (a, b) in enumerate(zip(doc_ids, self.doc_ids)) if a != b), min(len(doc_ids), len(self.doc_ids)))
            raise ValueError(f"document mismatch with the stored gradients at row {diff}: "
                             f"{len(doc_ids)} given, {len(self.doc_ids)} stored; rebuild with `make extract FORCE=1`")

    def factors(self) -> Factors:
        return Factors.load(self.dir / paths.FACTORS)


def open_gradients(step_dir: Path) -> GradientReader:
    """A :class:`GradientReader` over ``step_dir/grads.npy`` (refuses ``.part`` files)."""
    return GradientReader(step_dir)


def gemma3_4b_layout(r: int = 8, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> Layout:
    """The LoRA layout of Gemma-3 4B's text model, built on the meta device (no weights allocated)."""
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    cfg = Gemma3TextConfig(
        vocab_size=262_208, hidden_size=2560, intermediate_size=10240, num_hidden_layers=34,
        num_attention_heads=8, num_key_value_heads=4, head_dim=256, sliding_window=1024,
    )
    with torch.device("meta"):
        model = get_peft_model(Gemma3ForCausalLM(cfg), LoraConfig(r=r, target_modules=list(targets)))
    return Layout.from_model(model)


# ---- command line: step 01's extraction on several processes ---------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``torchrun --nproc_per_node N -m gatoms.gradients --profile P``: the extraction of step 01 sharded
    over N processes (gloo on CPU, NCCL on GPUs: one GPU per process). Writes the gradients and factors
    into ``artifacts/<P>/01_extract/``; then ``make extract PROFILE=P`` runs the notebook, which finds
    them complete (same model, documents and settings), skips the extraction and records the step.
    Also works as a single process (``python -m gatoms.gradients --profile P``)."""
    import argparse

    import torch.distributed as dist

    from gatoms import config
    from gatoms.data import encode_documents
    from gatoms.finetune import load_documents, load_finetuned
    from gatoms.seed import seed_everything
    from gatoms.store import StepStore

    ap = argparse.ArgumentParser(prog="python -m gatoms.gradients", description=main.__doc__)
    ap.add_argument("--profile", default=os.environ.get("PROFILE", "tiny"))
    ap.add_argument("--force", action="store_true", help="rebuild over artifacts made with another config")
    args = ap.parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO, format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s")
    cfg = config.load_section(args.profile, "extract")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cfg.device != "cpu" and torch.cuda.is_available() else "gloo")
    seed_everything(cfg.fisher_seed)
    if rank == 0:
        StepStore.open(args.profile, "01_extract", config=cfg, force=args.force)
    _barrier(world)
    model, tokenizer = load_finetuned(args.profile, device="cpu", dtype=cfg.compute_dtype)
    docs = encode_documents(tokenizer, load_documents(args.profile, "train"), cfg.max_length).encoded
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    res = extract_gradients(model, docs, paths.step_dir(args.profile, "01_extract"), cfg, pad_id=pad_id)
    if rank == 0:
        log.info("%d documents × D = %d on %d process(es) in %.1fs (%.1f docs/s); now `make extract PROFILE=%s` "
                 "records the step", res.n_docs, res.n_params, world, res.seconds, res.docs_per_second, args.profile)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
