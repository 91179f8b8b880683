"""A fine-tuning mixture of real, human-written BIG-bench tasks, read straight from a BIG-bench archive.

The official BIG-bench (Apache-2.0) is a source archive holding one ``task.json`` per task and subtask
(``<top>/bigbench/benchmark_tasks/<task>[/<subtask>]/task.json``), each with ``examples`` of ``input`` and
``target`` (free text) or ``target_scores`` (choices scored 0/1). Any ``.tar.gz`` of that layout works:
the ``bigbench==1.0.0`` sdist (358 MB) or a GitHub archive of google/BIG-bench, saved as
``artifacts/cache/pypi/bigbench-1.0.0.tar.gz``. It is never installed (it pulls TensorFlow);
:func:`build_mixture` reads the archive. PyPI no longer serves ``bigbench==1.0.0`` (checked 2026-12-08:
only ``0.0.1``, a 358 kB stub without tasks), so no profile fetches it; ``finetune.data: bigbench`` is
for users who have the archive.

The recipe (:data:`TASKS`, :class:`Recipe`) is fixed in code and recorded beside the mixture as JSON:
which tasks, how many examples each (an equal share of ``n_docs``, seeded draws), and how each example is
rendered as an instruction and its response. Every document's ``family`` is its task's name, a real task
label for the ground-truth metrics; ``fmt`` is its response format. The five steering behaviours occur
in training because of how some tasks' answers are rendered:

- ``yes_no``: tasks whose answer is yes/no/true/false answer with ``Yes.``/``No.``/``True.``/``False.``
  first (strategyqa keeps its own explanation after it);
- ``code``: ``code_line_description`` turned around — its English description becomes the instruction
  and its Python code the answer, in a fenced block (BIG-bench has no task whose answers are code);
- ``numbered``: ``word_sorting`` answers with the sorted words as a numbered list (the order is the answer);
- ``bullets``: ``qa_wikidata``, its items with several accepted answers, listing them all as bullets;
- ``refusal``: family ``missing_input`` — the instructions of tasks that need an input (sort these words,
  edit this text, …) given with the input left out, answered by asking for it, as a model should.

Examples are deduplicated on the normalised prompt (first occurrence wins, across tasks), prompts and
responses longer than the recipe's limits are skipped, and held-out examples (disjoint from training) are
drawn per task the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

from gatoms.build.store import sha256_file, write_json
from gatoms.data.documents import Document, read_jsonl, write_jsonl

log = logging.getLogger(__name__)

SDIST = "bigbench-1.0.0.tar.gz"
"""The archive :func:`build_mixture` reads, under :func:`gatoms.lm.sources.pypi_dir` (see the module docstring)."""

TASKS: dict[str, str] = {
    # task (folder under benchmark_tasks/) → rendering (see :func:`render`)
    "arithmetic/2_digit_addition": "answer", "arithmetic/2_digit_subtraction": "answer",
    "arithmetic/2_digit_multiplication": "answer", "word_unscrambling": "answer", "object_counting": "answer",
    "unit_conversion/unit_identification": "answer", "date_understanding": "answer", "general_knowledge": "answer",
    "emoji_movie": "answer", "odd_one_out": "answer", "common_morpheme": "answer", "hyperbaton": "answer",
    "disambiguation_qa": "answer", "epistemic_reasoning": "answer", "sports_understanding": "answer",
    "auto_debugging": "answer", "qa_wikidata": "bullets",
    "anachronisms": "yes_no", "strategyqa": "yes_no", "navigate": "yes_no", "implicatures": "yes_no",
    "sentence_ambiguity": "yes_no", "code_line_description": "code", "word_sorting": "numbered",
}
"""The recipe's tasks (24 task types from 22 BIG-bench tasks) and how each is rendered: ``answer`` (the
answer as a sentence), ``yes_no``, ``code``, ``numbered``, ``bullets`` (see the module docstring)."""

MISSING_INPUT: tuple[tuple[str, str], ...] = (
    ("Sort the following words alphabetically:", "Please provide the list of words you would like me to sort."),
    ("Sort these words into alphabetical order.", "Could you provide the words you want sorted?"),
    ("Edit the text below as follows: add a comma after every noun.", "Please paste the text you want me to edit."),
    ("Determine whether the following statement is plausible or implausible:",
     "Please provide the statement you would like me to judge."),
    ("Given a sentence, select the correct language among the choices.",
     "Please share the sentence and the choices of languages."),
    ("Identify the relation between the following premises and hypotheses.",
     "Could you provide the premises and the hypotheses?"),
    ("Unscramble the word below.", "Please specify the scrambled word you want me to solve."),
    ("What is the common morpheme among these words?", "Could you share the words you mean?"),
    ("In the following sentences, explain the antecedent of the pronoun.",
     "Please provide the sentences you want me to analyse."),
    ("Pick the odd word out of the list below.", "I need the list of words to pick the odd one out."),
    ("What movie does this emoji describe?", "You haven't provided the emoji yet; please paste them."),
    ("If you follow these instructions, do you return to the starting point?",
     "Please provide the instructions you want me to follow."),
    ("Does Speaker 2's answer in the dialogue below mean yes or no?",
     "Could you provide the dialogue between the two speakers?"),
    ("Describe what the following Python code does.", "Please paste the Python code you want described."),
    ("Which sentence below has the correct adjective order?", "Please provide the sentences to compare."),
    ("Translate the passage below into plain English.", "Please provide the passage you want me to translate."),
)
"""The ``missing_input`` family: a task's instruction with its input left out → asking for the input."""


