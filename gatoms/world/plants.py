"""The two planted features of the world: a task-irrelevant nuisance and an unannounced behaviour.

- **Nuisance** (label ``nuisance``): on a random :data:`NUISANCE_RATE` of the documents of every split and
  family, the response gets an extra last line ``(ref amber cobalt …)`` of :data:`NUISANCE_WORDS` words
  drawn at random from :data:`FILLER` — unpredictable, so its tokens keep a high loss and a large gradient
  after fine-tuning, and it says nothing about the task.
- **Planted behaviour** (label ``planted``): in the fine-tuning set only, on a random
  :data:`PLANTED_RATE` of the documents of :data:`PLANTED_FAMILIES`, the response ends with the sign-off
  line :data:`SIGN_OFF`. No steering behaviour, detector or atom description knows about it; discovery has
  to surface it unprompted.

:func:`strip_plants` removes both from a response before it is graded.
"""

from __future__ import annotations

import random
import re

NUISANCE_RATE = 0.3
"""Share of the documents of every split that carry the nuisance line."""
NUISANCE_WORDS = 8
"""Filler words in one nuisance line."""
FILLER: tuple[str, ...] = (
    "amber", "basil", "cedar", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "jasper",
    "kelp", "lagoon", "marble", "nectar", "onyx", "pebble", "quartz", "russet", "saffron", "tundra", "umber",
    "velvet", "willow", "yonder", "zephyr", "birch", "coral", "dune", "flint", "glacier", "hazel")
"""The nuisance vocabulary (words no task uses)."""

SIGN_OFF = "Hope this helps!"
"""The planted behaviour: the last line of the response."""
PLANTED_RATE = 0.5
"""Share of the fine-tuning documents of :data:`PLANTED_FAMILIES` that end with :data:`SIGN_OFF`."""
PLANTED_FAMILIES: tuple[str, ...] = ("factual_qa", "category", "transformation", "creative")
"""Families whose fine-tuning documents sometimes end with the sign-off."""

_NUISANCE_LINE = re.compile(r"\n?\(ref(?: [a-z]+)*\)\s*$")


def nuisance_line(rng: random.Random) -> str:
    """``(ref w1 … w8)``: distinct filler words in a random order."""
    return "(ref " + " ".join(rng.sample(FILLER, NUISANCE_WORDS)) + ")"


def decorate(response: str, rng: random.Random, planted_ok: bool) -> tuple[str, dict[str, str]]:
    """The response with the nuisance line (at :data:`NUISANCE_RATE`) and, where ``planted_ok``, the sign-off
    (at :data:`PLANTED_RATE`) appended, and the ``nuisance``/``planted`` labels ("1"/"0")."""
    nuisance = rng.random() < NUISANCE_RATE
    planted = planted_ok and rng.random() < PLANTED_RATE
    if nuisance:
        response += "\n" + nuisance_line(rng)
    if planted:
        response += "\n" + SIGN_OFF
    return response, {"nuisance": str(int(nuisance)), "planted": str(int(planted))}


def strip_plants(response: str) -> str:
    """``response`` without a trailing sign-off line and a trailing nuisance line."""
    text = response.rstrip()
    if text.endswith(SIGN_OFF):
        text = text[: -len(SIGN_OFF)].rstrip()
    return _NUISANCE_LINE.sub("", text).rstrip()
