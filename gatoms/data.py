"""Documents: the unit of everything downstream (one prompt, one response, optional labels).

Sources: the synthetic world (:mod:`gatoms.world`) or a user's JSONL file, where each line is either
``{"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}`` (the
paper's format) or ``{"prompt": ..., "response": ...}``; optional ``id``, ``family``, ``fmt`` fields.
Bad lines raise :class:`DataError` naming the file and line.

Encoding applies the tokenizer's chat template to the prompt and appends the response: labels are the
token ids on response positions and -100 on prompt positions (response-only loss, for fine-tuning and
attribution alike). Documents left with no response token after truncation are excluded and reported.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class DataError(ValueError):
    """Malformed input data; the message names the file and line."""


@dataclass(frozen=True)
class Document:
    """One instruction–response pair."""

    doc_id: str
    prompt: str
    response: str
    family: str | None = None
    """True task family (synthetic world) or a user-supplied label; None when unknown."""
    fmt: str | None = None
    """Response format label (e.g. ``bullets``, ``numbered``, ``code``, ``yes_no``, ``refusal``, ``plain``)."""
    meta: dict = field(default_factory=dict, compare=False)


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


# ---- reading and writing JSONL -------------------------------------------------------------------------

KNOWN_ROLES: tuple[str, ...] = ("system", "user", "assistant")
"""Roles of a ``messages`` conversation; a system message is folded into the prompt as Gemma does."""


def _document_from_record(record: Any, where: str, lineno: int) -> Document:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise DataError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
        system: list[str] = []
        turns: list[tuple[str, str]] = []
        for k, m in enumerate(messages):
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise DataError(f"{where}: messages[{k}] must be an object with 'role' and 'content'")
            role, content = m["role"], m["content"]
            if role not in KNOWN_ROLES:
                raise DataError(f"{where}: messages[{k}] has unknown role {role!r}; known roles: {list(KNOWN_ROLES)}")
            if not isinstance(content, str):
                raise DataError(f"{where}: messages[{k}].content must be a string, got {type(content).__name__}")
            if role == "system":
                if turns:
                    raise DataError(f"{where}: messages[{k}]: a system message must come first")
                system.append(content)
            else:
                turns.append((role, content))
        if [r for r, _ in turns] != ["user", "assistant"]:
            raise DataError(f"{where}: expected one user message followed by one assistant message "
                            f"(after an optional system message), got roles {[r for r, _ in turns]}")
        prompt = "\n\n".join([*system, turns[0][1]]) if system else turns[0][1]
        response = turns[1][1]
    elif "prompt" in record or "response" in record:
        for key in ("prompt", "response"):
            if key not in record:
                raise DataError(f"{where}: missing field {key!r} (need 'prompt' and 'response', or 'messages')")
            if not isinstance(record[key], str):
                raise DataError(f"{where}: field {key!r} must be a string, got {type(record[key]).__name__}")
        prompt, response = record["prompt"], record["response"]
    else:
        raise DataError(f"{where}: no 'messages' and no 'prompt'/'response' fields; got keys {sorted(record)}")
    if not prompt.strip():
        raise DataError(f"{where}: empty prompt")
    if not response.strip():
        raise DataError(f"{where}: empty response (a document needs response tokens to have a gradient)")
    for key in ("id", "family", "fmt"):
        if key in record and record[key] is not None and not isinstance(record[key], str):
            raise DataError(f"{where}: field {key!r} must be a string, got {type(record[key]).__name__}")
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise DataError(f"{where}: field 'meta' must be an object, got {type(meta).__name__}")
    doc_id = record.get("id") or f"line-{lineno:06d}"
    return Document(doc_id, prompt, response, record.get("family"), record.get("fmt"), meta)


def read_jsonl(path: str | Path) -> list[Document]:
    """Read documents from a JSONL file (see the module docstring for the two accepted shapes).

    Blank lines are skipped. Malformed JSON, unknown roles, missing or empty responses, wrong types
    and duplicate ids raise :class:`DataError` naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such data file (set finetune.data to an existing JSONL file or 'world')")
    docs: list[Document] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
            doc = _document_from_record(record, where, lineno)
            if doc.doc_id in seen:
                raise DataError(f"{where}: duplicate id {doc.doc_id!r} (first on line {seen[doc.doc_id]})")
            seen[doc.doc_id] = lineno
            docs.append(doc)
    if not docs:
        raise DataError(f"{path}: no documents")
    return docs


def write_jsonl(path: str | Path, docs: list[Document]) -> None:
    """Write documents as ``{"id", "prompt", "response", "family", "fmt", "meta"}`` lines, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for d in docs:
            record = {"id": d.doc_id, "prompt": d.prompt, "response": d.response,
                      "family": d.family, "fmt": d.fmt, "meta": d.meta}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


# ---- encoding ------------------------------------------------------------------------------------------


def format_prompt(tokenizer, prompt: str) -> str:
    """The prompt in the tokenizer's chat template, ending with the model-turn header."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("the tokenizer has no chat template; use an instruction-tuned model's tokenizer "
                         "(e.g. google/gemma-3-4b-it) or gatoms.tokenizer.train_tokenizer")
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
    from gatoms.tokenizer import end_of_turn_id

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
    import torch

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
