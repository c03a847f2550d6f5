"""Tiny random-initialised text components, built in code, for tests and `kinema models make-tiny`.

A word-level tokenizer and small T5 / UMT5 encoders stand in for the hub's tiny test checkpoints, so
that a whole pipeline can be built, saved and loaded with no network. The outputs mean nothing; the
shapes, file layouts and code paths are the real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kinema.backends.pipeline import library

VOCABULARY = """
a an the of on in and with to from at over under left right up down moving slowly quickly red green
blue white black yellow orange purple cyan gray circle square star box ball cat dog bird car city
street sky sea forest mountain night day light camera pan zoom close wide shot
"""
WORDS = tuple(VOCABULARY.split())
TEXT_DIM = 32  # d_model of the tiny encoders; transformers' text_dim / caption_channels must match


def tokenizer() -> Any:
    """A T5-like fast tokenizer (`<pad>`, `</s>`, `<unk>`, whitespace words) made without the hub."""
    tokenizers = library("tokenizers")
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return library("transformers").PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def _t5_config(cls: Any, vocab_size: int) -> Any:
    return cls(
        vocab_size=vocab_size,
        d_model=TEXT_DIM,
        d_ff=37,
        d_kv=8,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
    )


def t5_encoder(vocab_size: int) -> Any:
    """LTX-Video and CogVideoX take a T5 encoder."""
    transformers = library("transformers")
    return transformers.T5EncoderModel(_t5_config(transformers.T5Config, vocab_size)).eval()


def umt5_encoder(vocab_size: int) -> Any:
    """Wan takes a UMT5 encoder."""
    transformers = library("transformers")
    return transformers.UMT5EncoderModel(_t5_config(transformers.UMT5Config, vocab_size)).eval()


def sentencepiece_file(path: Path) -> Path:
    """Train a word-level SentencePiece model on WORDS, in memory, and write it to `path`.

    Kolors' ChatGLM tokenizer reads a SentencePiece file; training one takes milliseconds.
    """
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([" ".join(WORDS)] * 8 + list(WORDS)),
        model_writer=model,
        vocab_size=len(WORDS) + 3,
        model_type="word",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())
    return path
