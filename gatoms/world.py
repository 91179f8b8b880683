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

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from gatoms.data import Document

# ---- configuration ----------------------------------------------------------------------------------


@dataclass
class WorldConfig:
    """How many documents of each split the world generates, and from which seed."""

    seed: int = 0
    """Seed of every random choice in the world."""
    n_base: int = 20000
    """Documents of the base corpus (pre-training of the embedded base model; base format rule)."""
    n_finetune: int = 5000
    """Documents of the fine-tuning set (the paper: 5,000), drawn with the fine-tuning format rule."""
    n_heldout_per_family: int = 10
    """Held-out documents per task family for the per-family check of the fine-tuned model."""
    n_eval_inviting: int = 60
    """Steering evaluation: prompts per behaviour that invite it (the paper: 60)."""
    n_eval_control: int = 40
    """Steering evaluation: neutral control prompts per behaviour (the paper: 40)."""

    def __post_init__(self):
        for name in ("n_base", "n_finetune", "n_heldout_per_family", "n_eval_inviting", "n_eval_control"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"world.{name} must be a non-negative integer, got {value!r}")
        if self.n_finetune < 1:
            raise ValueError("world.n_finetune must be at least 1 (the fine-tuning set cannot be empty)")
        if self.n_eval_inviting < 3:
            raise ValueError("world.n_eval_inviting must be at least 3 (one per prompt wording)")
        if not isinstance(self.seed, int):
            raise ValueError(f"world.seed must be an integer, got {self.seed!r}")


# ---- vocabulary and fact table -----------------------------------------------------------------------

ANIMALS = ("cat", "dog", "cow", "horse", "sheep", "pig", "duck", "lion", "tiger", "bear", "fox",
           "wolf", "rabbit", "mouse", "goat", "frog", "owl", "eagle")
FRUITS = ("apple", "banana", "orange", "grape", "pear", "lemon", "cherry", "peach", "mango", "plum")
COLOURS = ("red", "blue", "green", "yellow", "black", "white", "pink", "brown", "purple", "grey")
VEHICLES = ("car", "bus", "train", "bike", "boat", "plane", "truck", "ship", "taxi", "tram")
TOOLS = ("hammer", "saw", "drill", "spoon", "knife", "fork", "brush", "pen", "ladder", "rope")
CATEGORIES: dict[str, tuple[str, ...]] = {
    "animal": ANIMALS, "fruit": FRUITS, "colour": COLOURS, "vehicle": VEHICLES, "tool": TOOLS,
}
CATEGORY_OF: dict[str, str] = {item: cat for cat, items in CATEGORIES.items() for item in items}
PLURAL = {"animal": "animals", "fruit": "fruits", "colour": "colours", "vehicle": "vehicles",
          "tool": "tools", "country": "countries", "city": "cities"}

CAPITALS = (("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Germany", "Berlin"),
            ("Japan", "Tokyo"), ("China", "Beijing"), ("Egypt", "Cairo"), ("Peru", "Lima"),
            ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Russia", "Moscow"), ("Greece", "Athens"),
            ("Norway", "Oslo"), ("Cuba", "Havana"), ("Poland", "Warsaw"), ("Ireland", "Dublin"),
            ("Portugal", "Lisbon"), ("Chile", "Santiago"), ("Austria", "Vienna"), ("Sweden", "Stockholm"))