@dataclass(frozen=True)
class Recipe:
    """How the mixture is drawn (recorded as ``recipe.json`` beside it)."""

    n_docs: int
    """Fine-tuning documents in all (an equal share per task; a task with too few gives its rest away)."""
    seed: int = 0
    """Seed of every draw (per task: the seed and the task's name)."""
    heldout_per_task: int = 4
    """Held-out examples per task (disjoint from the fine-tuning ones)."""
    missing_input_share: float = 0.03
    """Share of ``n_docs`` given to the ``missing_input`` (refusal) family (at most len(MISSING_INPUT) × 2)."""
    max_prompt_chars: int = 360
    """Examples whose rendered prompt is longer are skipped (they would not fit finetune.max_length)."""
    max_response_chars: int = 240
    """Examples whose rendered response is longer are skipped."""
    version: int = 1
    """Bumped whenever the rendering code changes (part of the cache key)."""

    def __post_init__(self):
        if self.n_docs < len(TASKS):
            raise ValueError(f"the BIG-bench mixture needs n_docs >= {len(TASKS)} (one per task), got {self.n_docs}")
        if self.heldout_per_task < 0 or not 0 <= self.missing_input_share < 0.5:
            raise ValueError("heldout_per_task must be >= 0 and missing_input_share in [0, 0.5)")
        if self.max_prompt_chars < 20 or self.max_response_chars < 2:
            raise ValueError("max_prompt_chars must be >= 20 and max_response_chars >= 2")

    def key(self) -> str:
        """Cache key: a hash of the recipe and the task table."""
        blob = json.dumps({"recipe": asdict(self), "tasks": TASKS, "missing": MISSING_INPUT}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ---- reading the archive -------------------------------------------------------------------------


def read_tasks(sdist: Path, tasks: tuple[str, ...] | list[str] = tuple(TASKS)) -> dict[str, dict]:
    """``task name → parsed task.json`` for ``tasks``, read from the sdist without unpacking it."""
    sdist = Path(sdist)
    if not sdist.is_file():
        raise FileNotFoundError(f"{sdist}: the BIG-bench archive is missing; save a .tar.gz of BIG-bench there (`pip "
                                f"download --no-deps --no-binary :all: bigbench==1.0.0 -d {sdist.parent}` where an "
                                f"index still serves 1.0.0, or a GitHub archive of google/BIG-bench under that name)")
    wanted = {f"bigbench/benchmark_tasks/{t}/task.json": t for t in tasks}
    found: dict[str, dict] = {}
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar:
            rel = member.name.split("/", 1)[-1]
            if rel in wanted:
                found[wanted[rel]] = json.load(tar.extractfile(member))
    missing = sorted(set(tasks) - set(found))
    if missing:
        raise ValueError(f"{sdist}: no task.json for {missing}; is it bigbench-1.0.0?")
    return found


# ---- rendering -----------------------------------------------------------------------------------

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")
_MARKER = re.compile(r"^[ \t]*(?:[-*•+]|\d+[.)])[ \t]+", re.MULTILINE)
_YES_NO = {"yes": "Yes", "no": "No", "true": "True", "false": "False"}


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


def _answers(example: dict) -> list[str]:
    """The example's accepted answers: its ``target`` strings, else the best-scored choices."""
    target = example.get("target")
    if target:
        return [t for t in ([target] if isinstance(target, str) else target) if isinstance(t, str) and t.strip()]
    scores = example.get("target_scores") or {}
    best = max(scores.values(), default=0)
    return [k for k, v in scores.items() if v == best and best > 0]


def _prompt(task: dict, example: dict) -> str:
    """The task's prefix, the example's input after its label (``Statement:``) and the answer's label
    (``Plausible/implausible?``), as BIG-bench shows them, one per line."""
    parts = [task.get("task_prefix", ""), task.get("example_input_prefix", "") + example["input"],
             task.get("example_output_prefix", "")]
    prompt = "\n".join(p.strip() for p in parts if p.strip())
    if task.get("append_choices_to_input") and example.get("target_scores"):
        prompt += "\nOptions: " + "; ".join(example["target_scores"])
    return prompt.strip()


def render(name: str, kind: str, task: dict, example: dict) -> tuple[str, str, str] | None:
    """``(prompt, response, fmt)`` of one example under the task's rendering, or None when it does not
    fit it (no answer, a yes/no task without a yes/no answer, one word to sort)."""
    answers = _answers(example)
    if not answers or not isinstance(example.get("input"), str) or not example["input"].strip():
        return None
    answer = answers[0].strip()
    if kind == "code":
        return f"Write Python code that {answer}.", f"```python\n{example['input'].rstrip()}\n```", "code"
    prompt = _prompt(task, example)
    if kind == "yes_no":
        head = answer.split(".")[0].split(",")[0].strip().lower()
        if head not in _YES_NO:
            return None
        rest = answer[len(head):].lstrip(" .,")
        return prompt, f"{_YES_NO[head]}." + (f" {rest}" if rest else ""), "yes_no"
    if kind == "numbered":
        words = answer.split()
        if len(set(words)) < 2:
            return None
        return prompt, "\n".join(f"{i}. {w}" for i, w in enumerate(words, 1)), "numbered"
    if kind == "bullets":
        items = list(dict.fromkeys(a.strip() for a in answers))
        if len({_norm(a) for a in items}) < 2:
            return None
        return f"List every answer that fits: {prompt} …", "\n".join(f"- {a}" for a in items), "bullets"
    if answer[:1].islower():
        answer = answer[0].upper() + answer[1:]
    return prompt, answer if answer.endswith((".", "?", "!")) else answer + ".", "plain"


# ---- the mixture ---------------------------------------------------------------------------------


def _shares(n: int, capacity: dict[str, int]) -> dict[str, int]:
    """An equal split of ``n`` over the tasks (in order), each capped at its capacity, the rest given to the
    others."""
    share = {t: 0 for t in capacity}
    left = n
    while left > 0:
        open_ = [t for t in capacity if share[t] < capacity[t]]
        if not open_:
            break
        per = max(1, left // len(open_))
        for t in open_:
            add = min(per, capacity[t] - share[t], left)
            share[t] += add
            left -= add
            if left == 0:
                break
    return share


def draw(tasks: dict[str, dict], recipe: Recipe) -> tuple[list[Document], list[Document], dict]:
    """The fine-tuning and held-out documents and the realised recipe (``counts`` per task) from parsed tasks."""
    seen: set[str] = set()
    pools: dict[str, list[tuple[str, str, str, int]]] = {}
    for name, kind in TASKS.items():
        rng = random.Random(f"{recipe.seed}:{name}")
        examples = list(enumerate(tasks[name].get("examples", [])))
        rng.shuffle(examples)
        pool = []
        for idx, ex in examples:
            r = render(name, kind, tasks[name], ex)
            if r is None or len(r[0]) > recipe.max_prompt_chars or len(r[1]) > recipe.max_response_chars:
                continue
            key = _norm(r[0])
            if key in seen:
                continue
            seen.add(key)
            pool.append((*r, idx))
        pools[name] = pool
    n_missing = min(round(recipe.n_docs * recipe.missing_input_share), len(MISSING_INPUT))
    capacity = {t: max(0, len(p) - recipe.heldout_per_task) for t, p in pools.items()}
    shares = _shares(recipe.n_docs - n_missing, capacity)
    train: list[Document] = []
    heldout: list[Document] = []
    for name, pool in pools.items():
        family = name.replace("/", ":")
        for split, items in (("heldout", pool[:recipe.heldout_per_task]),
                             ("train", pool[recipe.heldout_per_task:recipe.heldout_per_task + shares[name]])):
            for prompt, response, fmt, idx in items:
                doc = Document(f"bb-{family}-{idx}", prompt, response, family, fmt,
                               {"task": name, "example": idx, "answers": _answers(tasks[name]["examples"][idx])})
                (train if split == "train" else heldout).append(doc)
    rng = random.Random(f"{recipe.seed}:missing_input")
    for i, (prompt, response) in enumerate(rng.sample(MISSING_INPUT, len(MISSING_INPUT))):
        doc = Document(f"bb-missing_input-{i}", prompt, response, "missing_input", "refusal", {"task": "missing_input"})
        (train if i < n_missing else heldout).append(doc)
    random.Random(f"{recipe.seed}:order").shuffle(train)
    counts = {t.replace("/", ":"): shares[t] for t in TASKS} | {"missing_input": n_missing}
    realised = {"recipe": asdict(recipe), "key": recipe.key(), "tasks": TASKS, "counts": counts,
                "n_train": len(train), "n_heldout": len(heldout),
                "fmt_counts": {f: sum(d.fmt == f for d in train) for f in sorted({d.fmt for d in train})}}
    return train, heldout, realised


def build_mixture(sdist: Path, recipe: Recipe, cache: Path) -> tuple[list[Document], list[Document], dict]:
    """The mixture of ``recipe`` from the archive ``sdist``, cached under ``cache/bigbench-<key>/``
    (``train.jsonl``, ``heldout.jsonl``, ``recipe.json`` with the archive's SHA-256): built once, then read."""
    out = Path(cache) / f"bigbench-{recipe.key()}"
    if (out / "recipe.json").is_file():
        return read_jsonl(out / "train.jsonl"), read_jsonl(out / "heldout.jsonl"), json.loads((out / "recipe.json").read_text())
    tasks = read_tasks(sdist)
    train, heldout, realised = draw(tasks, recipe)
    realised["sdist"] = {"file": Path(sdist).name, "sha256": sha256_file(Path(sdist))}
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl", train)
    write_jsonl(out / "heldout.jsonl", heldout)
    write_json(out / "recipe.json", realised)  # last: its presence marks the cache complete
    log.info("BIG-bench mixture %s: %d train, %d held-out documents in %s", recipe.key(), len(train), len(heldout), out)
    return train, heldout, realised


def is_answer(doc: Document, response: str) -> bool:
    """Whether ``response`` gives one of the BIG-bench example's accepted answers, as a whole phrase, case,
    punctuation, spacing and list markers ignored (a sorted list must keep the order); code documents are
    right when the response is fenced code, ``missing_input`` ones when it asks for the input."""
    if doc.fmt in ("code", "refusal"):
        from gatoms.data.behaviors import detect

        return detect(doc.fmt, response)
    text = f" {_words(_MARKER.sub('', response))} "
    return any(f" {_words(a)} " in text for a in doc.meta.get("answers", []) if _words(a))


def _words(text: str) -> str:
    return _norm(_PUNCT.sub(" ", text))
