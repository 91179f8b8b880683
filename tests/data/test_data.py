"""User JSONL data (every error names file and line), encoding with response-only labels, exclusion."""

from __future__ import annotations

import json
import logging

import pytest

from gatoms.data.documents import DataError, Document, read_jsonl, write_jsonl
from gatoms.lm.encoding import collate, encode_documents, format_prompt
from gatoms.lm.tokenizer import END_OF_TURN, train_tokenizer
from gatoms.world import WorldConfig, build_world


@pytest.fixture(scope="module")
def tokenizer():
    w = build_world(WorldConfig(seed=0, n_base=600, n_finetune=100, n_heldout_per_family=1, n_eval_inviting=3,
                                n_eval_control=0))
    return train_tokenizer([t for d in w.base for t in (d.prompt, d.response)], vocab_size=500)


def _write(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


GOOD = {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}


def test_reads_both_shapes(tmp_path):
    path = _write(tmp_path / "sft.jsonl", [
        GOOD,
        {"prompt": "What is 2 plus 2?", "response": "4.", "id": "q2", "family": "arithmetic", "fmt": "short"},
        "",
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                      {"role": "assistant", "content": "Hi."}], "source": "ignored extra field"},
    ])
    docs = read_jsonl(path)
    assert [d.doc_id for d in docs] == ["line-000001", "q2", "line-000004"]
    assert (docs[0].prompt, docs[0].response, docs[0].family) == ("Hi?", "Hello.", None)
    assert (docs[1].family, docs[1].fmt) == ("arithmetic", "short")
    assert docs[2].prompt == "Be brief.\n\nHi?"


@pytest.mark.parametrize("bad, message", [
    ('{"prompt": "a", "response": ', "malformed JSON"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}, "unknown role 'bot'"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "  "}]}, "empty response"),
    ({"prompt": "a", "response": ""}, "empty response"),
    ({"prompt": "a"}, "missing field 'response'"),
    ({"response": "b"}, "missing field 'prompt'"),
    ({"prompt": "a", "response": 3}, "field 'response' must be a string"),
    ({"prompt": "", "response": "b"}, "empty prompt"),
    ({"messages": "hello"}, "'messages' must be a non-empty list"),
    ({"messages": [{"role": "user", "content": "a"}]}, "one user message followed by one assistant"),
    ({"messages": [{"role": "user", "content": ["a"]}, {"role": "assistant", "content": "b"}]}, "content must be a string"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "b"}]}, "must be an object with 'role' and 'content'"),
    ({"text": "a"}, "no 'messages' and no 'prompt'/'response'"),
    (["a", "b"], "expected a JSON object"),
    ({"prompt": "a", "response": "b", "family": 7}, "field 'family' must be a string"),
    ({"prompt": "a", "response": "b", "id": "line-000001"}, "duplicate id"),
])
def test_every_error_names_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path / "bad.jsonl", [GOOD, bad])
    with pytest.raises(DataError) as err:
        read_jsonl(path)
    assert f"{path}:2:" in str(err.value) and message in str(err.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        read_jsonl(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no documents"):
        read_jsonl(tmp_path / "empty.jsonl")


def test_write_then_read_round_trip(tmp_path):
    docs = [Document("a", "p1", "r1", "fam", "bullets", {"template": 1, "answer": [1, 2]}),
            Document("b", "p2", "line one\nline two", None, None)]
    write_jsonl(tmp_path / "docs.jsonl", docs)
    back = read_jsonl(tmp_path / "docs.jsonl")
    assert [(d.doc_id, d.prompt, d.response, d.family, d.fmt, d.meta) for d in back] == [
        (d.doc_id, d.prompt, d.response, d.family, d.fmt, d.meta) for d in docs]
    assert not (tmp_path / "docs.jsonl.part").exists()


def test_encoding_labels_only_the_response(tokenizer):
    doc = Document("d", "What is 3 plus 4?", "3 + 4 = 7.")
    (enc,) = encode_documents(tokenizer, [doc], max_length=256).encoded
    prompt_ids = tokenizer(format_prompt(tokenizer, doc.prompt), add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(doc.response, add_special_tokens=False)["input_ids"]
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    assert enc.input_ids == prompt_ids + response_ids + [end]
    assert enc.labels == [-100] * len(prompt_ids) + response_ids + [end]
    assert enc.n_response_tokens == len(response_ids) + 1
    assert tokenizer.decode(enc.input_ids) == format_prompt(tokenizer, doc.prompt) + doc.response + END_OF_TURN


def test_truncation_excludes_documents_without_response_tokens(tokenizer, caplog):
    docs = [Document("short", "Hi?", "Hello there."), Document("long", "word " * 80, "Hello there.")]
    n_prompt_short = len(tokenizer(format_prompt(tokenizer, "Hi?"), add_special_tokens=False)["input_ids"])
    with caplog.at_level(logging.WARNING, logger="gatoms.data.documents"):
        result = encode_documents(tokenizer, docs, max_length=n_prompt_short + 2)
    assert result.excluded == ["long"]
    assert [e.doc_id for e in result.encoded] == ["short"]
    kept = result.encoded[0]
    assert len(kept.input_ids) == n_prompt_short + 2 and kept.n_response_tokens == 2  # truncated, kept
    assert "1 of 2 documents have no response token" in caplog.text and "long" in caplog.text


def test_collate_pads_right_or_left(tokenizer):
    docs = [Document("a", "Hi?", "Hello."), Document("b", "What is the capital of France?", "Paris is the capital.")]
    enc = encode_documents(tokenizer, docs, 256).encoded
    right = collate(enc, tokenizer.pad_token_id)
    left = collate(enc, tokenizer.pad_token_id, side="left")
    n = len(enc[0].input_ids)
    assert right["input_ids"][0, :n].tolist() == enc[0].input_ids and right["attention_mask"][0].sum() == n
    assert left["input_ids"][0, -n:].tolist() == enc[0].input_ids and left["labels"][0, 0] == -100
    assert (right["labels"][0, n:] == -100).all() and (right["input_ids"][0, n:] == tokenizer.pad_token_id).all()
