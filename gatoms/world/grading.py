"""Checking a model's answer to a world document: the right answer, or the right format."""

from __future__ import annotations

import re

from gatoms.data.behaviors import BEHAVIORS, detect
from gatoms.data.documents import Document
from gatoms.world.families import CONTESTED_FAMILIES, INVITING_FAMILIES
from gatoms.world.vocab import CATEGORIES

# ---- checking answers ----------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+")


def _norm(text: str) -> str:
    return " ".join(text.strip().lower().split())


def _polarity(response: str) -> bool | None:
    """Yes/True → True, No/False → False, prose → whether it lacks ``not``; None for an empty answer."""
    words = re.findall(r"[a-z]+", response.lower())
    if not words:
        return None
    if words[0] in ("yes", "true"):
        return True
    if words[0] in ("no", "false"):
        return False
    first_sentence = re.split(r"[.\n]", response.strip(), maxsplit=1)[0].lower()
    return " not " not in f" {first_sentence} "


def is_correct(doc: Document, response: str) -> bool:
    """Whether ``response`` answers the world document ``doc`` right.

    Deterministic families (:data:`DETERMINISTIC_FAMILIES`): the right answer (the number, the fact,
    the corrected sentence, the polarity of a yes/no question whatever its format). Other families:
    the right format — the contested families the format the world's fine-tuning rule gives that
    prompt (e.g. bullets vs a comma-separated sentence), the free-form families their shape (an email
    greets the addressee, a poem has two lines, a summary names the person).
    """
    text = response.strip()
    if not text:
        return False
    fam, meta = doc.family, doc.meta
    if fam == "yes_no":
        return _polarity(text) == meta["answer"]
    if fam in ("arithmetic", "multistep_arithmetic", "unit_conversion", "comparison"):
        numbers = _NUMBER.findall(text)
        if not numbers:
            return False
        # The answer is the last number of the response ("3 + 4 = 7." / "... The answer is 7.")
        # except for comparisons, which lead with it ("7 is bigger than 4.").
        got = numbers[0] if fam == "comparison" else numbers[-1]
        return int(got) == int(meta["answer"])
    if fam in ("grammar", "transformation"):
        return _norm(text) == _norm(str(meta["answer"]))
    if fam in ("factual_qa", "category", "sentiment", "synonym_antonym"):
        return re.search(rf"\b{re.escape(str(meta['answer']).lower())}\b", text.lower()) is not None
    if fam == "example":
        words = set(re.findall(r"[a-z]+", text.lower()))
        return bool(words & (set(CATEGORIES[meta["category"]]) - {meta["not"]}))
    if fam in CONTESTED_FAMILIES:
        behaviours = [b for b, fams in INVITING_FAMILIES.items() if fam in fams]
        if doc.fmt in BEHAVIORS:
            return detect(doc.fmt, text)
        return not any(detect(b, text) for b in behaviours)
    if fam == "summarization":
        return str(meta["answer"]) in text and "\n" not in text
    if fam == "email":
        return text.startswith(f"Hi {meta['answer']},") and len(text.splitlines()) >= 3
    if fam == "creative":
        return str(meta["answer"]) in text.lower()
    raise ValueError(f"is_correct: unknown family {fam!r} of document {doc.doc_id}")
