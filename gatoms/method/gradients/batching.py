"""Batches of documents for the extraction: one plan from the lengths alone (the same in every process),
and truncation that refuses a document left without a response token."""

from __future__ import annotations

from collections.abc import Sequence

from gatoms.lm.encoding import EncodedDoc


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


def truncate(docs: Sequence[EncodedDoc], max_length: int) -> list[tuple[list[int], list[int]]]:
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
            "Drop them (gatoms.lm.encoding.encode_documents excludes them) or raise extract.max_length."
        )
    return out
