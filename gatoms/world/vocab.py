"""The world's vocabulary and fact tables (data), and the small text helpers every family uses."""

from __future__ import annotations

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


