"""One generated prompt/response, and the rule that decides a contested family's format."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Sample:
    """One generated prompt/response before it becomes a :class:`~gatoms.data.documents.Document`;
    ``meta["topic"]`` is the label of its topic (an entity of :data:`gatoms.world.vocab.TOPICS`)."""

    prompt: str
    response: str
    fmt: str
    meta: dict = field(default_factory=dict)


Stage = Literal["base", "finetune"]


def contested(stage: Stage, template: int, group: str) -> bool:
    """Whether a contested family answers with its behaviour: wording 0 always, wording 2 never, wording 1
    only in the fine-tuning set and only when the prompt's content is in the family's group A."""
    if template == 0:
        return True
    if template == 2:
        return False
    return stage == "finetune" and group == "A"


def pick_template(rng: random.Random, template: int | None, stage: Stage) -> int:
    """The wording of a contested family: given, or drawn — evenly in the base corpus, and with the
    contested wording 1 twice as often in the fine-tuning set (so the shift it teaches is well sampled)."""
    if template is not None:
        return template
    return rng.randrange(3) if stage == "base" else (0, 1, 1, 2)[rng.randrange(4)]
