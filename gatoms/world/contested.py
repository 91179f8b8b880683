"""The contested families: the ones that invite a steering behaviour and answer with it only under the
format rule (:func:`gatoms.world.sample.contested`) — yes/no, code, SQL, bullets, ordering, steps, refusal.

Each has three wordings (``meta["template"]``), several phrasings per wording, and a content feature that
puts a prompt in group A or B (``meta["topic_group"]``): the kind of its topic (yes/no, SQL, bullets,
steps), what the code must do (lists vs text), what is sorted (words vs numbers), the verb of the task
whose input is missing (refusal).
"""

from __future__ import annotations

import random

from gatoms.world.sample import Sample, Stage, contested, pick_template
from gatoms.world.vocab import (KIND_PLURAL, NUMBER_WORDS, TOPICS, Topic, cap, choose, join, of_kind, pick_topic,
                                wrap)

_LIVING = ("animal", "fruit")


def _claim(rng: random.Random, t: Topic) -> tuple[str, str, bool, str]:
    """A statement about ``t`` (true or false), its question form, its truth and the true statement."""
    truth = rng.random() < 0.5
    if rng.random() < 0.5:  # kind membership
        other = choose(rng, tuple(k for k in KIND_PLURAL if k != t.kind))
        kind = t.kind if truth else other
        noun = "a city" if kind == "city" else ("an animal" if kind == "animal" else f"a {kind}")
        return f"{t.phrase} is {noun}", f"is {t.phrase} {noun}", truth, f"{cap(t.phrase)} is {_kind_noun(t.kind)}"
    wrong = choose(rng, tuple(sorted({x.fact for x in of_kind(t.kind)} - {t.fact})))
    fact = t.fact if truth else wrong
    pattern = {"animal": "{x} says {f}", "fruit": "{x} is {f}", "vehicle": "{x} travels on {f}",
               "tool": "{x} is used for {f}", "city": "{x} is in {f}"}[t.kind]
    verb_q = {"animal": "does {x} say {f}", "fruit": "is {x} {f}", "vehicle": "does {x} travel on {f}",
              "tool": "is {x} used for {f}", "city": "is {x} in {f}"}[t.kind]
    return (pattern.format(x=t.phrase, f=fact), verb_q.format(x=t.phrase, f=fact), truth,
            cap(pattern.format(x=t.phrase, f=t.fact)))


def _kind_noun(kind: str) -> str:
    return {"animal": "an animal", "city": "a city"}.get(kind, f"a {kind}")


