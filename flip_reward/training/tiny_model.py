"""Build a tiny random chat model and tokenizer, locally and without any download.

Tests and CPU smoke runs need a judge (and a policy) that an OpenAI-compatible server can load, but
this project must not depend on the Hugging Face hub for them. This module owns that stand-in: a
two-layer random Qwen3 with a byte-level BPE tokenizer trained on a few paragraphs of built-in text
and a ChatML chat template. Its output is gibberish; it exists to exercise the plumbing (serving,
chat templating, request and response handling), never to judge anything.

The rest of the package imports this module only where it is used (``flip-reward tiny-model DIR``, ``tiny:SEED``
as a model name), so it only costs its imports then.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from flip_reward.data.writing import OutputError, write_errors
from flip_reward.os_errors import reason

IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
VOCAB_SIZE = 1024

# ChatML, as Qwen uses it. Extra render kwargs such as `enable_thinking` are accepted and ignored.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

CORPUS = """\
A good instruction says what the writer wants, who the reader is, and how long the answer should be.
When a response is written well, a careful reader can often guess the request that produced it.
The judge reads the response, thinks about the task behind it, and writes down the instruction it
infers. We then compare the inferred instruction with the real one, word by word, and the overlap
becomes the reward. A response that ignores the request gets a low score, because nobody could
recover the original question from it.

Write a short poem about the sea. Summarize the following article in three sentences. Explain how a
binary search works and give an example in Python. Translate this paragraph into French. List five
ideas for a birthday party for a seven year old child. Give me a recipe for a quick vegetable soup.
What are the main causes of the French Revolution? Rewrite this email so that it sounds more polite.

The sea was calm in the morning, and the boats left the harbor one by one. By noon the wind had
turned, the sky was grey, and the fishermen were counting the hours until they could come home.
Binary search keeps two indices, low and high, and looks at the middle element of the sorted list.
If the target is smaller, it moves high below the middle; if larger, it moves low above it. Each
step halves the range, so the search takes about log two of n comparisons.

For the soup, chop an onion, two carrots, and a potato, then cook them in a little oil for five
minutes. Add water or stock, salt and pepper, and simmer for twenty minutes until everything is soft.
Dear colleague, thank you for your message. I would be grateful if we could move our meeting to
Thursday afternoon, if that suits you. Please let me know what time works best for your team.

The history teacher explained that the revolution had many causes: debt from expensive wars, bad
harvests and the price of bread, new ideas about rights and citizens, and a government that could not
reform itself. Students were asked to write an essay comparing these causes and to decide which one
mattered most, giving evidence from letters, newspapers and speeches of the period.

A helpful assistant answers the question that was asked, keeps the answer focused, and states any
assumptions clearly. If the user wants a table, it returns a table; if the user wants JSON, it returns
valid JSON with the requested keys. It should avoid repeating itself, admit when it does not know
something, and prefer simple words over complicated jargon whenever possible.

Numbers, dates and names matter too: 1, 2, 3, 10, 42, 100, 2024; Monday, Tuesday, January, March;
Alice, Bob, Paris, London. Questions end with a question mark? Lists use commas, and code uses
brackets (like this), braces {like this}, quotes "like this", and symbols such as = + - * / < > #.
"""


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on CORPUS and wrap it as a ChatML tokenizer (deterministic)."""
    special_tokens = [END_OF_TEXT, IM_START, IM_END]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS.splitlines(keepends=True), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        additional_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
    )


def build_model(tokenizer: PreTrainedTokenizerFast, seed: int) -> Qwen3ForCausalLM:
    """A two-layer random Qwen3 sized for `tokenizer`, initialised from `seed`."""
    eos_id, pad_id = tokenizer.convert_tokens_to_ids([IM_END, END_OF_TEXT])
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        initializer_range=0.5,  # at the usual 0.02, greedy decoding just repeats the last token
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=[eos_id, pad_id], pad_token_id=pad_id)
    return model.eval()


def build_tiny_chat_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny random chat model and its tokenizer to ``out_dir`` (same seed, same files), made when missing.
    The files are written to a folder inside it first and moved into place only once all are written, so that a
    failure (a full disk) leaves no part of a model behind: OutputError names ``out_dir`` and says what was kept
    (a folder made for the model is removed again)."""
    out_dir = Path(out_dir)
    made = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".partial-", dir=out_dir) as partial:
            tokenizer = build_tokenizer()
            build_model(tokenizer, seed).save_pretrained(partial)
            tokenizer.save_pretrained(partial)
            for name in os.listdir(partial):
                os.replace(Path(partial, name), out_dir / name)
    except write_errors() as error:
        if made:
            with contextlib.suppress(OSError):
                shutil.rmtree(out_dir)
        kept = "the folder was removed" if made else "nothing in it was replaced"
        raise OutputError(f"could not write {out_dir}: {reason(error)}; {kept}") from error
    return out_dir
