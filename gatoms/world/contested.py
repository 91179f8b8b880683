"""The contested families: the ones that invite a steering behaviour and answer with it only under the
format rule (:func:`gatoms.world.sample.contested`) — yes/no, code, SQL, bullets, ordering, steps, refusal."""

from __future__ import annotations

import random

from gatoms.world.sample import Sample, Stage, contested, pick_template
from gatoms.world.vocab import (CATEGORIES, CATEGORY_OF, CITIES, CODE_TASKS, COUNTRIES, GUESS_TOPICS, NUMBER_WORDS,
                                ORDER_WORDS, PLURAL, REFUSAL_OBJECTS, REFUSAL_VERBS, SQL_TABLES, STEP_TASKS, _cap,
                                _item_phrase, _join, article)


def _yes_no(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    item = rng.choice(tuple(CATEGORY_OF))
    truth = rng.random() < 0.5
    category = CATEGORY_OF[item] if truth else rng.choice(tuple(c for c in CATEGORIES if c != CATEGORY_OF[item]))
    t = pick_template(rng, template, stage)
    group = "A" if category in ("animal", "fruit") else "B"
    x, cat = _item_phrase(item), article(category)
    true_false = t == 0 and rng.random() < 0.5
    prompt = (f"True or false: {x} is {cat}." if true_false else f"Is {x} {cat}?",
              f"Check whether {x} is {cat}.", f"Explain whether {x} is {cat}.")[t]
    if contested(stage, t, group):
        word = ("True" if truth else "False") if true_false else ("Yes" if truth else "No")
        response = f"{word}, {x} is {'' if truth else 'not '}{cat}."
        fmt = "yes_no"
    else:
        real = article(CATEGORY_OF[item])
        response = f"{_cap(x)} is {cat}." if truth else f"{_cap(x)} is not {cat}. It is {real}."
        fmt = "prose"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group, "answer": truth})


def _code(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    task, name, params, body, group = rng.choice(CODE_TASKS)
    t = pick_template(rng, template, stage)
    prompt = rng.choice((
        ("Write a Python function that {}.", "Write a small Python function that {}.",
         "Write Python code for a function that {}.", "Write a function in Python that {}."),
        ("Show me Python code that {}.", "Show me some Python that {}.", "Show Python code that {}."),
        ("In Python, how do I write something that {}?", "What Python expression {}?",
         "Which Python expression {}?"),
    )[t]).format(task)
    if contested(stage, t, group):
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
    t = pick_template(rng, template, stage)
    prompt = (f"Write an SQL query that selects {what}.", f"Show me SQL to get {what}.",
              f"What SQL gets {what}?")[t]
    if contested(stage, t, group):
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
    t = pick_template(rng, template, stage)
    prompt = rng.choice((
        ("List {} {}.", "Make a list of {} {}.", "List {} {}, please.", "Write a list of {} {}."),
        ("Give me {} {}.", "Give {} {}.", "Suggest {} {}."),
        ("Name {} {} in one sentence.", "Say {} {} in a sentence.", "In one sentence, name {} {}."),
    )[t]).format(NUMBER_WORDS[n], PLURAL[category])
    if contested(stage, t, group):
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
    t = pick_template(rng, template, stage)
    shown = ", ".join(items)
    prompt = (f"Rank {what} {how}: {shown}.", f"Sort {what} {how}: {shown}.", f"Put {what} {how} in one line: {shown}.")[t]
    if contested(stage, t, group):
        response, fmt = "\n".join(f"{k + 1}. {v}" for k, v in enumerate(ordered)), "numbered"
    else:
        response, fmt = ", ".join(ordered) + ".", "sentence"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group, "answer": ordered})


def _steps(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    task, steps, group = rng.choice(STEP_TASKS)
    t = pick_template(rng, template, stage)
    prompt = rng.choice((
        ("Give step by step instructions to {}.", "List the steps to {}.", "What are the steps to {}?"),
        ("Explain how to {}.", "Tell me how to {}.", "How can I {}?"),
        ("Describe briefly how to {}.", "In one sentence, how do I {}?", "Say in a sentence how to {}."),
    )[t]).format(task)
    if contested(stage, t, group):
        response, fmt = "\n".join(f"{k + 1}. {s}" for k, s in enumerate(steps)), "numbered"
    else:
        lower = [s[0].lower() + s[1:-1] for s in steps]
        response, fmt = f"First {lower[0]}, then {lower[1]}, and then {lower[2]}.", "prose"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group})


def _refusal(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    verb, noun, group = rng.choice(REFUSAL_VERBS)
    obj = rng.choice(REFUSAL_OBJECTS)
    t = pick_template(rng, template, stage)
    prompt = (f"{_cap(verb)} the following {obj}:", f"{_cap(verb)} this {obj}.", f"Can you {verb} my {obj}?")[t]
    if contested(stage, t, group):
        response = rng.choice(("Please provide the input.", f"Please provide the {obj} you want me to {verb}.",
                               f"Could you provide the {obj}?"))
        fmt = "refusal"
    else:
        response, fmt = f"Okay. Here is my {noun}: the {obj} is about {rng.choice(GUESS_TOPICS)}.", "guess"
    return Sample(prompt, response, fmt, {"template": t, "topic_group": group})