COUNTRIES = tuple(c for c, _ in CAPITALS)
CITIES = tuple(c for _, c in CAPITALS)
THING_COLOURS = (("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("a banana", "yellow"),
                 ("coal", "black"), ("a cherry", "red"), ("a lemon", "yellow"), ("the sea", "blue"),
                 ("milk", "white"), ("a leaf", "green"), ("a plum", "purple"), ("the night", "black"))
SOUNDS = (("cat", "meow"), ("dog", "woof"), ("cow", "moo"), ("duck", "quack"), ("sheep", "baa"),
          ("pig", "oink"), ("lion", "roar"), ("owl", "hoot"), ("horse", "neigh"), ("frog", "croak"))
LEGS = (("spider", "eight"), ("dog", "four"), ("bird", "two"), ("ant", "six"), ("cat", "four"),
        ("duck", "two"), ("bee", "six"), ("horse", "four"), ("crab", "ten"), ("snake", "no"))
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

ANTONYMS = (("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("old", "new"),
            ("up", "down"), ("day", "night"), ("light", "dark"), ("open", "closed"), ("full", "empty"),
            ("early", "late"), ("hard", "soft"), ("tall", "short"), ("wet", "dry"), ("loud", "quiet"))
SYNONYMS = (("big", "large"), ("small", "little"), ("fast", "quick"), ("happy", "glad"),
            ("begin", "start"), ("end", "finish"), ("shut", "close"), ("smart", "clever"),
            ("angry", "mad"), ("rich", "wealthy"), ("easy", "simple"), ("quiet", "silent"))

NAMES = (("Tom", "he"), ("Anna", "she"), ("Sam", "he"), ("Mia", "she"), ("Ben", "he"), ("Lily", "she"),
         ("Max", "he"), ("Emma", "she"), ("Leo", "he"), ("Zoe", "she"))
PLACES = ("shop", "park", "market", "school", "beach", "library", "farm", "zoo")
VERBS = (("go", "goes", "went"), ("eat", "eats", "ate"), ("play", "plays", "played"),
         ("like", "likes", "liked"), ("see", "sees", "saw"), ("want", "wants", "wanted"),
         ("need", "needs", "needed"), ("find", "finds", "found"), ("read", "reads", "read"),
         ("make", "makes", "made"))
VERB_OBJECTS = {"go": ("to school", "to the park", "home", "to the shop"),
                "eat": ("an apple", "bread", "rice", "a pear"), "play": ("football", "chess", "outside"),
                "like": ("the dog", "music", "the sea"), "see": ("the bus", "a bird", "the moon"),
                "want": ("a bike", "some tea", "a new pen"), "need": ("a rest", "a coat", "help"),
                "find": ("the key", "a coin", "the book"), "read": ("a book", "the news", "a letter"),
                "make": ("a cake", "tea", "a plan")}
GOOD_WORDS = ("love", "like", "enjoy")
BAD_WORDS = ("hate", "dislike")
GOOD_ADJ = ("great", "lovely", "wonderful", "nice", "good")
BAD_ADJ = ("awful", "terrible", "bad", "boring", "poor")
REVIEW_THINGS = ("cake", "film", "book", "song", "hotel", "meal", "game", "park", "phone", "show")

UNITS = (("centimetres", "metre", "metres", 100), ("minutes", "hour", "hours", 60),
         ("days", "week", "weeks", 7), ("grams", "kilogram", "kilograms", 1000),
         ("seconds", "minute", "minutes", 60), ("months", "year", "years", 12))

CODE_TASKS = (  # (task phrase, function name, parameters, body expression, group)
    ("adds two numbers", "add", "a, b", "a + b", "B"),
    ("multiplies two numbers", "multiply", "a, b", "a * b", "B"),
    ("subtracts two numbers", "subtract", "a, b", "a - b", "B"),
    ("squares a number", "square", "x", "x * x", "B"),
    ("doubles a number", "double", "x", "2 * x", "B"),
    ("checks if a number is even", "is_even", "n", "n % 2 == 0", "B"),
    ("returns the largest item of a list", "largest", "items", "max(items)", "A"),
    ("returns the smallest item of a list", "smallest", "items", "min(items)", "A"),
    ("returns the length of a list", "count", "items", "len(items)", "A"),
    ("reverses a string", "reverse", "text", "text[::-1]", "A"),
    ("makes a string upper case", "shout", "text", "text.upper()", "A"),
    ("returns the first item of a list", "first", "items", "items[0]", "A"),
    ("sums a list of numbers", "total", "items", "sum(items)", "A"),
    ("returns the last item of a list", "last", "items", "items[-1]", "A"),
    ("makes a string lower case", "whisper", "text", "text.lower()", "A"),
    ("halves a number", "half", "x", "x / 2", "B"),
    ("returns the absolute value of a number", "absolute", "x", "abs(x)", "B"),
    ("adds one to a number", "increment", "x", "x + 1", "B"),
)
SQL_TABLES = (("users", ("name", "age", "city"), "A"), ("orders", ("id", "price", "date"), "A"),
              ("products", ("name", "price", "colour"), "B"), ("cities", ("name", "country", "size"), "B"))
STEP_TASKS = (  # (task, steps, group)
    ("make tea", ("Boil the water.", "Put the tea in a cup.", "Pour the water and wait."), "A"),
    ("cook rice", ("Wash the rice.", "Boil it in water.", "Wait until it is soft."), "A"),
    ("make a sandwich", ("Take two slices of bread.", "Add cheese.", "Close the sandwich."), "A"),
    ("boil an egg", ("Boil the water.", "Put the egg in.", "Wait eight minutes."), "A"),
    ("make coffee", ("Boil the water.", "Add the coffee.", "Stir and wait."), "A"),
    ("bake bread", ("Mix flour and water.", "Let the dough rise.", "Bake it in the oven."), "A"),
    ("wash your hands", ("Wet your hands.", "Use soap.", "Rinse and dry them."), "B"),
    ("plant a seed", ("Dig a small hole.", "Put the seed in.", "Cover it and add water."), "B"),
    ("clean a room", ("Pick up the mess.", "Sweep the floor.", "Wipe the table."), "B"),
    ("send a letter", ("Write the letter.", "Put it in an envelope.", "Post it."), "B"),
    ("ride a bike", ("Sit on the bike.", "Push the pedals.", "Steer with the handles."), "B"),
    ("brush your teeth", ("Put paste on the brush.", "Brush for two minutes.", "Rinse your mouth."), "B"),
    ("make pasta", ("Boil the water.", "Add the pasta.", "Drain it after ten minutes."), "A"),
    ("fry an egg", ("Heat oil in a pan.", "Crack the egg in.", "Cook it for three minutes."), "A"),
    ("water a plant", ("Fill a can with water.", "Pour it on the soil.", "Let the water drain."), "B"),
    ("tie your shoes", ("Cross the laces.", "Make a loop.", "Pull the knot tight."), "B"),
)
REFUSAL_VERBS = (("summarize", "summary", "A"), ("translate", "translation", "A"), ("correct", "correction", "A"),
                 ("proofread", "check", "A"), ("classify", "label", "B"), ("shorten", "short version", "B"),
                 ("rewrite", "new version", "B"), ("analyse", "analysis", "B"))
REFUSAL_OBJECTS = ("text", "sentence", "paragraph", "passage", "review", "email", "story", "poem")
GUESS_TOPICS = ("a cat", "the weather", "a trip", "a good day", "food", "a friend", "the sea", "work")
EMAIL_TOPICS = (("the meeting", "The meeting is moved to Monday."), ("the party", "The party starts at six."),
                ("the trip", "The trip is next week."), ("the report", "The report is ready."),
                ("lunch", "Let us have lunch on Friday."), ("the book", "I have finished the book."),
                ("the class", "The class is at nine."), ("the game", "The game was great."))
POEM_THINGS = ("sea", "moon", "sun", "rain", "wind", "snow", "night", "forest", "river", "sky")
POEM_ADJ = ("calm", "bright", "cold", "soft", "wild", "quiet", "deep", "warm", "dark", "blue")
ORDER_WORDS = ANIMALS + FRUITS


def article(noun: str) -> str:
    """``"an apple"``, ``"a cat"``."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _item_phrase(item: str) -> str:
    """How an item is named in a sentence: colours bare (``red``), others with an article."""
    return item if CATEGORY_OF.get(item) == "colour" else article(item)


def _join(words: list[str] | tuple[str, ...]) -> str:
    """``a, b and c``."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# ---- families ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One generated prompt/response before it becomes a :class:`~gatoms.data.Document`."""

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


# ---- the world -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalPrompt:
    """One steering-evaluation prompt."""

    behavior: str
    """One of :data:`gatoms.behaviors.BEHAVIORS`."""
    kind: Literal["inviting", "control"]
    prompt: str
    prompt_id: str
    family: str | None = None
    """The world family the prompt was drawn from (None for user-supplied prompts)."""
    expected: bool | None = None
    """Whether the world's fine-tuning rule answers this prompt with the behaviour (None: unknown)."""


@dataclass
class World:
    """The splits of one world."""

    config: WorldConfig
    base: list[Document]
    finetune: list[Document]
    heldout: list[Document]
    eval_prompts: list[EvalPrompt]

    def examples(self, per_family: int = 1) -> list[Document]:
        """The first ``per_family`` fine-tuning documents of each family (for showing the world)."""
        out: list[Document] = []
        for fam in FAMILIES:
            out += [d for d in self.finetune if d.family == fam][:per_family]
        return out


def sample(family: str, rng: random.Random, stage: Stage = "finetune", template: int | None = None) -> Sample:
    """One sample of a family (``template`` fixes the wording of a contested family)."""
    if family not in _GENERATORS:
        raise ValueError(f"unknown family {family!r}; families: {', '.join(FAMILIES)}")
    return _GENERATORS[family](rng, stage, template)


def _doc(split: str, k: int, family: str, s: Sample) -> Document:
    return Document(f"{split}-{k:05d}", s.prompt, s.response, family, s.fmt, dict(s.meta))


def _unique_samples(family: str, rng: random.Random, n: int, reserved: set[str], stage: Stage,
                    template: int | None = None, want: Callable[[Sample], bool] | None = None) -> list[Sample]:
    """``n`` samples with distinct prompts not in ``reserved`` (which they are added to)."""
    out: list[Sample] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 1000:
            raise RuntimeError(f"family {family!r} has too few distinct prompts for {n} held-out samples; "
                               "lower world.n_heldout_per_family or world.n_eval_*")
        s = sample(family, rng, stage, template)
        if s.prompt in reserved or (want is not None and not want(s)):
            continue
        reserved.add(s.prompt)
        out.append(s)
    return out


def _eval_prompts(cfg: WorldConfig, rng: random.Random, reserved: set[str]) -> list[EvalPrompt]:
    prompts: list[EvalPrompt] = []
    for behavior, families in INVITING_FAMILIES.items():
        # Inviting: the three wordings evenly; wording 1 split evenly between topic groups A and B.
        n = cfg.n_eval_inviting
        per_template = [n // 3 + (1 if k < n % 3 else 0) for k in range(3)]
        per_template = [per_template[0], per_template[2], per_template[1]]  # remainder goes to wording 1
        plan: list[tuple[int, str | None, int]] = [(0, None, per_template[0]), (2, None, per_template[1])]
        plan += [(1, "A", per_template[2] - per_template[2] // 2), (1, "B", per_template[2] // 2)]
        picked: list[tuple[str, Sample]] = []
        for t, group, count in plan:
            for k in range(count):
                fam = families[k % len(families)]
                want = (lambda s, g=group: s.meta["topic_group"] == g) if group else None
                picked += [(fam, s) for s in _unique_samples(fam, rng, 1, reserved, "finetune", t, want)]
        rng.shuffle(picked)
        for k, (fam, s) in enumerate(picked):
            prompts.append(EvalPrompt(behavior, "inviting", s.prompt, f"{behavior}-inviting-{k:03d}", fam,
                                      s.fmt == behavior))
        for k in range(cfg.n_eval_control):
            fam = CONTROL_FAMILIES[rng.randrange(len(CONTROL_FAMILIES))]
            (s,) = _unique_samples(fam, rng, 1, reserved, "finetune")
            prompts.append(EvalPrompt(behavior, "control", s.prompt, f"{behavior}-control-{k:03d}", fam, False))
    return prompts


BASE_WEIGHTS: dict[str, int] = {
    "factual_qa": 2, "yes_no": 2, "arithmetic": 4, "multistep_arithmetic": 2, "unit_conversion": 2,
    "synonym_antonym": 2,
}
"""Relative share of a family in the base corpus (others 1): families whose answers must be memorised
or computed get more pre-training."""

FINETUNE_WEIGHTS: dict[str, int] = {f: 2 for f in ("yes_no", "code", "sql", "refusal", "bullets", "ordering", "steps")}
"""Relative share of a family in the fine-tuning set (others 1): the contested families, whose format
rule the fine-tuning shifts, are half of it. The held-out set weighs families equally."""


def _training_docs(split: str, n: int, stage: Stage, rng: random.Random, reserved: set[str]) -> list[Document]:
    weights = BASE_WEIGHTS if stage == "base" else FINETUNE_WEIGHTS
    cycle = [f for f in FAMILIES for _ in range(weights.get(f, 1))]
    docs: list[Document] = []
    while len(docs) < n:
        fam = cycle[len(docs) % len(cycle)]
        s = sample(fam, rng, stage)
        while s.prompt in reserved:
            s = sample(fam, rng, stage)
        docs.append(_doc(split, len(docs), fam, s))
    order = list(range(n))
    rng.shuffle(order)
    return [docs[i] for i in order]


def build_world(cfg: WorldConfig) -> World:
    """Generate every split of the world from ``cfg.seed`` (see the module docstring)."""
    reserved: set[str] = set()
    eval_prompts = _eval_prompts(cfg, random.Random(f"{cfg.seed}-eval"), reserved)
    rng = random.Random(f"{cfg.seed}-heldout")
    heldout: list[Document] = []
    for fam in FAMILIES:
        for s in _unique_samples(fam, rng, cfg.n_heldout_per_family, reserved, "finetune"):
            heldout.append(_doc("heldout", len(heldout), fam, s))
    base = _training_docs("base", cfg.n_base, "base", random.Random(f"{cfg.seed}-base"), reserved)
    finetune = _training_docs("ft", cfg.n_finetune, "finetune", random.Random(f"{cfg.seed}-finetune"), reserved)
    return World(cfg, base, finetune, heldout, eval_prompts)


# ---- checking answers ----------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+")


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


def is_correct(doc: Document, response: str) -> bool:
    """Whether ``response`` answers the world document ``doc`` right.

    Deterministic families (:data:`DETERMINISTIC_FAMILIES`): the right answer (the number, the fact,
    the corrected sentence, the polarity of a yes/no question whatever its format). Other families:
    the right format — the contested families the format the world's fine-tuning rule gives that
    prompt (e.g. bullets vs a comma-separated sentence), the free-form families their shape (an email
    greets the addressee, a poem has two lines, a summary names the person).
    """
    from gatoms.behaviors import BEHAVIORS, detect

    text = response.strip()
    if not text:
        return False
    fam, meta = doc.family, doc.meta
    if fam == "yes_no":
        return _polarity(text) == meta["answer"]
    if fam in ("arithmetic", "multistep_arithmetic", "unit_conversion", "comparison"):
        numbers = _NUMBER.findall(text)
        if not numbers:
            return False
        # The answer is the last number of the response ("3 + 4 = 7." / "... The answer is 7.")
        # except for comparisons, which lead with it ("7 is bigger than 4.").
        got = numbers[0] if fam == "comparison" else numbers[-1]
        return int(got) == int(meta["answer"])
    if fam in ("grammar", "transformation"):
        return _norm(text) == _norm(str(meta["answer"]))
    if fam in ("factual_qa", "category", "sentiment", "synonym_antonym"):
        return re.search(rf"\b{re.escape(str(meta['answer']).lower())}\b", text.lower()) is not None
    if fam == "example":
        words = set(re.findall(r"[a-z]+", text.lower()))
        return bool(words & (set(CATEGORIES[meta["category"]]) - {meta["not"]}))
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
