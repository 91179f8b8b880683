"""``torchrun --nproc_per_node N -m gatoms.method.gradients --profile P``: step 01's extraction on N
processes (gloo on CPU, NCCL on GPUs: one GPU per process)."""

from __future__ import annotations

import logging
import os

import torch

from gatoms.build import paths
from gatoms.method.gradients import shard
from gatoms.method.gradients.extract import extract_gradients

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """``torchrun --nproc_per_node N -m gatoms.method.gradients --profile P``: the extraction of step 01 sharded
    over N processes (gloo on CPU, NCCL on GPUs: one GPU per process). Writes the gradients and factors
    into ``artifacts/<P>/01_extract/``; then ``make extract PROFILE=P`` runs the notebook, which finds
    them complete (same model, documents and settings), skips the extraction and records the step.
    Also works as a single process (``python -m gatoms.method.gradients --profile P``)."""
    import argparse

    import torch.distributed as dist

    from gatoms.build import config
    from gatoms.build.seed import seed_everything
    from gatoms.build.store import StepStore
    from gatoms.lm.encoding import encode_documents
    from gatoms.lm.sources import load_documents, load_finetuned

    ap = argparse.ArgumentParser(prog="python -m gatoms.method.gradients", description=main.__doc__)
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
    shard.barrier(world)
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
