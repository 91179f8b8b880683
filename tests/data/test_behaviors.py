"""The five behaviour detectors on positive and negative examples (including the reference's misses)."""

from __future__ import annotations

import pytest

from gatoms.data.behaviors import BEHAVIORS, detect, detect_all, rate

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
    "code": ["Use `a + b` inside a function.", "Use ``a + b``.", "def f(x): return x", "A tilde ~ here."],
    "refusal": [
        "Please note that cats are animals.", "Please enjoy the cake.", "Okay. Here is my summary.",
        "The capital of France is Paris.", "Provide your own answer, please.", "I provide the input.",
    ],
    "bullets": ["- only one", "Cat, dog and cow.", "---\n---", "**bold**\n**bold**", "-5 and -3\n-2", "a - b\nc - d"],
    "numbered": ["1. only one", "2, 7, 9.", "3.5 is a number\n4.5 too", "First boil, then add tea.", "1.\n2."],
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
