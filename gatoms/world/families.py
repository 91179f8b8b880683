"""The task families of the synthetic world: one seeded generator per family (see :mod:`gatoms.world`).

Each generator draws a topic from the shared pool (:data:`gatoms.world.vocab.TOPICS`), one of several
phrasings of its prompt (wrapped in an optional greeting and courtesy) and one of several phrasings of its
response; the contested families (:mod:`gatoms.world.contested`) choose their format by (stage, wording,
content group); ``example`` answers as bullets, a numbered list or a sentence, whichever the prompt asks.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from gatoms.world.contested import _bullets, _code, _kind_noun, _ordering, _refusal, _sql, _steps, _yes_no
from gatoms.world.sample import Sample, Stage
from gatoms.world.vocab import (ANTONYMS, BAD_ADJ, CITY_VERBS, COUNTABLE, GOOD_ADJ, KIND_PLURAL, MOODS, NAMES,
                                NUMBER_WORDS, POEM_ADJ, SYNONYMS, UNITS, VERBS, cap, choose, join, of_kind, pick_topic,
                                wrap)


def _factual_qa(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    if t.kind == "animal" and rng.random() < 0.5:
        prompt = choose(rng, (f"How many legs does {t.phrase} have?", f"How many legs has {t.phrase} got?",
                              f"Count the legs of {t.phrase}."))
        response = choose(rng, (f"{cap(t.phrase)} has {t.legs} legs.", f"It has {t.legs} legs.",
                                f"{cap(t.legs)} legs: that is how many {t.phrase} has."))
        return Sample(wrap(rng, prompt), response, "short", {"answer": t.legs, "topic": t.label})
    q = {"animal": ("What sound does {x} make?", "What does {x} say?", "Which sound comes from {x}?"),
         "fruit": ("What colour is {x}?", "Which colour is {x}?", "What colour does {x} have?"),
         "vehicle": ("Where does {x} travel?", "What does {x} travel on?", "Where do you ride {x}?"),
         "tool": ("What is {x} used for?", "What do you use {x} for?", "What is {x} good for?"),
         "city": ("Which country is {x} in?", "In which country is {x}?", "Where is {x}?")}[t.kind]
    a = {"animal": ("{X} says {f}.", "It says {f}.", "The sound of {x} is {f}.", "{X} makes the sound {f}.",
                    "You hear {f} from {x}."),
         "fruit": ("{X} is {f}.", "It is {f}.", "The colour of {x} is {f}.", "{X} is usually {f}.",
                   "Most of the time {x} is {f}."),
         "vehicle": ("{X} travels on {f}.", "It travels on {f}.", "You ride {x} on {f}.", "{X} moves on {f}.",
                     "On {f}: that is where {x} goes."),
         "tool": ("{X} is used for {f}.", "It is used for {f}.", "People use {x} for {f}.", "{X} is good for {f}.",
                  "You need {x} for {f}."),
         "city": ("{X} is in {f}.", "It is in {f}.", "{X} is a city in {f}.", "{X} lies in {f}.",
                  "You find {x} in {f}.")}[t.kind]
    prompt = choose(rng, q).format(x=t.phrase)
    response = choose(rng, a).format(x=t.phrase, X=cap(t.phrase), f=t.fact)
    return Sample(wrap(rng, prompt), response, "short", {"answer": t.fact, "topic": t.label})


def _object(rng: random.Random):
    """A topic and how it is named as the object of a verb (``the cat``, ``Paris``)."""
    t = pick_topic(rng)
    return t, t.the


def _grammar(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t, obj = _object(rng)
    base, third, _ = choose(rng, CITY_VERBS if t.kind == "city" else VERBS)
    subject = choose(rng, (choose(rng, NAMES)[0], "she", "he", "my friend", "the teacher"))
    wrong, right = f"{subject} {base} {obj}", f"{cap(subject)} {third} {obj}."
    prompt = choose(rng, (f"Correct the grammar: {wrong}.", f"Fix this sentence: {wrong}.",
                          f"Fix the grammar in: {wrong}.", f"Make this sentence correct: {wrong}."))
    response = choose(rng, (right, f"Corrected: {right}", f"The correct sentence is: {right}"))
    return Sample(wrap(rng, prompt), response, "short", {"answer": right, "topic": t.label})


def _arithmetic(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = choose(rng, COUNTABLE)
    name = choose(rng, NAMES)[0]
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    if rng.random() < 0.5:
        prompt = choose(rng, (f"{name} has {a} {t.plural} and gets {b} more. How many {t.plural} now?",
                              f"What is {a} {t.plural} plus {b} {t.plural}?", f"Add {a} {t.plural} and {b} {t.plural}."))
        value, sym = a + b, "+"
    else:
        a, b = max(a, b), min(a, b)
        prompt = choose(rng, (f"{name} has {a} {t.plural} and gives away {b}. How many {t.plural} are left?",
                              f"What is {a} {t.plural} minus {b} {t.plural}?", f"Take {b} {t.plural} from {a} {t.plural}."))
        value, sym = a - b, "-"
    response = choose(rng, (f"{a} {sym} {b} = {value}.", f"{a} {sym} {b} = {value}, so {value} {t.plural}.",
                            f"There are {a} {sym} {b} = {value}."))
    return Sample(wrap(rng, prompt), response, "short", {"answer": value, "topic": t.label})


def _multistep(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = choose(rng, COUNTABLE)
    a, b, c = rng.randint(2, 9), rng.randint(1, 9), rng.randint(1, 9)
    first = a + b
    word, sym, value = ("minus", "-", first - c) if rng.random() < 0.5 and c <= first else ("plus", "+", first + c)
    prompt = choose(rng, (f"What is {a} plus {b} {word} {c} {t.plural}?",
                          f"A box has {a} {t.plural}, {b} are added, then {c} {'removed' if sym == '-' else 'more added'}. How many?",
                          f"Compute {a} + {b} {sym} {c} {t.plural} step by step."))
    response = choose(rng, (f"{a} + {b} = {first}. {first} {sym} {c} = {value}. The answer is {value}.",
                            f"First {a} + {b} = {first}. Then {first} {sym} {c} = {value}. So {value} {t.plural}: {value}."))
    return Sample(wrap(rng, prompt), response, "short", {"answer": value, "topic": t.label})


def _units(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng, ("vehicle", "city", "animal"))
    small, one, many, factor = choose(rng, UNITS)
    n = rng.randint(1, 9)
    big = one if n == 1 else many
    where = {"vehicle": f"A trip by {t.name}", "city": f"A stay in {t.name}", "animal": f"A walk with {t.phrase}"}[t.kind]
    prompt = choose(rng, (f"{where} takes {n} {big}. How many {small} is that?", f"How many {small} are in {n} {big}?",
                          f"Convert {n} {big} to {small}."))
    response = choose(rng, (f"{n} {big} is {n * factor} {small}.", f"That is {n} x {factor} = {n * factor}.",
                            f"{where} of {n} {big} takes {n * factor} {small}."))
    return Sample(wrap(rng, prompt), response, "short", {"answer": n * factor, "topic": t.label})


def _comparison(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = choose(rng, COUNTABLE)
    (p, _), (q, _) = rng.sample(NAMES, 2)
    a, b = rng.sample(range(1, 20), 2)
    more = rng.random() < 0.5
    winner = (p if a > b else q) if more else (p if a < b else q)
    word = "more" if more else "fewer"
    prompt = choose(rng, (f"{p} has {a} {t.plural} and {q} has {b}. Who has {word}?",
                          f"Who has {word} {t.plural}: {p} with {a} or {q} with {b}?"))
    response = choose(rng, (f"{winner} has {word} {t.plural}.", f"{winner} has {word}."))
    return Sample(wrap(rng, prompt), response, "short", {"answer": winner, "topic": t.label})


def _category(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    options = "animal, fruit, vehicle, tool or city"
    prompt = choose(rng, (f"Classify {t.name} as {options}.", f"Which group is {t.name} in: {options}?",
                          f"Put {t.name} in a category: {options}."))
    response = choose(rng, (f"Category: {t.kind}.", f"{cap(t.name)} is {_kind_noun(t.kind)}.", f"{cap(t.name)}: {t.kind}.",
                            f"{cap(t.name)} goes with the {KIND_PLURAL[t.kind]}: {t.kind}."))
    return Sample(wrap(rng, prompt), response, "short", {"answer": t.kind, "topic": t.label})


def _sentiment(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    positive = rng.random() < 0.5
    adj = choose(rng, GOOD_ADJ if positive else BAD_ADJ)
    text = choose(rng, (f"The {t.name if t.kind != 'city' else 'trip to ' + t.name} was {adj}.",
                        f"My day with {t.the} was {adj}."))
    label = "positive" if positive else "negative"
    prompt = choose(rng, (f"What is the sentiment of this review: {text}", f"Is this review positive or negative? {text}"))
    response = choose(rng, (f"Sentiment: {label}.", f"The review of {t.the} is {label}.",
                            f"{cap(label)}: the writer {'liked' if positive else 'did not like'} {t.the}."))
    return Sample(wrap(rng, prompt), response, "short", {"answer": label, "topic": t.label})


def _transform(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t, obj = _object(rng)
    if t.countable and rng.random() < 0.5:
        prompt = choose(rng, (f"Make this plural: the {t.name}.", f"Write the plural of: the {t.name}."))
        answer = f"The {t.plural}."
    else:
        base, _, past = choose(rng, CITY_VERBS if t.kind == "city" else VERBS)
        prompt = choose(rng, (f"Rewrite in the past tense: I {base} {obj}.", f"Put this in the past tense: I {base} {obj}."))
        answer = f"I {past} {obj}."
    response = choose(rng, (answer, f"Rewritten: {answer}"))
    return Sample(wrap(rng, prompt), response, "short", {"answer": answer, "topic": t.label})


def _example(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    """Examples of a kind in the format the prompt asks for: bullets, a numbered list or a sentence."""
    t = pick_topic(rng)
    n = rng.choice((2, 3, 4))
    items = [x.name for x in rng.sample([x for x in of_kind(t.kind) if x != t], n)]
    kinds, count = KIND_PLURAL[t.kind], NUMBER_WORDS[n]
    how = rng.randrange(3)
    ask = choose(rng, (("as bullet points", "with bullets"), ("as a numbered list", "numbered 1 to {n}"),
                       ("in one sentence", "as plain text"))[how]).format(n=n)
    prompt = choose(rng, (f"Name {count} {kinds} like {t.name}, {ask}.", f"Give {count} examples of {kinds} besides {t.name} {ask}."))
    if how == 0:
        response, fmt = "\n".join(f"- {cap(i)}" for i in items), "bullets"
    elif how == 1:
        response, fmt = "\n".join(f"{k + 1}. {cap(i)}" for k, i in enumerate(items)), "numbered"
    else:
        response, fmt = f"{cap(join(items))} are {kinds}.", "sentence"
    return Sample(wrap(rng, prompt), response, fmt, {"kind": t.kind, "not": t.name, "topic": t.label})


def _synonym(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = choose(rng, COUNTABLE)
    if rng.random() < 0.5:
        word, other = choose(rng, ANTONYMS)
        if rng.random() < 0.5:
            word, other = other, word
        prompt = choose(rng, (f"What is the opposite of {word} in: the {word} {t.name}?",
                              f"Give an antonym for {word}, as in the {word} {t.name}."))
        response = choose(rng, (f"The opposite of {word} is {other}.", f"The {other} {t.name}: {other}."))
    else:
        word, other = choose(rng, SYNONYMS)
        prompt = choose(rng, (f"Give a synonym for {word} in: the {word} {t.name}.",
                              f"What word means the same as {word}, as in the {word} {t.name}?"))
        response = choose(rng, (f"A synonym for {word} is {other}.", f"The {other} {t.name}: {other}."))
    return Sample(wrap(rng, prompt), response, "short", {"answer": other, "topic": t.label})


def _summary(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    name, pronoun = choose(rng, NAMES)
    mood = choose(rng, MOODS)
    did = {"animal": f"saw {t.phrase}", "fruit": f"bought {t.phrase}", "vehicle": f"took {t.phrase}",
           "tool": f"found {t.phrase}", "city": f"flew to {t.name}"}[t.kind]
    text = f"{name} got up early. {cap(pronoun)} {did}. Then {pronoun} went home {mood}."
    prompt = choose(rng, (f"Summarize this text: {text}", f"Give a short summary: {text}", f"Sum up: {text}"))
    return Sample(wrap(rng, prompt), choose(rng, (f"{name} {did}.", f"In short, {name} {did} and was {mood}.")),
                  "summary", {"answer": name, "topic": t.label})


def _email(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    (name, _), (sender, _) = rng.sample(NAMES, 2)
    line = choose(rng, (f"I have news about {t.the}.", f"Let us talk about {t.the} on Friday.",
                        f"Did you see {t.the}?"))
    prompt = choose(rng, (f"Write a short email to {name} about {t.the}.", f"Draft an email to {name} about {t.the}."))
    return Sample(wrap(rng, prompt), f"Hi {name},\n{line}\nBest,\n{sender}", "email", {"answer": name, "topic": t.label})


def _creative(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    if rng.random() < 0.5:
        a, b = rng.sample(POEM_ADJ, 2)
        prompt = choose(rng, (f"Write a short poem about {t.the}.", f"Write two lines of poetry about {t.the}."))
        return Sample(wrap(rng, prompt), f"{cap(t.the)} is {a} and {b},\nI think of {t.the} every day.", "poem",
                      {"answer": t.label, "topic": t.label})
    prompt = choose(rng, (f"Write a one sentence story about {t.the}.", f"Tell a tiny story about {t.the}."))
    place = choose(rng, ("park", "market", "farm", "beach", "school"))
    return Sample(wrap(rng, prompt), f"One day {t.the} went to the {place} and found a friend.", "story",
                  {"answer": t.label, "topic": t.label})


_GENERATORS: dict[str, Callable[[random.Random, Stage, int | None], Sample]] = {
    "factual_qa": _factual_qa,
    "grammar": _grammar,
    "yes_no": _yes_no,
    "arithmetic": _arithmetic,
    "multistep_arithmetic": _multistep,
    "unit_conversion": _units,
    "comparison": _comparison,
    "category": _category,
    "sentiment": _sentiment,
    "transformation": _transform,
    "example": _example,
    "synonym_antonym": _synonym,
    "code": _code,
    "sql": _sql,
    "bullets": _bullets,
    "ordering": _ordering,
    "refusal": _refusal,
    "summarization": _summary,
    "email": _email,
    "steps": _steps,
    "creative": _creative,
}

FAMILIES: tuple[str, ...] = tuple(_GENERATORS)
"""The task families of the world, in a fixed order."""

INVITING_FAMILIES: dict[str, tuple[str, ...]] = {
    "yes_no": ("yes_no",),
    "code": ("code", "sql"),
    "refusal": ("refusal",),
    "bullets": ("bullets",),
    "numbered": ("ordering", "steps"),
}
"""Behaviour → the contested families whose prompts invite it (each answers with it only part of the
time); the steering evaluation's inviting prompts come from them."""

CONTESTED_FAMILIES: tuple[str, ...] = tuple(f for fams in INVITING_FAMILIES.values() for f in fams)

FORMAT_FAMILIES: tuple[str, ...] = ("example",)
"""Families that answer as bullets, a numbered list or a sentence, whichever the prompt asks for."""

CONTROL_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f not in CONTESTED_FAMILIES + FORMAT_FAMILIES)
"""Families that never show any of the five behaviours: the source of the neutral control prompts."""

DETERMINISTIC_FAMILIES: tuple[str, ...] = (
    "factual_qa", "grammar", "yes_no", "arithmetic", "multistep_arithmetic", "unit_conversion",
    "comparison", "category", "sentiment", "transformation", "synonym_antonym",
)
"""Families with one right answer; :func:`is_correct` checks the answer, elsewhere the format."""


def sample(family: str, rng: random.Random, stage: Stage = "finetune", template: int | None = None) -> Sample:
    """One sample of a family (``template`` fixes the wording of a contested family)."""
    if family not in _GENERATORS:
        raise ValueError(f"unknown family {family!r}; families: {', '.join(FAMILIES)}")
    return _GENERATORS[family](rng, stage, template)
