"""Step 01: per-document LoRA gradients (paper §3.1) and the Kronecker factors of the same pass.

- :mod:`.extract` — :func:`extract_gradients`, batched, streamed, resumable; :class:`ExtractConfig`.
- :mod:`.hooks` — the forward/tensor hooks that give G_n = Σ_t δ_t a_tᵀ for a whole batch.
- :mod:`.storage` — the (N, D) memmap in its storage dtype, :class:`GradientReader`, the row index.
- :mod:`.shard` — torchrun sharding and resume checkpoints.
- :mod:`.reference` — the authors' one-document-one-backward loop (test reference, benchmark baseline).

``python -m gatoms.method.gradients --profile P`` (or under ``torchrun``) runs step 01's extraction alone.
"""

from gatoms.method.gradients.batching import plan_batches
from gatoms.method.gradients.config import ExtractConfig, ExtractResult
from gatoms.method.gradients.extract import extract_gradients
from gatoms.method.gradients.reference import reference_gradients, response_loss
from gatoms.method.gradients.storage import (STORAGE_DTYPES, GradientReader, RowIndex, from_storage, load_rows,
                                             open_gradients, to_storage)

__all__ = ["STORAGE_DTYPES", "ExtractConfig", "ExtractResult", "GradientReader", "RowIndex", "extract_gradients",
           "from_storage", "load_rows", "open_gradients", "plan_batches", "reference_gradients", "response_loss",
           "to_storage"]
