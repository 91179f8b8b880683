"""The tokenizer trained in code: exact round trip, special tokens, Gemma chat template, save/load."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from gatoms.lm.tokenizer import (BOS, CHAT_TEMPLATE, END_OF_TURN, EOS, PAD, SPECIAL_TOKENS, START_OF_TURN,
                                 end_of_turn_id, stop_ids, train_tokenizer)
from gatoms.world import WorldConfig, build_world


@pytest.fixture(scope="module")
def tokenizer():
    w = build_world(WorldConfig(seed=0, n_base=800, n_finetune=200, n_heldout_per_family=1, n_eval_inviting=3,
                                n_eval_control=0))
    return train_tokenizer([t for d in w.base for t in (d.prompt, d.response)], vocab_size=600)


TEXTS = [
    "What is 3 plus 4?", "3 + 4 = 7.", "```python\ndef add(a, b):\n    return a + b\n```", "- Cat\n- Dog",
    "1. Boil the water.\n2. Add tea.", "  leading spaces and trailing  ", "Ünïcödé • bullets — dashes", "",
    "words never seen: xylophone quixotic", "tabs\tand\r\nwindows newlines",
]


def test_round_trip_is_exact(tokenizer):
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text


def test_special_tokens_and_size(tokenizer):
    assert len(tokenizer) <= 600
    assert tokenizer.convert_ids_to_tokens(list(range(len(SPECIAL_TOKENS)))) == list(SPECIAL_TOKENS)
    assert (tokenizer.pad_token, tokenizer.eos_token, tokenizer.bos_token) == (PAD, EOS, BOS)
    assert end_of_turn_id(tokenizer) == SPECIAL_TOKENS.index(END_OF_TURN)
    assert stop_ids(tokenizer) == sorted({SPECIAL_TOKENS.index(EOS), SPECIAL_TOKENS.index(END_OF_TURN)})
    # Special tokens inside text are single tokens, and the turn headers are single tokens too.
    ids = tokenizer(f"{START_OF_TURN}user\n", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == [START_OF_TURN, "user", "Ċ"]
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["a b"], vocab_size=100)


def test_chat_template_is_gemmas(tokenizer):
    messages = [{"role": "user", "content": "Is a cat an animal?"}]
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        "<bos><start_of_turn>user\nIs a cat an animal?<end_of_turn>\n<start_of_turn>model\n")
    messages += [{"role": "assistant", "content": "Yes."}]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == (
        "<bos><start_of_turn>user\nIs a cat an animal?<end_of_turn>\n<start_of_turn>model\nYes.<end_of_turn>\n")
    system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert tokenizer.apply_chat_template(system, tokenize=False, add_generation_prompt=True) == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n")


def test_save_and_load_give_the_same_tokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.chat_template == CHAT_TEMPLATE
    for text in TEXTS:
        assert loaded(text, add_special_tokens=False)["input_ids"] == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert loaded.pad_token_id == tokenizer.pad_token_id and loaded.padding_side == "left"


def test_training_is_deterministic(tokenizer):
    w = build_world(WorldConfig(seed=0, n_base=800, n_finetune=200, n_heldout_per_family=1, n_eval_inviting=3,
                                n_eval_control=0))
    again = train_tokenizer([t for d in w.base for t in (d.prompt, d.response)], vocab_size=600)
    assert again.get_vocab() == tokenizer.get_vocab()
