"""Documents: the unit of everything downstream (one prompt, one response, optional labels), and the
steering evaluation prompts.

Sources: the synthetic world (:mod:`gatoms.world`) or a user's JSONL file, where each line is either
``{"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}`` (the
paper's format) or ``{"prompt": ..., "response": ...}``; optional ``id``, ``family``, ``fmt`` fields.
Bad lines raise :class:`DataError` naming the file and line. Tokenizing documents is
:mod:`gatoms.lm.encoding`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gatoms.build.store import write_text

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
    """Generator details (e.g. the world's wording and the answer its grader checks)."""
    labels: dict[str, str] = field(default_factory=dict, compare=False)
    """Further ground-truth labels beyond ``family`` and ``fmt`` (e.g. ``topic``): name → value. They
    travel into the row index of the gradients and the discovery metrics; none are needed."""


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
    labels = record.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise DataError(f"{where}: field 'labels' must be an object of strings, got {labels!r}")
    doc_id = record.get("id") or f"line-{lineno:06d}"
    return Document(doc_id, prompt, response, record.get("family"), record.get("fmt"), meta, labels)


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
    """Write documents as ``{"id", "prompt", "response", "family", "fmt", "meta"[, "labels"]}`` lines,
    atomically."""
    lines = []
    for d in docs:
        record = {"id": d.doc_id, "prompt": d.prompt, "response": d.response, "family": d.family, "fmt": d.fmt,
                  "meta": d.meta}
        if d.labels:
            record["labels"] = d.labels
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    write_text(Path(path), "".join(lines))


# ---- steering evaluation prompts ------------------------------------------------------------------


@dataclass(frozen=True)
class EvalPrompt:
    """One steering-evaluation prompt."""

    behavior: str
    """One of :data:`gatoms.data.behaviors.BEHAVIORS`."""
    kind: Literal["inviting", "control"]
    prompt: str
    prompt_id: str
    family: str | None = None
    """The world family the prompt was drawn from (None for user-supplied prompts)."""
    expected: bool | None = None
    """Whether the world's fine-tuning rule answers this prompt with the behaviour (None: unknown)."""


def write_eval_prompts(path: str | Path, prompts: list[EvalPrompt]) -> None:
    """Write evaluation prompts as JSONL, atomically."""
    write_text(Path(path), "".join(json.dumps(dataclasses.asdict(p), ensure_ascii=False) + "\n" for p in prompts))


def read_eval_prompts(path: str | Path) -> list[EvalPrompt]:
    """Evaluation prompts written by :func:`write_eval_prompts`."""
    with open(path, encoding="utf-8") as f:
        return [EvalPrompt(**json.loads(line)) for line in f if line.strip()]
