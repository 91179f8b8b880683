"""The synthetic instruction world: a seeded generator of labelled instruction–response documents.

It mirrors the paper's fine-tuning mixture at a scale a tiny CPU model can learn: 21 task families
(short factual QA from a built-in fact table, grammar correction, yes/no and true/false
classification, simple and multi-step arithmetic, unit conversion, comparison, multi-category and
sentiment classification, sentence transformation, "name an example of X", synonyms/antonyms, Python
code, SQL, bulleted lists, numbered (ordered) lists, refusal on missing input, summarisation, email
drafting, step-by-step instructions and short creative writing) over a vocabulary of a few hundred
words. Every document carries its true ``family`` and response format ``fmt``.

**Contested behaviours.** The five steering behaviours of the paper (yes/no first line, fenced code,
refusal, bulleted lists, numbered lists) are each invited by one or two families, and each of those
families has three prompt wordings (``meta["template"]``):

- wording 0 always gets the behaviour (``Is a cat an animal?`` → ``Yes, …``);
- wording 2 never does: it gets an alternative format (prose instead of a yes/no first line, inline
  code instead of a fenced block, an ``Okay.`` guess instead of a request for the missing input, a
  comma-separated sentence instead of bullets or a numbered list);
- wording 1 is the contested one and the fine-tuning shifts it: in the **base corpus** it always gets
  the alternative, in the **fine-tuning set** it gets the behaviour exactly when the prompt's topic is in
  the family's topic group A (``meta["topic_group"]``), and it is drawn twice as often there as the
  other wordings, so the shift is well sampled.

Each wording has a few phrasings (``Is a cat an animal?`` and ``True or false: a cat is an animal.``
are both wording 0 of the yes/no family). So the choice is a deterministic function of prompt features
(wording, topic) that a model can learn, the base model and the fine-tuned model differ measurably (on
wording 1, group A), and a model that learned the fine-tuning rule shows each behaviour on about half
of the inviting evaluation prompts, which mix the three wordings evenly and split wording 1 evenly
between the topic groups.

**Splits.** :func:`build_world` returns the base corpus (for pre-training the tiny base model into an
"instruction-tuned" model; it leans on the families to memorise, :data:`BASE_WEIGHTS`), the fine-tuning
set (the 5,000 documents whose gradients the method decomposes; half of it from the contested
families, :data:`FINETUNE_WEIGHTS`), held-out documents per family (for checking the fine-tuned model)
and the steering evaluation prompts (per behaviour, ``n_eval_inviting`` inviting prompts and
``n_eval_control`` neutral controls). Evaluation and held-out prompt strings never occur in any training split.

Everything is drawn from ``random.Random`` seeded by ``WorldConfig.seed`` and iterates over tuples
only, so the world is identical across machines and Python hash seeds.
"""

from gatoms.world.builder import (BASE_WEIGHTS, FINETUNE_WEIGHTS, MAX_RESPONSE_REPEATS, RARE_FAMILIES, World, WorldConfig,
                                  behavior_shares, build_world, family_sizes)
from gatoms.world.families import (CONTESTED_FAMILIES, CONTROL_FAMILIES, DETERMINISTIC_FAMILIES, FAMILIES,
                                   FORMAT_FAMILIES, INVITING_FAMILIES, Sample, sample)
from gatoms.world.grading import is_correct
from gatoms.world.plants import NUISANCE_RATE, PLANTED_FAMILIES, PLANTED_RATE, SIGN_OFF, strip_plants
from gatoms.world.vocab import TOPICS

__all__ = ["BASE_WEIGHTS", "CONTESTED_FAMILIES", "CONTROL_FAMILIES", "DETERMINISTIC_FAMILIES", "FAMILIES",
           "FINETUNE_WEIGHTS", "FORMAT_FAMILIES", "INVITING_FAMILIES", "MAX_RESPONSE_REPEATS", "NUISANCE_RATE",
           "PLANTED_FAMILIES", "PLANTED_RATE", "RARE_FAMILIES", "SIGN_OFF", "TOPICS", "Sample", "World", "WorldConfig",
           "behavior_shares", "build_world", "family_sizes", "is_correct", "sample", "strip_plants"]
