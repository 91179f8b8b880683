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

from dataclasses import dataclass, field


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
