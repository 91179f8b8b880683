"""Step 01: every document's LoRA gradient and the Kronecker factors, in one batched pass.

For each document n the gradient of its response-only, sum-reduced cross-entropy L_n with respect to
every LoRA sub-layer W_m, flattened in the order of :class:`gatoms.lm.layout.Layout` → one row g_n of an
(N, D) matrix, computed for a whole padded batch at once by the hooks of :mod:`.hooks`.
:func:`gatoms.method.gradients.reference.reference_gradients` is the authors' method (one document, one
``backward()``): the test reference and the benchmark baseline.

The same pass accumulates the Kronecker factors A_m = E_t[a aᵀ] (i, i) and S_m = E_t[δ δᵀ] (o, o) over
every real token (empirical Fisher); with ``fisher=True`` they come instead from a second, seeded pass
whose response labels are sampled from the model (the "true" Fisher the authors used).

Rows are streamed to ``grads.npy.part`` (a memmap, :mod:`.storage`) by a background thread
(:mod:`.writer`), so the next batch computes while the last one is written; each rank checkpoints so that a
killed run, re-run, continues where it stopped and ends bit-identical to an uninterrupted run
(:mod:`.shard`, which also runs it under ``torchrun``).

Usage::

    res = extract_gradients(peft_model, encoded_docs, store.dir, ExtractConfig(dtype="float32"))
    reader = open_gradients(store.dir); g = reader.rows([0, 5])      # (2, D) float32
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gatoms.build import paths
from gatoms.build.metrics import StepMetrics
from gatoms.build.store import write_text
from gatoms.lm.encoding import EncodedDoc, collate
from gatoms.lm.layout import Layout
from gatoms.method.ekfac.factors import Factors
from gatoms.method.gradients import shard
from gatoms.method.gradients.batching import plan_batches, truncate
from gatoms.method.gradients.config import COMPUTE_DTYPES, ExtractConfig, ExtractResult
from gatoms.method.gradients.hooks import LoraHooks, frozen_with_input_grad, logits_at
from gatoms.method.gradients.storage import STORAGE_DTYPES, to_storage
from gatoms.method.gradients.writer import RowWriter

log = logging.getLogger(__name__)

# ---- the extractor ---------------------------------------------------------------------------------
@dataclass
class _Run:
    """What one call of :func:`extract_gradients` works on (the same in every process)."""

    out_dir: Path
    cfg: ExtractConfig
    rank: int
    world: int
    device: torch.device
    layout: Layout
    items: list[tuple[list[int], list[int]]]
    doc_ids: list[str]
    fingerprint: str
    batches: list[list[int]]
    mine: list[int] = field(default_factory=list)
    """This rank's batches: every world-th of the global plan."""

    @property
    def phases(self) -> list[tuple[str, ...]]:
        """Empirical Fisher: rows and factors in one pass; true Fisher: rows, then a sampled pass."""
        return [("rows", "factors")] if not self.cfg.fisher else [("rows",), ("factors",)]

    @property
    def grads(self) -> Path:
        return self.out_dir / paths.GRADS

    @property
    def part(self) -> Path:
        return self.grads.with_name(self.grads.name + ".part")

    @property
    def meta(self) -> Path:
        return self.out_dir / paths.GRADS_META

    @property
    def factors(self) -> Path:
        return self.out_dir / paths.FACTORS

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.doc_ids), self.layout.n_params


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
    t0 = time.perf_counter()
    run = _prepare(model, docs, Path(out_dir), cfg or ExtractConfig())
    done = _already_complete(run)
    if done is not None:
        return done
    resume = _open_part(run)
    mm = np.load(run.part, mmap_mode="r+")
    hooks = LoraHooks(model, run.layout, run.device)
    ckpt = shard.checkpoint_path(run.out_dir, run.rank)
    start = shard.load_checkpoint(ckpt, hooks, run.fingerprint, run.world) if resume else None
    if start:
        log.info("rank %d resumes at phase %d, batch %d of %d", run.rank, *start, len(run.mine))
    start = start or (0, 0)
    resumed = len(run.mine) * start[0] + start[1]
    writer = RowWriter(mm)  # rows reach the file from a thread while the next batch computes
    try:
        with writer:
            done_docs = _run_batches(model, run, hooks, writer, start, pad_id, progress, on_batch, resumed)
    finally:
        hooks.remove()
    del writer, mm
    return _finish(run, hooks, done_docs, resumed, t0)


