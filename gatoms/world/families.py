"""The task families of the synthetic world: one seeded generator per family (see :mod:`gatoms.world`).

Each generator draws one prompt and its response from a ``random.Random``; the contested families
(:mod:`gatoms.world.contested`) choose their format by (stage, wording, topic group).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from gatoms.world.contested import _bullets, _code, _ordering, _refusal, _sql, _steps, _yes_no
from gatoms.world.sample import Sample, Stage
from gatoms.world.vocab import (ANIMALS, ANTONYMS, BAD_ADJ, BAD_WORDS, CAPITALS, CATEGORIES, CATEGORY_OF,
                                EMAIL_TOPICS, FRUITS, GOOD_ADJ, GOOD_WORDS, LEGS, NAMES, PLACES, POEM_ADJ,
                                POEM_THINGS, REVIEW_THINGS, SOUNDS, SYNONYMS, THING_COLOURS, TOOLS, UNITS, VEHICLES,
                                VERBS, VERB_OBJECTS, _cap, _item_phrase, article)


def _factual_qa(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    kind = rng.randrange(4)
    if kind == 0:
        country, city = rng.choice(CAPITALS)
        prompt = rng.choice((f"What is the capital of {country}?", f"Which city is the capital of {country}?",
                             f"Name the capital of {country}."))
        return Sample(prompt, f"The capital of {country} is {city}.", "short", {"answer": city})
    if kind == 1:
        thing, colour = rng.choice(THING_COLOURS)
        prompt = rng.choice((f"What colour is {thing}?", f"Which colour is {thing}?"))
        return Sample(prompt, f"{_cap(thing)} is {colour}.", "short", {"answer": colour})
    if kind == 2:
        animal, sound = rng.choice(SOUNDS)
        a = article(animal)
        prompt = rng.choice((f"What sound does {a} make?", f"What does {a} say?"))
        return Sample(prompt, f"{_cap(a)} says {sound}.", "short", {"answer": sound})
    animal, legs = rng.choice(LEGS)
    a = article(animal)
    prompt = rng.choice((f"How many legs does {a} have?", f"How many legs has {a} got?"))
    return Sample(prompt, f"{_cap(a)} has {legs} legs.", "short", {"answer": legs})


def _grammar(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    name, _ = rng.choice(NAMES)
    subject = rng.choice((name, "she", "he", "the cat", "my friend"))
    base, third, _ = rng.choice(VERBS)
    obj = rng.choice(VERB_OBJECTS[base])
    wrong = f"{subject} {base} {obj}"
    right = f"{_cap(subject)} {third} {obj}."
    prompt = rng.choice((f"Correct the grammar: {wrong}.", f"Fix this sentence: {wrong}.",
                         f"Fix the grammar in: {wrong}."))
    return Sample(prompt, right, "short", {"answer": right})


def _arithmetic(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    op = rng.randrange(3)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    if op == 1 and b > a:
        a, b = b, a
    if op == 2:  # a small times table: 5 × 5
        a, b = rng.randint(1, 5), rng.randint(1, 5)
    word, sym, value = (("plus", "+", a + b), ("minus", "-", a - b), ("times", "*", a * b))[op]
    prompt = rng.choice((f"What is {a} {word} {b}?", f"Compute {a} {sym} {b}.", f"Work out {a} {word} {b}."))
    return Sample(prompt, f"{a} {sym} {b} = {value}.", "short", {"answer": value})


def _multistep(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    first = a + b
    c = rng.randint(1, 9)
    if rng.random() < 0.5 and c <= first:
        word, sym, value = "minus", "-", first - c
    else:
        word, sym, value = "plus", "+", first + c
    prompt = rng.choice((f"What is {a} plus {b} {word} {c}?", f"Compute {a} + {b} {sym} {c} step by step."))
    response = f"{a} + {b} = {first}. {first} {sym} {c} = {value}. The answer is {value}."
    return Sample(prompt, response, "short", {"answer": value})


def _units(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    small, one, many, factor = rng.choice(UNITS)
    n = rng.randint(1, 9)
    big = one if n == 1 else many
    prompt = rng.choice((f"How many {small} are in {n} {big}?", f"Convert {n} {big} to {small}."))
    return Sample(prompt, f"{n} {big} is {n * factor} {small}.", "short", {"answer": n * factor})


def _comparison(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    a, b = rng.sample(range(1, 20), 2)
    if rng.random() < 0.5:
        prompt = rng.choice((f"Which is bigger, {a} or {b}?", f"Which number is larger: {a} or {b}?"))
        answer = max(a, b)
        return Sample(prompt, f"{answer} is bigger than {min(a, b)}.", "short", {"answer": answer})
    prompt = rng.choice((f"Which is smaller, {a} or {b}?", f"Which number is less: {a} or {b}?"))
    answer = min(a, b)
    return Sample(prompt, f"{answer} is smaller than {max(a, b)}.", "short", {"answer": answer})


def _category(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    item = rng.choice(tuple(CATEGORY_OF))
    options = "animal, fruit, colour, vehicle or tool"
    prompt = rng.choice((f"Classify {item} as {options}.", f"Which group is {item} in: {options}?",
                         f"Put {item} in a category: {options}."))
    cat = CATEGORY_OF[item]
    return Sample(prompt, f"Category: {cat}.", "short", {"answer": cat})


def _sentiment(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    thing = rng.choice(REVIEW_THINGS)
    positive = rng.random() < 0.5
    if rng.random() < 0.5:
        text = f"I {rng.choice(GOOD_WORDS if positive else BAD_WORDS)} this {thing}."
    else:
        text = f"The {thing} was {rng.choice(GOOD_ADJ if positive else BAD_ADJ)}."
    label = "positive" if positive else "negative"
    prompt = rng.choice((f"What is the sentiment of this review: {text}", f"Is this review positive or negative? {text}"))
    return Sample(prompt, f"Sentiment: {label}.", "short", {"answer": label})


def _transform(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    if rng.random() < 0.5:
        base, _, past = rng.choice(VERBS)
        obj = rng.choice(VERB_OBJECTS[base])
        prompt = rng.choice((f"Rewrite in the past tense: I {base} {obj}.", f"Put this in the past tense: I {base} {obj}."))
        answer = f"I {past} {obj}."
    else:
        noun = rng.choice(ANIMALS + FRUITS + VEHICLES)
        plural = noun + ("es" if noun.endswith(("sh", "ch", "x")) else "s")
        plural = {"sheep": "sheep", "mouse": "mice", "wolf": "wolves", "knife": "knives"}.get(noun, plural)
        prompt = rng.choice((f"Make this plural: the {noun}.", f"Write the plural of: the {noun}."))
        answer = f"The {plural}."
    return Sample(prompt, answer, "short", {"answer": answer})


def _example(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    category = rng.choice(tuple(CATEGORIES))
    item, other = rng.sample(CATEGORIES[category], 2)
    if rng.random() < 0.25:
        prompt = rng.choice((f"Name an example of {article(category)}.", f"Give one example of {article(category)}.",
                             f"Tell me one {category}."))
        other = ""
    else:
        prompt = rng.choice((f"Name {article(category)} other than {_item_phrase(other)}.",
                             f"Give an example of {article(category)} that is not {_item_phrase(other)}."))
    return Sample(prompt, f"{_cap(_item_phrase(item))} is {article(category)}.", "short",
                  {"category": category, "not": other})


def _synonym(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    if rng.random() < 0.5:
        word, other = rng.choice(ANTONYMS)
        if rng.random() < 0.5:
            word, other = other, word
        prompt = rng.choice((f"What is the opposite of {word}?", f"Give an antonym for {word}."))
        return Sample(prompt, f"The opposite of {word} is {other}.", "short", {"answer": other})
    word, other = rng.choice(SYNONYMS)
    prompt = rng.choice((f"Give a synonym for {word}.", f"What word means the same as {word}?"))
    return Sample(prompt, f"A synonym for {word} is {other}.", "short", {"answer": other})


def _summary(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    (name, pronoun), place = rng.choice(NAMES), rng.choice(PLACES)
    thing = rng.choice(FRUITS + TOOLS)
    mood = rng.choice(("happy", "tired", "glad", "calm"))
    text = f"{name} went to the {place}. {_cap(pronoun)} bought {article(thing)}. Then {pronoun} went home {mood}."
    prompt = rng.choice((f"Summarize this text: {text}", f"Give a short summary: {text}"))
    return Sample(prompt, f"{name} bought {article(thing)} at the {place}.", "summary", {"answer": name})


def _email(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    name, _ = rng.choice(NAMES)
    sender, _ = rng.choice(NAMES)
    topic, line = rng.choice(EMAIL_TOPICS)
    prompt = rng.choice((f"Write a short email to {name} about {topic}.", f"Draft an email to {name} about {topic}."))
    return Sample(prompt, f"Hi {name},\n{line}\nBest,\n{sender}", "email", {"answer": name})


def _creative(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    if rng.random() < 0.5:
        thing = rng.choice(POEM_THINGS)
        a, b = rng.sample(POEM_ADJ, 2)
        prompt = rng.choice((f"Write a short poem about the {thing}.", f"Write two lines of poetry about the {thing}."))
        return Sample(prompt, f"The {thing} is {a} and {b},\nI love the {thing} every day.", "poem", {"answer": thing})
    animal = rng.choice(ANIMALS)
    place = rng.choice(PLACES)
    a = article(animal)
    prompt = rng.choice((f"Write a one sentence story about {a}.", f"Tell a tiny story about {a}."))
    return Sample(prompt, f"Once {a} went to the {place} and found a friend.", "story", {"answer": animal})


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
"""Behaviour → the families whose prompts invite it (each answers with it only part of the time)."""

CONTESTED_FAMILIES: tuple[str, ...] = tuple(f for fams in INVITING_FAMILIES.values() for f in fams)

CONTROL_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f not in CONTESTED_FAMILIES)
"""Families that invite none of the five behaviours: the source of the neutral control prompts."""

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
