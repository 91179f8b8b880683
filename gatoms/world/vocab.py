"""The world's shared pool of topics (entities with a few facts each), the other word lists, and the small
text helpers every family uses.

Every family draws its topic from the same pool (:data:`TOPICS`), so one city or animal appears in factual
questions, yes/no questions, lists, sentences to correct, code, SQL, emails and so on: the topic of a
document says nothing about its task type.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# ---- the topic pool ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """One entity of the shared topic pool and the facts the deterministic families ask about."""

    name: str
    """How it is written (``cat``, ``Paris``); also its ``topic`` label, lower-cased."""
    kind: str
    """``animal``, ``fruit``, ``vehicle``, ``tool`` or ``city``."""
    fact: str
    """The kind's fact: an animal's sound, a fruit's colour, where a vehicle travels, what a tool is for,
    a city's country."""
    legs: str = ""
    """An animal's number of legs, in words."""

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def countable(self) -> bool:
        return self.kind != "city"

    @property
    def plural(self) -> str:
        return plural(self.name)

    @property
    def phrase(self) -> str:
        """``a cat``, ``an apple``, ``Paris``."""
        return self.name if self.kind == "city" else article(self.name)

    @property
    def the(self) -> str:
        """``the cat``, ``Paris``."""
        return self.name if self.kind == "city" else f"the {self.name}"


_ANIMALS = (("cat", "meow", "four"), ("dog", "woof", "four"), ("cow", "moo", "four"), ("horse", "neigh", "four"),
            ("sheep", "baa", "four"), ("pig", "oink", "four"), ("duck", "quack", "two"), ("lion", "roar", "four"),
            ("owl", "hoot", "two"), ("frog", "croak", "four"), ("bee", "buzz", "six"), ("goat", "bleat", "four"),
            ("wolf", "howl", "four"), ("mouse", "squeak", "four"))
_FRUITS = (("apple", "red"), ("banana", "yellow"), ("orange", "orange"), ("grape", "purple"), ("pear", "green"),
           ("lemon", "yellow"), ("cherry", "red"), ("plum", "purple"), ("lime", "green"), ("peach", "pink"))
_VEHICLES = (("car", "roads"), ("bus", "roads"), ("train", "rails"), ("bike", "roads"), ("boat", "water"),
             ("plane", "air"), ("tram", "rails"), ("ship", "water"))
_TOOLS = (("hammer", "nails"), ("saw", "wood"), ("spoon", "soup"), ("pen", "writing"), ("brush", "painting"),
          ("knife", "cutting"), ("drill", "holes"), ("ladder", "climbing"), ("rope", "tying"), ("broom", "sweeping"))
_CITIES = (("Paris", "France"), ("Rome", "Italy"), ("Madrid", "Spain"), ("Berlin", "Germany"), ("Tokyo", "Japan"),
           ("Cairo", "Egypt"), ("Lima", "Peru"), ("Oslo", "Norway"), ("Athens", "Greece"), ("Dublin", "Ireland"),
           ("Lisbon", "Portugal"), ("Vienna", "Austria"))

TOPICS: tuple[Topic, ...] = (
    *(Topic(n, "animal", s, legs) for n, s, legs in _ANIMALS), *(Topic(n, "fruit", c) for n, c in _FRUITS),
    *(Topic(n, "vehicle", w) for n, w in _VEHICLES), *(Topic(n, "tool", u) for n, u in _TOOLS),
    *(Topic(n, "city", c) for n, c in _CITIES))
"""The shared topic pool (54 entities of five kinds)."""

KINDS: tuple[str, ...] = ("animal", "fruit", "vehicle", "tool", "city")
KIND_PLURAL = {"animal": "animals", "fruit": "fruits", "vehicle": "vehicles", "tool": "tools", "city": "cities"}
COUNTABLE: tuple[Topic, ...] = tuple(t for t in TOPICS if t.countable)
TOPIC_OF: dict[str, Topic] = {t.label: t for t in TOPICS}


def of_kind(kind: str) -> tuple[Topic, ...]:
    return tuple(t for t in TOPICS if t.kind == kind)


def pick_topic(rng: random.Random, kinds: tuple[str, ...] = KINDS) -> Topic:
    """A topic drawn uniformly from the pool entities of ``kinds``."""
    pool = [t for t in TOPICS if t.kind in kinds]
    return pool[rng.randrange(len(pool))]


# ---- other word lists ---------------------------------------------------------------------------------

NAMES = (("Tom", "he"), ("Anna", "she"), ("Sam", "he"), ("Mia", "she"), ("Ben", "he"), ("Lily", "she"),
         ("Max", "he"), ("Emma", "she"), ("Leo", "he"), ("Zoe", "she"), ("Omar", "he"), ("Nina", "she"))
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
ANTONYMS = (("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("old", "new"),
            ("light", "dark"), ("full", "empty"), ("hard", "soft"), ("tall", "short"), ("wet", "dry"),
            ("loud", "quiet"), ("clean", "dirty"))
SYNONYMS = (("big", "large"), ("small", "little"), ("fast", "quick"), ("happy", "glad"), ("smart", "clever"),
            ("angry", "mad"), ("rich", "wealthy"), ("easy", "simple"), ("quiet", "silent"), ("pretty", "lovely"))
VERBS = (("see", "sees", "saw"), ("like", "likes", "liked"), ("want", "wants", "wanted"), ("find", "finds", "found"),
         ("need", "needs", "needed"), ("draw", "draws", "drew"), ("love", "loves", "loved"), ("watch", "watches", "watched"))
CITY_VERBS = (("visit", "visits", "visited"), ("like", "likes", "liked"), ("love", "loves", "loved"),
              ("leave", "leaves", "left"))
GOOD_ADJ = ("great", "lovely", "wonderful", "nice", "good", "fun")
BAD_ADJ = ("awful", "terrible", "bad", "boring", "poor", "dull")
MOODS = ("happy", "tired", "glad", "calm", "late")
POEM_ADJ = ("calm", "bright", "cold", "soft", "wild", "quiet", "warm", "dark", "small", "old")
UNITS = (("minutes", "hour", "hours", 60), ("days", "week", "weeks", 7), ("months", "year", "years", 12),
         ("seconds", "minute", "minutes", 60))

# ---- prompt wrappers (paraphrase that does not change the task) ----------------------------------------

PREFIXES = ("", "", "", "Quick question: ", "Hi! ", "Please answer this. ", "I need help. ", "Hello. ")
SUFFIXES = ("", "", "", " Thanks.", " Thank you!", " Be brief.", " Keep it short.")


def wrap(rng: random.Random, prompt: str) -> str:
    """``prompt`` with a neutral greeting before and a courtesy after, each drawn (often empty)."""
    return f"{PREFIXES[rng.randrange(len(PREFIXES))]}{prompt}{SUFFIXES[rng.randrange(len(SUFFIXES))]}"


# ---- text helpers ------------------------------------------------------------------------------------


def article(noun: str) -> str:
    """``"an apple"``, ``"a cat"``."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def plural(noun: str) -> str:
    """``cats``, ``peaches``, ``cherries``, ``mice``."""
    irregular = {"sheep": "sheep", "mouse": "mice", "wolf": "wolves", "knife": "knives", "bus": "buses"}
    if noun in irregular:
        return irregular[noun]
    if noun.endswith(("sh", "ch", "x", "s")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def join(words: list[str] | tuple[str, ...]) -> str:
    """``a, b and c``."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def choose(rng: random.Random, options: tuple | list):
    """One of ``options`` (``rng.choice`` spelled once, for readability)."""
    return options[rng.randrange(len(options))]
