"""Running the extraction on several processes (torchrun) and resuming it: collectives and checkpoints.

Under ``torchrun`` each rank takes every world_size-th batch of one global batch plan (so every row is
computed exactly as in a single process) and writes its rows into the shared memmap; rank 0 sums the
factors. Each rank checkpoints its factor partial sums and batch count (rows flushed first, atomically),
so a killed run, re-run with the same number of processes, continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gatoms.build import paths
from gatoms.build.store import save_safetensors
from gatoms.lm.layout import Layout
from gatoms.lm.model import resolve_device

log = logging.getLogger(__name__)


def rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def rank_device(spec: str) -> torch.device:
    """The device of this process: :func:`gatoms.lm.model.resolve_device`, with ``cuda`` meaning
    ``cuda:LOCAL_RANK`` under torchrun (and made the current device: NCCL collectives run on it)."""
    if spec == "cuda" and torch.distributed.is_available() and torch.distributed.is_initialized():
        spec = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    device = resolve_device(spec)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    return device


def barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def _comm_device() -> torch.device:
    """Where collective tensors must live: the rank's GPU for NCCL, else the CPU (gloo)."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_min(flag: bool, world: int) -> bool:
    if world == 1:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_comm_device())
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
    return bool(t.item())


def gather_sum(t: torch.Tensor, world: int) -> torch.Tensor:
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


def checkpoint_path(out_dir: Path, rank: int) -> Path:
    return out_dir / paths.EXTRACT_CHECKPOINT.format(rank=rank)


def save_checkpoint(path: Path, hooks, meta: dict) -> None:

    tensors = {f"A.{k}": v.cpu() for k, v in hooks.A.items()} | {f"S.{k}": v.cpu() for k, v in hooks.S.items()}
    tensors["n_tokens"] = torch.tensor([hooks.n_tokens], dtype=torch.int64)
    save_safetensors(path, tensors, metadata={k: str(v) for k, v in meta.items()})


def load_checkpoint(path: Path, hooks, fingerprint: str, world: int) -> tuple[int, int] | None:
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


def fingerprint(model: nn.Module, layout: Layout, items, doc_ids, cfg) -> str:
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
