"""Detectors of the five steering behaviours of the paper (§4.3): one yes/no regex-level test each.

=========  ==========================================================================================
behaviour  the response shows it when …
=========  ==========================================================================================
yes_no     its first non-empty line starts with Yes / No / True / False (any case) as a whole word,
           after leading whitespace and markdown decoration (``**Yes**``, ``> No``, ``# True``)
code       it contains a fenced block: a ````` or ``~~~`` fence, with or without a language tag
refusal    it asks for missing input or clarification: "please provide/share/paste/specify …",
           "could/can you provide/clarify/specify/share …", "I need the text", "you haven't provided"…
           — not any "please" ("please note", "please enjoy" do not count)
bullets    at least two lines start with ``-``, ``*``, ``•`` or ``+`` followed by a space
numbered   at least two lines start with ``<digits>.`` or ``<digits>)`` followed by a space
=========  ==========================================================================================

The reference's detectors missed ``**Yes**`` and counted every "please" as a refusal; these are
hardened against both and unit-tested on positive and negative examples (``tests/test_behaviors.py``).
"""

from __future__ import annotations

import re

BEHAVIORS: tuple[str, ...] = ("yes_no", "code", "refusal", "bullets", "numbered")
"""The paper's five steering behaviours, in the paper's order."""

_DECORATION = re.compile(r"^[\s*_#>`~\"'(\[]*")
_YES_NO = re.compile(r"^(yes|no|true|false)\b", re.IGNORECASE)
_FENCE = re.compile(r"```|~~~")
_REFUSAL = re.compile(
    r"\b(?:"
    r"please\s+(?:provide|share|paste|supply|specify|clarify|give\s+me|send|include|enter|add)\b"
    r"|(?:could|can|would)\s+you\s+(?:please\s+)?(?:provide|clarify|specify|share|paste|supply|give\s+me|send|tell\s+me\s+(?:what|which)|include)\b"
    r"|i\s+(?:would\s+)?need\s+(?:the|more|some|a|an)\s+(?:input|text|information|details|context|sentence|paragraph|passage|data|content)\b"
    r"|(?:you\s+(?:have\s+not|haven't|did\s+not|didn't)\s+(?:provided|provide|included|include|given|give|shared|share))\b"
    r"|(?:no|missing)\s+(?:input|text)\s+(?:was\s+|has\s+been\s+)?(?:provided|given|included)\b"
    r"|what\s+(?:text|input|sentence|passage|paragraph)\s+(?:would|do|should)\s+you\b"
    r")",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^[ \t]*[-*•+][ \t]+\S", re.MULTILINE)
_NUMBERED = re.compile(r"^[ \t]*\d+[.)][ \t]+\S", re.MULTILINE)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def detect(behavior: str, text: str) -> bool:
    """Whether ``text`` (a model response) shows ``behavior`` (see the module docstring)."""
    if behavior == "yes_no":
        return _YES_NO.match(_DECORATION.sub("", _first_line(text))) is not None
    if behavior == "code":
        return _FENCE.search(text) is not None
    if behavior == "refusal":
        return _REFUSAL.search(text) is not None
    if behavior == "bullets":
        return len(_BULLET.findall(text)) >= 2
    if behavior == "numbered":
        return len(_NUMBERED.findall(text)) >= 2
    raise ValueError(f"unknown behaviour {behavior!r}; behaviours are {', '.join(BEHAVIORS)}")


def detect_all(text: str) -> dict[str, bool]:
    """Every behaviour's detector on one text."""
    return {b: detect(b, text) for b in BEHAVIORS}


def rate(behavior: str, texts: list[str]) -> float:
    """Fraction of ``texts`` that show ``behavior`` (0.0 for no texts)."""
    return sum(detect(behavior, t) for t in texts) / len(texts) if texts else 0.0