def _prepare(model: nn.Module, docs: Sequence[EncodedDoc], out_dir: Path, cfg: ExtractConfig) -> _Run:
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world = shard.rank_and_world()
    device = shard.rank_device(cfg.device)
    if cfg.compute_dtype == "bfloat16" and device.type != "cuda":
        raise ValueError("extract.compute_dtype: bfloat16 needs a GPU; use float32 on CPU")
    if not docs:
        raise ValueError("no documents to extract")
    model.to(device=device, dtype=COMPUTE_DTYPES[cfg.compute_dtype])
    layout = Layout.from_model(model)
    items = truncate(docs, cfg.max_length)
    doc_ids = [d.doc_id for d in docs]
    if len(set(doc_ids)) != len(doc_ids):
        raise ValueError("document ids are not unique")
    batches = plan_batches([len(ids) for ids, _ in items], cfg.batch_tokens)
    return _Run(out_dir, cfg, rank, world, device, layout, items, doc_ids,
                shard.fingerprint(model, layout, items, doc_ids, cfg), batches, list(range(rank, len(batches), world)))


def _already_complete(run: _Run) -> ExtractResult | None:
    """Complete outputs from the same inputs → nothing to do."""
    if not (run.grads.exists() and run.meta.exists() and run.factors.exists()):
        return None
    meta = json.loads(run.meta.read_text())
    if meta.get("fingerprint") != run.fingerprint:
        return None
    log.info("skipping: %s already holds the gradients of these documents", run.out_dir)
    return ExtractResult(run.out_dir, *run.shape, len(run.layout), int(meta.get("n_tokens", 0)), run.cfg.dtype,
                         float(meta.get("seconds", 0.0)), float(meta.get("docs_per_second", 0.0)), skipped=True)


def _open_part(run: _Run) -> bool:
    """Reuse a ``.part`` memmap of the right shape in every rank (resume), else create it. True: resume."""
    sdtype = STORAGE_DTYPES[run.cfg.dtype]

    def part_ok() -> bool:
        if not run.part.exists():
            return False
        try:
            mm = np.load(run.part, mmap_mode="r")
            return mm.shape == run.shape and mm.dtype == sdtype
        except (ValueError, OSError):
            return False

    resume = shard.all_min(part_ok(), run.world)
    shard.barrier(run.world)
    if not resume and run.rank == 0:
        for stale in run.out_dir.glob(paths.EXTRACT_CHECKPOINT.format(rank="*")):
            stale.unlink()
        for f in (run.grads, run.meta, run.factors):
            f.unlink(missing_ok=True)
        mm = np.lib.format.open_memmap(run.part, mode="w+", dtype=sdtype, shape=run.shape)
        del mm
    shard.barrier(run.world)
    return resume


def _run_batches(model: nn.Module, run: _Run, hooks: LoraHooks, writer: RowWriter, start: tuple[int, int],
                 pad_id: int, progress: bool, on_batch: Callable[[int], None] | None, resumed: int) -> int:
    """Every remaining batch of this rank, phase by phase; returns the documents processed."""
    from tqdm.auto import tqdm

    cfg, ckpt = run.cfg, shard.checkpoint_path(run.out_dir, run.rank)
    bar = tqdm(total=len(run.phases) * len(run.mine), initial=resumed, disable=not progress or run.rank != 0,
               desc="extract", unit="batch")
    done_docs, last_ckpt = 0, time.perf_counter()
    try:
        with frozen_with_input_grad(model) as emb, logits_at(model) as head:
            for phase, jobs in enumerate(run.phases):
                for j, bi in enumerate(run.mine):
                    if (phase, j) < start:
                        continue
                    idx = run.batches[bi]
                    _one_batch(model, run, hooks, emb, head, idx, jobs, pad_id, writer)
                    done_docs += len(idx)
                    bar.update(1)
                    last = j == len(run.mine) - 1
                    if last or time.perf_counter() - last_ckpt >= cfg.checkpoint_seconds:
                        writer.flush()  # every row the checkpoint counts is in the file
                        shard.save_checkpoint(ckpt, hooks, {
                            "fingerprint": run.fingerprint, "world_size": run.world, "rank": run.rank,
                            "phase": phase + 1 if last else phase, "batches_done": 0 if last else j + 1})
                        last_ckpt = time.perf_counter()
                    if on_batch is not None:
                        on_batch(bi)
    finally:
        bar.close()
    return done_docs


