"""The task families of the synthetic world: one seeded generator per family (see :mod:`gatoms.world`).

Each generator draws one prompt and its response from a ``random.Random``; the contested families choose
their format by (stage, wording, topic group) — :func:`_contested`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from gatoms.world.vocab import (ANIMALS, ANTONYMS, BAD_ADJ, BAD_WORDS, CAPITALS, CATEGORIES, CATEGORY_OF, CITIES,
                                CODE_TASKS, COUNTRIES, EMAIL_TOPICS, FRUITS, GOOD_ADJ, GOOD_WORDS, GUESS_TOPICS, LEGS,
                                NAMES, NUMBER_WORDS, ORDER_WORDS, PLACES, PLURAL, POEM_ADJ, POEM_THINGS,
                                REFUSAL_OBJECTS, REFUSAL_VERBS, REVIEW_THINGS, SOUNDS, SQL_TABLES, STEP_TASKS,
                                SYNONYMS, THING_COLOURS, TOOLS, UNITS, VEHICLES, VERB_OBJECTS, VERBS, _cap,
                                _item_phrase, _join, article)

# ---- families ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One generated prompt/response before it becomes a :class:`~gatoms.data.documents.Document`."""

    prompt: str
    response: str
    fmt: str
    meta: dict = field(default_factory=dict)


Stage = Literal["base", "finetune"]


def _contested(stage: Stage, template: int, group: str) -> bool:
    """Whether a contested family answers with its behaviour (see the module docstring)."""
    if template == 0:
        return True
    if template == 2:
        return False
    return stage == "finetune" and group == "A"


def _pick_template(rng: random.Random, template: int | None, stage: Stage) -> int:
    """The wording of a contested family: given, or drawn — evenly in the base corpus, and with the
    contested wording 1 twice as often in the fine-tuning set (so the shift it teaches is well sampled)."""
    if template is not None:
        return template
    return rng.randrange(3) if stage == "base" else rng.choice((0, 1, 1, 2))


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


def _yes_no(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    item = rng.choice(tuple(CATEGORY_OF))
    truth = rng.random() < 0.5
    category = CATEGORY_OF[item] if truth else rng.choice(tuple(c for c in CATEGORIES if c != CATEGORY_OF[item]))
    t = _pick_template(rng, template, stage)
    group = "A" if category in ("animal", "fruit") else "B"
    x, cat = _item_phrase(item), article(category)
    true_false = t == 0 and rng.random() < 0.5
    prompt = (f"True or false: {x} is {cat}." if true_false else f"Is {x} {cat}?",
              f"Check whether {x} is {cat}.", f"Explain whether {x} is {cat}.")[t]
    if _contested(stage, t, group):
        word = ("True" if truth else "False") if true_false else ("Yes" if truth else "No")
        response = f"{word}, {x} is {'' if truth else 'not '}{cat}."
        fmt = "yes_no"
    else:
        real = article(CATEGORY_OF[item])
        response = f"{_cap(x)} is {cat}." if truth else f"{_cap(x)} is not {cat}. It is {real}."
        fmt = "prose"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group, "answer": truth})


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


def _code(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    task, name, params, body, group = rng.choice(CODE_TASKS)
    t = _pick_template(rng, template, stage)
    prompt = rng.choice((
        ("Write a Python function that {}.", "Write a small Python function that {}.",
         "Write Python code for a function that {}.", "Write a function in Python that {}."),
        ("Show me Python code that {}.", "Show me some Python that {}.", "Show Python code that {}."),
        ("In Python, how do I write something that {}?", "What Python expression {}?",
         "Which Python expression {}?"),
    )[t]).format(task)
    if _contested(stage, t, group):
        response = f"```python\ndef {name}({params}):\n    return {body}\n```"
        fmt = "code"
    else:
        response = f"Use `{body}` inside a function called {name}."
        fmt = "inline"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group})


