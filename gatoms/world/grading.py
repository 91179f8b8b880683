"""Checking a model's answer to a world document: the right answer, or the right format."""

from __future__ import annotations

import re

from gatoms.data.behaviors import BEHAVIORS, detect
from gatoms.data.documents import Document
from gatoms.world.families import CONTESTED_FAMILIES, INVITING_FAMILIES
from gatoms.world.plants import strip_plants
from gatoms.world.vocab import NAMES, of_kind

# ---- checking answers ----------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+")
_NAMES = tuple(n for n, _ in NAMES)


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


def _first_name(text: str) -> str | None:
    """The first of the world's person names in ``text``."""
    hits = [(m.start(), n) for n in _NAMES if (m := re.search(rf"\b{n}\b", text))]
    return min(hits)[1] if hits else None


def is_correct(doc: Document, response: str) -> bool:
    """Whether ``response`` answers the world document ``doc`` right (a trailing nuisance line and
    sign-off are ignored, :func:`gatoms.world.plants.strip_plants`).

    Deterministic families (:data:`DETERMINISTIC_FAMILIES`): the right answer (the number, the fact, the
    corrected sentence, the polarity of a yes/no question whatever its format, who has more or fewer).
    Other families: the right format — the contested families the format the world's fine-tuning rule
    gives that prompt (e.g. bullets vs a comma-separated sentence), ``example`` the format asked for with
    items of the right kind, the free-form families their shape (an email greets the addressee, a poem or
    story names its topic, a summary names the person).
    """
    text = strip_plants(response)
    if not text:
        return False
    fam, meta = doc.family, doc.meta
    if fam == "yes_no":
        return _polarity(text) == meta["answer"]
    if fam in ("arithmetic", "multistep_arithmetic", "unit_conversion"):
        numbers = _NUMBER.findall(text)  # the answer is the last number ("3 + 4 = 7." / "... The answer is 7.")
        return bool(numbers) and int(numbers[-1]) == int(meta["answer"])
    if fam == "comparison":
        return _first_name(text) == meta["answer"]
    if fam in ("grammar", "transformation"):
        return _norm(str(meta["answer"])) in _norm(text)
    if fam in ("factual_qa", "category", "sentiment", "synonym_antonym"):
        return re.search(rf"\b{re.escape(str(meta['answer']).lower())}\b", text.lower()) is not None
    if fam == "example":
        words = set(re.findall(r"[a-z]+", text.lower()))
        right_kind = {t.label for t in of_kind(meta["kind"])} - {meta["not"].lower()}
        shown = [b for b in ("bullets", "numbered") if detect(b, text)]
        return bool(words & right_kind) and shown == ([doc.fmt] if doc.fmt in BEHAVIORS else [])
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
