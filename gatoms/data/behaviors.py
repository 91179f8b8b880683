"""Detectors of the five steering behaviours of the paper (§4.3): one yes/no test each, on a response.

=========  ==========================================================================================
behaviour  the response shows it when …
=========  ==========================================================================================
yes_no     its first non-empty line starts with Yes / No / True / False (any case) as a whole word,
           after leading whitespace and markdown decoration (``**Yes**``, ``> No``, ``# True``)
code       it opens a fenced block (a ````` or ``~~~`` fence, with or without a language tag) with at
           least one non-empty line inside (an empty fence is not code)
refusal    it asks for missing input or clarification: "please provide/share/paste/specify …",
           "could/can you provide/clarify/specify/share …", "I need the text", "you haven't provided"…
           — not any "please" ("please note", "please enjoy" do not count)
bullets    at least two lines start with ``-``, ``*``, ``•`` or ``+`` followed by a space, and at least
           two of those items differ (``- Fox`` five times is one item, not a list)
numbered   at least two lines start with ``<digits>.`` or ``<digits>)`` followed by a space, and at
           least two of those items differ
=========  ==========================================================================================

**Degenerate text never shows a behaviour.** A response that loops (:func:`degenerate`: a line of words
repeated three or more times, or a run of 1–4 words repeated four or more times in a row) counts for no
behaviour: a model broken by a large step often emits ``- Spoon\\n- Spoon\\n- Spoon`` or ``Yes Yes Yes Yes``,
and that is damage, not the behaviour. The reference's detectors missed ``**Yes**`` and counted every
"please" as a refusal; these are hardened against both and against degenerate text, and unit-tested on
positive, negative and crafted degenerate examples (``tests/data/test_behaviors.py``).
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
_BULLET = re.compile(r"^[ \t]*[-*•+][ \t]+(\S.*)$", re.MULTILINE)
_NUMBERED = re.compile(r"^[ \t]*\d+[.)][ \t]+(\S.*)$", re.MULTILINE)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")
_WORD = re.compile(r"\w")

LINE_REPEATS = 3
"""A line of words that occurs this often (after list markers are stripped) makes a response a loop."""
RUN_REPEATS = 4
"""A run of 1–4 tokens repeated this many times in a row makes a response a loop."""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _distinct(items: list[str]) -> int:
    return len({" ".join(i.lower().split()) for i in items})


def _repeated_run(tokens: list[str], max_len: int = 4, repeats: int = RUN_REPEATS) -> bool:
    """Whether some run of 1..max_len tokens with a letter or digit in it occurs ``repeats`` times back to back."""
    for n in range(1, max_len + 1):
        for start in range(0, len(tokens) - n * repeats + 1):
            unit = tokens[start:start + n]
            if any(_WORD.search(t) for t in unit) and all(tokens[start + k * n:start + (k + 1) * n] == unit for k in range(1, repeats)):
                return True
    return False


def degenerate(text: str) -> bool:
    """Whether ``text`` is a loop rather than an answer: a line with letters or digits in it occurs
    :data:`LINE_REPEATS` or more times (list markers and numbering ignored, so ``1. Boil``, ``2. Boil``,
    ``3. Boil`` repeat), or a run of 1–4 whitespace-separated tokens (with a letter or digit among them) occurs
    :data:`RUN_REPEATS` times in a row (``Yes Yes Yes Yes``). Lines of punctuation only (``}``, a fence) never count."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        key = " ".join(_LIST_MARKER.sub("", line).lower().split())
        if key and _WORD.search(key):
            counts[key] = counts.get(key, 0) + 1
            if counts[key] >= LINE_REPEATS:
                return True
    return _repeated_run(text.lower().split())


def _fenced_content(text: str) -> bool:
    """A fence is opened and at least one non-empty line follows it before the closing fence."""
    m = _FENCE.search(text)
    if m is None:
        return False
    rest = text[m.end():].split("\n", 1)  # the fence line (language tag), then the body
    if len(rest) < 2:
        return False
    body = _FENCE.split(rest[1], maxsplit=1)[0]
    return bool(body.strip())


def detect(behavior: str, text: str) -> bool:
    """Whether ``text`` (a model response) shows ``behavior`` (see the module docstring); degenerate text
    (:func:`degenerate`) shows none."""
    if behavior not in BEHAVIORS:
        raise ValueError(f"unknown behaviour {behavior!r}; behaviours are {', '.join(BEHAVIORS)}")
    if degenerate(text):
        return False
    if behavior == "yes_no":
        return _YES_NO.match(_DECORATION.sub("", _first_line(text))) is not None
    if behavior == "code":
        return _fenced_content(text)
    if behavior == "refusal":
        return _REFUSAL.search(text) is not None
    items = (_BULLET if behavior == "bullets" else _NUMBERED).findall(text)
    return len(items) >= 2 and _distinct(items) >= 2


def detect_all(text: str) -> dict[str, bool]:
    """Every behaviour's detector on one text."""
    return {b: detect(b, text) for b in BEHAVIORS}


def rate(behavior: str, texts: list[str]) -> float:
    """Fraction of ``texts`` that show ``behavior`` (0.0 for no texts)."""
    return sum(detect(behavior, t) for t in texts) / len(texts) if texts else 0.0