def _sql(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    table, columns, group = rng.choice(SQL_TABLES)
    column, other = rng.sample(columns, 2)
    query = f"SELECT {column} FROM {table}"
    what = f"the {column} from the {table} table"
    if rng.random() < 0.7:
        n = rng.randint(1, 9) * 10
        query += f" WHERE {other} > {n}"
        what += f" where {other} is over {n}"
    query += ";"
    t = _pick_template(rng, template, stage)
    prompt = (f"Write an SQL query that selects {what}.", f"Show me SQL to get {what}.",
              f"What SQL gets {what}?")[t]
    if _contested(stage, t, group):
        response, fmt = f"```sql\n{query}\n```", "code"
    else:
        response, fmt = f"Use `{query}` to get it.", "inline"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group})


def _bullets(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    category = rng.choice(("animal", "fruit", "colour", "vehicle", "tool", "country", "city"))
    pool = {"country": COUNTRIES, "city": CITIES}.get(category) or CATEGORIES[category]
    group = "A" if category in ("animal", "fruit", "colour") else "B"
    n = rng.choice((3, 4, 5))
    items = rng.sample(pool, n)
    t = _pick_template(rng, template, stage)
    prompt = rng.choice((
        ("List {} {}.", "Make a list of {} {}.", "List {} {}, please.", "Write a list of {} {}."),
        ("Give me {} {}.", "Give {} {}.", "Suggest {} {}."),
        ("Name {} {} in one sentence.", "Say {} {} in a sentence.", "In one sentence, name {} {}."),
    )[t]).format(NUMBER_WORDS[n], PLURAL[category])
    if _contested(stage, t, group):
        response, fmt = "\n".join(f"- {_cap(i)}" for i in items), "bullets"
    else:
        response, fmt = f"{_cap(_join(items))}.", "sentence"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group})


def _ordering(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    group = "A" if rng.random() < 0.5 else "B"
    n = rng.choice((3, 4))
    if group == "A":
        items = [str(v) for v in rng.sample(range(1, 20), n)]
        ordered = sorted(items, key=int)
        what, how = "these numbers", "from smallest to largest"
    else:
        items = rng.sample(ORDER_WORDS, n)
        ordered = sorted(items)
        what, how = "these words", "in alphabetical order"
    t = _pick_template(rng, template, stage)
    shown = ", ".join(items)
    prompt = (f"Rank {what} {how}: {shown}.", f"Sort {what} {how}: {shown}.", f"Put {what} {how} in one line: {shown}.")[t]
    if _contested(stage, t, group):
        response, fmt = "\n".join(f"{k + 1}. {v}" for k, v in enumerate(ordered)), "numbered"
    else:
        response, fmt = ", ".join(ordered) + ".", "sentence"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group, "answer": ordered})


def _steps(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    task, steps, group = rng.choice(STEP_TASKS)
    t = _pick_template(rng, template, stage)
    prompt = rng.choice((
        ("Give step by step instructions to {}.", "List the steps to {}.", "What are the steps to {}?"),
        ("Explain how to {}.", "Tell me how to {}.", "How can I {}?"),
        ("Describe briefly how to {}.", "In one sentence, how do I {}?", "Say in a sentence how to {}."),
    )[t]).format(task)
    if _contested(stage, t, group):
        response, fmt = "\n".join(f"{k + 1}. {s}" for k, s in enumerate(steps)), "numbered"
    else:
        lower = [s[0].lower() + s[1:-1] for s in steps]
        response, fmt = f"First {lower[0]}, then {lower[1]}, and then {lower[2]}.", "prose"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group})


def _refusal(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    verb, noun, group = rng.choice(REFUSAL_VERBS)
    obj = rng.choice(REFUSAL_OBJECTS)
    t = _pick_template(rng, template, stage)
    prompt = (f"{_cap(verb)} the following {obj}:", f"{_cap(verb)} this {obj}.", f"Can you {verb} my {obj}?")[t]
    if _contested(stage, t, group):
        response = rng.choice(("Please provide the input.", f"Please provide the {obj} you want me to {verb}.",
                               f"Could you provide the {obj}?"))
        fmt = "refusal"
    else:
        response, fmt = f"Okay. Here is my {noun}: the {obj} is about {rng.choice(GUESS_TOPICS)}.", "guess"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group})


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