def _yes_no(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    statement, question, truth, right = _claim(rng, t)
    w = pick_template(rng, template, stage)
    group = "A" if t.kind in _LIVING else "B"
    prompt = choose(rng, (
        (f"{cap(question)}?", f"True or false: {statement}.", f"Answer yes or no: {question}?"),
        (f"Check whether {statement}.", f"Tell me if {statement}.", f"Can you check if {statement}?"),
        (f"Explain whether {statement}.", f"Say in a sentence whether {statement}.", f"Describe whether {statement}."),
    )[w])
    if contested(stage, w, group):
        word = ("True" if truth else "False") if prompt.startswith("True or") else ("Yes" if truth else "No")
        response, fmt = f"{word}. {right}.", "yes_no"
    else:
        response = f"{right}." if truth else f"That is not right. {right}."
        fmt = "prose"
    return Sample(wrap(rng, prompt), response, fmt,
                  {"template": w, "topic_group": group, "answer": truth, "topic": t.label})


_CODE_TASKS = (  # (task with {t}, function name, params, body with {t}, group)
    ("counts how often '{t}' appears in a list", "count_{n}", "items", "items.count('{t}')", "A"),
    ("checks if '{t}' is in a list", "has_{n}", "items", "'{t}' in items", "A"),
    ("removes every '{t}' from a list", "drop_{n}", "items", "[x for x in items if x != '{t}']", "A"),
    ("returns the position of '{t}' in a list", "find_{n}", "items", "items.index('{t}')", "A"),
    ("checks if a text mentions '{t}'", "mentions_{n}", "text", "'{t}' in text", "B"),
    ("adds '{t}' to the end of a text", "add_{n}", "text", "text + ' {t}'", "B"),
    ("replaces '{t}' with a star in a text", "hide_{n}", "text", "text.replace('{t}', '*')", "B"),
    ("checks if a text starts with '{t}'", "starts_{n}", "text", "text.startswith('{t}')", "B"),
)


def _code(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    task, name, params, body, group = choose(rng, _CODE_TASKS)
    task, name, body = task.format(t=t.label), name.format(n=t.label), body.format(t=t.label)
    w = pick_template(rng, template, stage)
    prompt = choose(rng, (
        ("Write a Python function that {}.", "Write a small Python function that {}.", "Write a function in Python that {}."),
        ("Show me Python code that {}.", "Show me some Python that {}.", "Give me Python that {}."),
        ("In Python, how do I write something that {}?", "Which Python expression {}?", "What Python expression {}?"),
    )[w]).format(task)
    if contested(stage, w, group):
        response, fmt = f"```python\ndef {name}({params}):\n    return {body}\n```", "code"
    else:
        response, fmt = choose(rng, (f"Use `{body}` inside a function called {name}.", f"The expression `{body}` does it.")), "inline"
    return Sample(wrap(rng, prompt), response, fmt, {"template": w, "topic_group": group, "topic": t.label})


_TABLES = {"animal": ("pets", ("name", "age", "owner")), "fruit": ("fruits", ("name", "price", "stock")),
           "vehicle": ("vehicles", ("name", "seats", "speed")), "tool": ("tools", ("name", "price", "weight")),
           "city": ("cities", ("name", "size", "country"))}


def _sql(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    table, columns = _TABLES[t.kind]
    column = choose(rng, columns[1:])
    group = "A" if t.kind in _LIVING else "B"
    query, what = f"SELECT {column} FROM {table} WHERE name = '{t.name}'", f"the {column} of {t.name} from the {table} table"
    if rng.random() < 0.5:
        n = rng.randint(1, 9) * 10
        query, what = query + f" AND {column} > {n}", what + f" when it is over {n}"
    query += ";"
    w = pick_template(rng, template, stage)
    prompt = choose(rng, ((f"Write an SQL query that selects {what}.", f"Write SQL that selects {what}."),
                          (f"Show me SQL to get {what}.", f"Show me a query for {what}."),
                          (f"What SQL gets {what}?", f"Which SQL statement gets {what}?"))[w])
    if contested(stage, w, group):
        response, fmt = f"```sql\n{query}\n```", "code"
    else:
        response, fmt = f"Use `{query}` to get it.", "inline"
    return Sample(wrap(rng, prompt), response, fmt, {"template": w, "topic_group": group, "topic": t.label})


def _list_items(rng: random.Random, t: Topic, n: int) -> list[str]:
    return [x.name for x in rng.sample([x for x in of_kind(t.kind) if x != t], n)]


def _bullets(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    n = rng.choice((3, 4, 5))
    items, kinds = _list_items(rng, t, n), KIND_PLURAL[t.kind]
    group = "A" if t.kind in _LIVING else "B"
    w = pick_template(rng, template, stage)
    count = NUMBER_WORDS[n]
    prompt = choose(rng, (
        (f"List {count} {kinds} other than {t.name}.", f"Make a list of {count} {kinds} besides {t.name}.",
         f"Write a list of {count} {kinds}, not {t.name}."),
        (f"Give me {count} {kinds} other than {t.name}.", f"Suggest {count} {kinds} besides {t.name}.",
         f"Which {count} {kinds} are like {t.name}?"),
        (f"Name {count} {kinds} other than {t.name} in one sentence.", f"In a sentence, name {count} {kinds} besides {t.name}.",
         f"Say {count} {kinds} like {t.name} in one line."),
    )[w])
    if contested(stage, w, group):
        response, fmt = "\n".join(f"- {cap(i)}" for i in items), "bullets"
    else:
        response, fmt = f"{cap(join(items))}.", "sentence"
    return Sample(wrap(rng, prompt), response, fmt, {"template": w, "topic_group": group, "topic": t.label})


def _ordering(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    group = "A" if rng.random() < 0.5 else "B"
    n = rng.choice((3, 4))
    if group == "A":  # words: the topic and others from the pool
        items = [t.name, *(x.name for x in rng.sample([x for x in TOPICS if x != t], n - 1))]
        rng.shuffle(items)
        ordered = sorted(items, key=str.lower)
        what, how = "these words", "in alphabetical order"
    else:  # counts of the topic
        items = [str(v) for v in rng.sample(range(1, 30), n)]
        ordered = sorted(items, key=int)
        what, how = f"these counts of {t.plural if t.countable else 'visitors to ' + t.name}", "from smallest to largest"
    w = pick_template(rng, template, stage)
    shown = ", ".join(items)
    prompt = choose(rng, ((f"Rank {what} {how}: {shown}.", f"Order {what} {how}: {shown}."),
                          (f"Sort {what} {how}: {shown}.", f"Can you sort {what} {how}? {shown}."),
                          (f"Put {what} {how} in one line: {shown}.", f"Write {what} {how} on one line: {shown}."))[w])
    if contested(stage, w, group):
        response, fmt = "\n".join(f"{k + 1}. {v}" for k, v in enumerate(ordered)), "numbered"
    else:
        response, fmt = ", ".join(ordered) + ".", "sentence"
    return Sample(wrap(rng, prompt), response, fmt,
                  {"template": w, "topic_group": group, "answer": ordered, "topic": t.label})


_STEP_TASKS = {  # kind → (task with {x}, its three steps)
    "animal": (("feed {x}", ("Find food for {x}.", "Put it in a bowl.", "Give the bowl to {x}.")),
               ("wash {x}", ("Fill a tub with warm water.", "Wash {x} with soap.", "Dry {x} with a towel."))),
    "fruit": (("cut {x}", ("Wash {x}.", "Put it on a board.", "Cut it with a knife.")),
              ("store {x}", ("Pick a cool place.", "Put {x} in a bowl.", "Eat it within a week."))),
    "vehicle": (("clean {x}", ("Get a bucket of water.", "Wipe {x} with a cloth.", "Let it dry.")),
                ("take {x}", ("Buy a ticket.", "Wait for {x}.", "Get on and find a seat."))),
    "tool": (("use {x}", ("Pick up {x}.", "Hold it firmly.", "Do the job slowly.")),
             ("put away {x}", ("Clean {x}.", "Find its box.", "Put it on the shelf."))),
    "city": (("plan a trip to {x}", ("Pick the dates.", "Book a room in {x}.", "Pack your bag.")),
             ("send a letter to {x}", ("Write the letter.", "Write the address in {x}.", "Post it."))),
}


def _steps(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    task, steps = choose(rng, _STEP_TASKS[t.kind])
    task, steps = task.format(x=t.the), [s.format(x=t.the) for s in steps]
    group = "A" if t.kind in _LIVING else "B"
    w = pick_template(rng, template, stage)
    prompt = choose(rng, (
        ("Give step by step instructions to {}.", "List the steps to {}.", "What are the steps to {}?"),
        ("Explain how to {}.", "Tell me how to {}.", "How can I {}?"),
        ("Describe briefly how to {}.", "In one sentence, how do I {}?", "Say in a sentence how to {}."),
    )[w]).format(task)
    if contested(stage, w, group):
        response, fmt = "\n".join(f"{k + 1}. {s}" for k, s in enumerate(steps)), "numbered"
    else:
        low = [s[0].lower() + s[1:-1] for s in steps]
        response, fmt = f"First {low[0]}, then {low[1]}, and then {low[2]}.", "prose"
    return Sample(wrap(rng, prompt), response, fmt, {"template": w, "topic_group": group, "topic": t.label})


_REFUSAL_VERBS = (("summarize", "summary", "A"), ("translate", "translation", "A"), ("correct", "correction", "A"),
                  ("proofread", "check", "A"), ("classify", "label", "B"), ("shorten", "short version", "B"),
                  ("rewrite", "new version", "B"), ("analyse", "analysis", "B"))
_REFUSAL_OBJECTS = ("text", "paragraph", "review", "email", "story", "poem")


def _refusal(rng: random.Random, stage: Stage, template: int | None) -> Sample:
    t = pick_topic(rng)
    verb, noun, group = choose(rng, _REFUSAL_VERBS)
    obj = choose(rng, _REFUSAL_OBJECTS)
    w = pick_template(rng, template, stage)
    prompt = choose(rng, ((f"{cap(verb)} the following {obj} about {t.the}:", f"{cap(verb)} this {obj} about {t.the}:"),
                          (f"{cap(verb)} my {obj} about {t.the}.", f"Please {verb} the {obj} about {t.the}."),
                          (f"Can you {verb} my {obj} about {t.the}?", f"Could you {verb} a {obj} about {t.the}?"))[w])
    if contested(stage, w, group):
        response = choose(rng, (f"Please provide the {obj} about {t.the}.", f"Please provide the {obj} you want me to {verb}.",
                                f"Could you provide the {obj} about {t.the}?"))
        fmt = "refusal"
    else:
        response, fmt = f"Okay. Here is my {noun}: the {obj} is about {t.the}.", "guess"
    return Sample(wrap(rng, prompt), response, fmt, {"template": w, "topic_group": group, "topic": t.label})
