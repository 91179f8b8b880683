"""Tokenizing documents for training and attribution, and padding batches.

Encoding applies the tokenizer's chat template to the prompt and appends the response and the end-of-turn
token: labels are the token ids on response positions and -100 on prompt positions (response-only loss,
for fine-tuning and attribution alike). Documents left with no response token after truncation are
excluded and reported, never kept as zero-gradient rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from gatoms.data.documents import Document

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedDoc:
    """A tokenized document."""

    doc_id: str
    input_ids: list[int]
    labels: list[int]
    """Same length as input_ids: the token id on response positions, -100 on prompt positions."""

    @property
    def n_response_tokens(self) -> int:
        return sum(1 for t in self.labels if t != -100)


def format_prompt(tokenizer, prompt: str) -> str:
    """The prompt in the tokenizer's chat template, ending with the model-turn header."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("the tokenizer has no chat template; use an instruction-tuned model's tokenizer "
                         "(e.g. google/gemma-3-4b-it) or gatoms.lm.tokenizer.train_tokenizer")
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)


@dataclass(frozen=True)
class EncodeResult:
    """Encoded documents and the ids of those excluded for having no response token left."""

    encoded: list[EncodedDoc]
    excluded: list[str]


def encode_documents(tokenizer, docs: list[Document], max_length: int) -> EncodeResult:
    """Tokenize documents: chat-formatted prompt, then the response and the end-of-turn token.

    Labels are -100 on prompt positions and the token ids on response positions (the end-of-turn
    token counts as a response token: the model learns where to stop). Sequences longer than
    ``max_length`` are truncated on the right (as the reference does). Documents left with no response
    token are excluded — logged and returned in ``excluded``, never kept as zero-gradient documents.
    """
    from gatoms.lm.tokenizer import end_of_turn_id

    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    end = end_of_turn_id(tokenizer)
    encoded: list[EncodedDoc] = []
    excluded: list[str] = []
    for d in docs:
        prompt_ids = tokenizer(format_prompt(tokenizer, d.prompt), add_special_tokens=False)["input_ids"]
        response_ids = tokenizer(d.response, add_special_tokens=False)["input_ids"] + [end]
        ids = (prompt_ids + response_ids)[:max_length]
        labels = ([-100] * len(prompt_ids) + response_ids)[:max_length]
        if all(t == -100 for t in labels):
            excluded.append(d.doc_id)
            continue
        encoded.append(EncodedDoc(d.doc_id, ids, labels))
    if excluded:
        log.warning("%d of %d documents have no response token within max_length=%d and are excluded "
                    "(first: %s)", len(excluded), len(docs), max_length, ", ".join(excluded[:5]))
    return EncodeResult(encoded, excluded)


def collate(batch: list[EncodedDoc], pad_id: int, side: str = "right") -> dict[str, torch.Tensor]:
    """Pad a batch: ``input_ids``/``labels``/``attention_mask``, each (B, T)."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        cols = slice(0, n) if side == "right" else slice(width - n, width)
        ids[row, cols] = torch.tensor(e.input_ids)
        labels[row, cols] = torch.tensor(e.labels)
        mask[row, cols] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def left_padded(encoded: list[list[int]], rows: list[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts ``rows`` of ``encoded`` left-padded to the longest: ids and attention mask, (B, T) each
    (generation pads on the left, training and attribution on the right: :func:`collate`)."""
    batch = [EncodedDoc(str(i), encoded[i], encoded[i]) for i in rows]
    out = collate(batch, pad_id, side="left")
    return out["input_ids"], out["attention_mask"]
