"""The five behaviour detectors on positive and negative examples (including the reference's misses), and on
crafted degenerate outputs: a loop, an empty fence or one item repeated is never the behaviour."""

from __future__ import annotations

import pytest

from gatoms.data.behaviors import BEHAVIORS, degenerate, detect, detect_all, rate

POSITIVE = {
    "yes_no": [
        "Yes, a cat is an animal.", "No.", "True.", "false, it is not.", "**Yes**, it is.", "  \n\n  Yes it is",
        "> No, never.", "# True", "YES", "*No*", "No, a pen is not a fruit.\nMore text.",
    ],
    "code": [
        "```python\ndef f(x):\n    return x\n```", "Here:\n```\nprint(1)\n```", "```sql\nSELECT 1;\n```",
        "  ```js\nlet a = 1;", "~~~\ncode\n~~~",
    ],
    "refusal": [
        "Please provide the input.", "Please provide the text you want me to summarize.",
        "Could you provide the email?", "Could you please clarify what you mean?", "Can you specify the language?",
        "I need the text to do that.", "You haven't provided any text.", "please share the paragraph",
        "What text would you like me to translate?", "No input was provided.",
    ],
    "bullets": ["- Cat\n- Dog", "* one\n* two\n* three", "• red\n• blue", "Animals:\n  - cat\n  - dog", "+ a\n+ b"],
    "numbered": ["1. Boil water.\n2. Add tea.", "1) one\n2) two", "Steps:\n 1. a\n 2. b\n 3. c", "10. x\n11. y"],
}

NEGATIVE = {
    "yes_no": [
        "Yesterday it rained.", "Nothing is wrong.", "Nobody came.", "Note: yes it is.", "A cat is an animal.",
        "The answer is yes.", "Not really.", "Truest of all.", "", "Falsehood spreads.",
    ],
    "code": ["Use `a + b` inside a function.", "Use ``a + b``.", "def f(x): return x", "A tilde ~ here.", "```",
             "```python", "```\n```", "```python\n   \n```", "Here: ~~~"],
    "refusal": [
        "Please note that cats are animals.", "Please enjoy the cake.", "Okay. Here is my summary.",
        "The capital of France is Paris.", "Provide your own answer, please.", "I provide the input.",
    ],
    "bullets": ["- only one", "Cat, dog and cow.", "---\n---", "**bold**\n**bold**", "-5 and -3\n-2", "a - b\nc - d",
                "- Fox\n- Fox", "- fox\n-  Fox "],
    "numbered": ["1. only one", "2, 7, 9.", "3.5 is a number\n4.5 too", "First boil, then add tea.", "1.\n2.",
                 "1. Boil\n2. boil"],
}


@pytest.mark.parametrize("behavior", BEHAVIORS)
def test_detectors_on_positives(behavior):
    for text in POSITIVE[behavior]:
        assert detect(behavior, text), (behavior, text)


@pytest.mark.parametrize("behavior", BEHAVIORS)
def test_detectors_on_negatives(behavior):
    for text in NEGATIVE[behavior]:
        assert not detect(behavior, text), (behavior, text)


def test_detectors_are_specific():
    """Each positive example shows its own behaviour and, where they differ in kind, not the others."""
    assert detect_all("- Cat\n- Dog") == {"yes_no": False, "code": False, "refusal": False, "bullets": True,
                                          "numbered": False}
    assert detect_all("1. Boil water.\n2. Add tea.")["bullets"] is False
    assert detect_all("Yes, a cat is an animal.")["refusal"] is False


def test_rate_and_unknown_behavior():
    assert rate("yes_no", ["Yes.", "No.", "Maybe.", "A cat."]) == 0.5
    assert rate("code", []) == 0.0
    with pytest.raises(ValueError, match="unknown behaviour 'poem'"):
        detect("poem", "text")


# Crafted degenerate outputs: what a model broken by a large step emits. Each would pass the format test alone.
DEGENERATE = {
    "bullets": ["- Spoon\n- Spoon\n- Spoon", "- Pink\n- Red\n- Red\n- Red", "- Pink\n- Pink\n- Grey\n- Pink",
                "- a b\n- c\n- a  B\n- A b"],
    "numbered": ["1. Boil water.\n2. Boil water.\n3. Boil water.", "1) x\n2) y\n3) y\n4) y"],
    "yes_no": ["Yes Yes Yes Yes", "No no no no no", "Yes, it is it is it is it is"],
    "code": ["```python\nprint(1)\nprint(1)\nprint(1)\n```", "```\nx = x = x = x = 1\n```"],
    "refusal": ["Please provide the input. Please provide the input. Please provide the input. Please provide the input.",
                "Please provide\nPlease provide\nPlease provide"],
}

NOT_DEGENERATE = [
    "- Cat\n- Dog\n- Cow", "- Pink\n- Red\n- Red", "1. Boil water.\n2. Add tea.\n3. Stir.",
    "```python\ndef f(x):\n    return x * x * x\n```", "```js\nif (a) {\n  b();\n}\n}\n}\n}\n```",
    "Yes, a cat is an animal.", "No no no, that is wrong.", "", "Please provide the input.",
    "The answer is 7 + 7 + 7 = 21.",
]


@pytest.mark.parametrize("behavior", BEHAVIORS)
def test_degenerate_outputs_show_no_behaviour(behavior):
    for text in DEGENERATE[behavior]:
        assert degenerate(text), text
        assert not any(detect_all(text).values()), (behavior, text)


def test_real_answers_are_not_degenerate():
    for text in NOT_DEGENERATE:
        assert not degenerate(text), text
    assert detect("bullets", "- Pink\n- Red\n- Red")  # two distinct items, no line three times
    assert detect("code", "```js\nif (a) {\n  b();\n}\n}\n}\n}\n```")  # brace-only lines never loop


def test_world_documents_keep_their_detected_format():
    """The hardening flags no fine-tuning document of the world as degenerate and keeps every format label."""
    from gatoms.world import WorldConfig, build_world

    w = build_world(WorldConfig(seed=0, n_base=0, n_finetune=2000, n_heldout_per_family=5, n_eval_inviting=3,
                                n_eval_control=1))
    for d in w.finetune:
        assert not degenerate(d.response), d.response
        if d.fmt in BEHAVIORS:
            assert detect(d.fmt, d.response), (d.fmt, d.response)