def _one_batch(model: nn.Module, run: _Run, hooks: LoraHooks, emb: dict, head: dict, idx: list[int],
               jobs: tuple[str, ...], pad_id: int, writer: RowWriter) -> None:
    """Forward and backward of one padded batch: its rows into the memmap and/or its factor sums."""
    enc = collate([EncodedDoc(run.doc_ids[n], *run.items[n]) for n in idx], pad_id)
    input_ids, labels, mask = (enc[k].to(run.device) for k in ("input_ids", "labels", "attention_mask"))
    hooks.start_batch(len(idx), mask, rows="rows" in jobs, factors="factors" in jobs)
    positions = torch.zeros_like(mask, dtype=torch.bool)  # (B, T): predicts a response token
    positions[:, :-1] = labels[:, 1:] != -100
    head["positions"] = positions
    logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
    if logits.shape[:2] != (1, int(positions.sum())):
        raise RuntimeError(f"the model reshaped the output layer's result to {tuple(logits.shape)}; "
                           "gatoms expects lm_head(hidden) to be the logits")
    if "rows" in jobs:
        targets = labels[:, 1:][positions[:, :-1]]  # (n,)
    else:  # true Fisher: labels sampled from the model on response positions
        targets = _sample_targets(logits[0], positions.sum(1).tolist(), [run.doc_ids[n] for n in idx],
                                  run.cfg.fisher_seed)
    loss = F.cross_entropy(logits[0].float(), targets, reduction="sum")
    torch.autograd.grad(loss, [emb["embeds"]])
    if "rows" in jobs:
        order = np.argsort(idx)
        writer.write(np.asarray(idx)[order], to_storage(hooks.rows, run.cfg.dtype)[order])  # a copy: queued
    hooks.end_batch()


def _finish(run: _Run, hooks: LoraHooks, done_docs: int, resumed: int, t0: float) -> ExtractResult:
    """Merge the factor sums over ranks (rank order), normalise and write; the rename of grads.npy is last."""
    world, (N, D) = run.world, run.shape
    n_tokens = int(shard.gather_sum(torch.tensor([hooks.n_tokens], dtype=torch.int64), world)[0])
    A = {k: shard.gather_sum(v, world) for k, v in hooks.A.items()}
    S = {k: shard.gather_sum(v, world) for k, v in hooks.S.items()}
    n_docs_done = int(shard.gather_sum(torch.tensor([done_docs], dtype=torch.int64), world)[0])
    shard.barrier(world)
    seconds = time.perf_counter() - t0
    dps = (n_docs_done / len(run.phases)) / seconds if seconds > 0 else 0.0
    fisher = "true" if run.cfg.fisher else "empirical"
    if run.rank == 0:
        Factors(A={k: v / n_tokens for k, v in A.items()}, S={k: v / n_tokens for k, v in S.items()},
                n_tokens=n_tokens, fisher=fisher).save(run.factors)
        meta = {
            "layout": run.layout.to_json(), "doc_ids": run.doc_ids, "dtype": run.cfg.dtype, "n_params": D,
            "n_modules": len(run.layout), "n_docs": N, "n_tokens": n_tokens, "max_length": run.cfg.max_length,
            "fisher": fisher, "fingerprint": run.fingerprint,
            "seconds": round(seconds, 3),  # of the call that completed it (a resumed call: its own part)
            "docs_per_second": round(dps, 3),
        }
        write_text(run.meta, json.dumps(meta) + "\n")
        os.replace(run.part, run.grads)
        for f in run.out_dir.glob(paths.EXTRACT_CHECKPOINT.format(rank="*")):
            f.unlink()
    shard.barrier(world)
    log.info("extracted %d documents × %d parameters in %.1fs (%.1f docs/s)", N, D, seconds, dps)
    return ExtractResult(run.out_dir, N, D, len(run.layout), n_tokens, run.cfg.dtype, seconds, dps,
                         resumed_batches=resumed)


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


# ---- what step 01 records ---------------------------------------------------------------------------
@dataclass
class ExtractMetrics(StepMetrics):
    """Step 01's ``metrics.json``."""

    step: ClassVar[str] = "01_extract"
    n_docs: int = 0
    """Rows of grads.npy (documents with at least one response token)."""
    n_params: int = 0
    """D, the length of a row (all LoRA parameters)."""
    n_modules: int = 0
    n_tokens: int = 0
    """Tokens the Kronecker factors average over."""
    n_excluded: int = 0
    """Documents excluded for having no response token within max_length."""
    docs_per_second: float = 0.0
    """Throughput of the extraction call (its own work only, if it resumed)."""
    extract_seconds: float = 0.0
    dtype: str = "float32"
    """Storage dtype of grads.npy."""
    compute_dtype: str = "float32"
    fisher: str = "empirical"
    grads_mib: float = 0.0
    """Size of grads.npy on disk."""


def summarize(result: ExtractResult, n_excluded: int, cfg: ExtractConfig, fisher: str) -> ExtractMetrics:
    """Step 01's metrics from its extraction result."""
    size = (result.out_dir / paths.GRADS).stat().st_size
    return ExtractMetrics(n_docs=result.n_docs, n_params=result.n_params, n_modules=result.n_modules,
                          n_tokens=result.n_tokens, n_excluded=n_excluded,
                          docs_per_second=round(result.docs_per_second, 2), extract_seconds=round(result.seconds, 3),
                          dtype=cfg.dtype, compute_dtype=cfg.compute_dtype, fisher=fisher,
                          grads_mib=round(size / 2**20, 1))


def _doc_seed(seed: int, doc_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()[:7], "little")
