"""A small byte-level BPE tokenizer trained in code, with Gemma's special tokens and chat template.

The embedded tiny model needs a vocabulary of about a thousand tokens; Gemma-3 brings its own
tokenizer. Both are used through the same Hugging Face API — ``tokenizer.apply_chat_template`` with
the Gemma turn markers — so the data code (:mod:`gatoms.data.documents`) has one path for both::

    <bos><start_of_turn>user
    What is 3 plus 4?<end_of_turn>
    <start_of_turn>model
    3 + 4 = 7.<end_of_turn>

Byte-level BPE round-trips any text exactly (newlines and the spaces of code included), so the
behaviour detectors see what the model wrote.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, EOS, BOS, UNK = "<pad>", "<eos>", "<bos>", "<unk>"
START_OF_TURN, END_OF_TURN = "<start_of_turn>", "<end_of_turn>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, EOS, BOS, UNK, START_OF_TURN, END_OF_TURN)
"""Special tokens in id order (0–5), Gemma's names and Gemma's order for the first four."""

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] | trim + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<start_of_turn>model\n' }}"
    "{%- endif -%}"
)
"""Gemma-3's chat template for text (system folded into the first user turn, ``assistant`` → ``model``)."""


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 1024,
    min_frequency: int = 2,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it as a Hugging Face tokenizer.

    The result has ``<pad>``/``<eos>``/``<bos>``/``<unk>`` (ids 0–3), the turn markers (ids 4–5), the
    Gemma chat template, and ``len(tokenizer) <= vocab_size``. Deterministic for the same texts.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + special tokens), "
                         f"got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The turn headers ("user\n", "model\n") are in every chat-formatted document: make them
    # single tokens as in Gemma's vocabulary (they occur once per document in training, so count them so).
    texts = list(texts)
    tok.train_from_iterator([*texts, *(["user\nmodel\n"] * max(100, len(texts) // 2))], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[START_OF_TURN, END_OF_TURN],
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    return fast


def end_of_turn_id(tokenizer) -> int:
    """The id that ends a model turn: ``<end_of_turn>`` where the tokenizer has it, else eos."""
    tid = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None:
        return tid
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has neither <end_of_turn> nor an eos token; cannot mark response ends")
    return tokenizer.eos_token_id


def stop_ids(tokenizer) -> list[int]:
    """Token ids that end generation: end of turn and eos."""
    ids = {end_of_turn_id(tokenizer)}
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)
