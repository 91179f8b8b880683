"""The synthetic instruction world (version 2): a seeded generator of labelled instruction–response documents.

It mirrors the paper's fine-tuning mixture at a scale a tiny CPU model can learn: 21 task families
(short factual QA, grammar correction, yes/no, simple and multi-step arithmetic, unit conversion,
comparison, category, sentiment, sentence transformation, "name an example of X", synonyms/antonyms,
Python code, SQL, bulleted lists, ordering (numbered lists), refusal on missing input, summarisation,
email drafting, step-by-step instructions, short creative writing). Version 2 is built so that the
paper's claims can fail on it rather than being confirmed by the generator:

- **No duplicates.** Every prompt string is drawn at most once across all splits (base corpus,
  fine-tuning set, held-out documents, evaluation prompts), so no (prompt, response) pair repeats and
  the splits are disjoint; at most :data:`~gatoms.world.builder.MAX_RESPONSE_REPEATS` fine-tuning
  documents share one response, so no response becomes an instance cluster.
- **Task type separate from topic.** One shared pool of topics (animals, fruits, vehicles, tools,
  cities: :data:`~gatoms.world.vocab.TOPICS`) appears across the families; every document is labelled
  with its ``family`` and, in ``labels["topic"]``, its topic, so "task types, not topics" is measurable
  (tested: no topic has more than 35% of its documents in one family; NMI(topic, family) < 0.1).
  Prompts have several paraphrased templates with optional greetings and sign-offs, responses several
  variants; lengths vary.
- **Format partly independent of task.** The ``example`` family answers as bullets, a numbered list or a
  sentence, whichever its prompt asks for; the contested families answer with their behaviour according
  to a content feature (below), not a fixed wording alone.
- **Skewed family sizes** (:data:`~gatoms.world.builder.FINETUNE_WEIGHTS`): 10% (factual QA) down to
  three rare families of 1% each (:data:`~gatoms.world.builder.RARE_FAMILIES`).
- **A planted nuisance** (:mod:`gatoms.world.plants`, ``labels["nuisance"]``): on a random 30% of the
  documents of every split and family the response ends with a line of random filler words — high loss,
  high gradient energy, no task content — so whether whitening moves atoms off it can be tested.
- **A planted behaviour no code path is told about** (``labels["planted"]``): half of the fine-tuning
  documents of four families end with a fixed sign-off line; no steering behaviour, detector or atom
  description knows it, so discovery must surface it unprompted.

**Contested behaviours.** The five steering behaviours of the paper (yes/no first line, fenced code,
refusal, bulleted lists, numbered lists) are invited by the contested families
(:data:`INVITING_FAMILIES`), each with three wordings (``meta["template"]``): wording 0 always gets the
behaviour, wording 2 never does (an alternative format), wording 1 is contested — in the base corpus it
gets the alternative, in the fine-tuning set the behaviour exactly when the prompt's content is in group A
(``meta["topic_group"]``: the kind of its topic, what the code must do, what is sorted, the verb of the
task whose input is missing; :mod:`gatoms.world.contested`). The inviting evaluation prompts mix the three
wordings evenly and split wording 1 between the groups; the controls come from families that never show a
behaviour (:data:`CONTROL_FAMILIES`).

**Splits.** :func:`build_world` returns the base corpus (to pre-train the tiny base model into an
"instruction-tuned" one, :data:`BASE_WEIGHTS`), the fine-tuning set (the documents whose gradients the
method decomposes), held-out documents per family (for :func:`is_correct`, the grader of the
deterministic families) and the steering evaluation prompts. Everything is drawn from
``random.Random`` seeded by ``WorldConfig.seed`` and iterates over tuples only, so the world is identical
across machines and Python hash seeds.
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
