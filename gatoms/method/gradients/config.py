"""The settings of step 01 (section ``extract:`` of a profile) and what one extraction call did."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gatoms.method.gradients.storage import STORAGE_DTYPES

COMPUTE_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


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
