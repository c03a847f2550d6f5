import numpy as np

from kinema.world.captions import MAX_TOKENS, NULL, VOCAB, WORD_ID, Parsed, caption, parse, tokenize
from kinema.world.scene import BACKGROUNDS, COLOURS, MOTIONS, SHAPES


def test_every_caption_parses_back_to_its_scene() -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        truth = Parsed(
            shape=SHAPES[rng.integers(4)],
            colour=list(COLOURS)[rng.integers(8)],
            motion=MOTIONS[rng.integers(9)],
            background=list(BACKGROUNDS)[rng.integers(4)],
        )
        text = caption(
            rng,
            shape=truth.shape or "",
            colour=truth.colour or "",
            motion=truth.motion or "",
            background=truth.background or "",
        )
        assert parse(text) == truth, text


def test_synonyms_and_partial_prompts() -> None:
    assert parse("a turquoise ball heading right against a dark red backdrop") == Parsed(
        "circle", "cyan", "right", "maroon"
    )
    assert parse("a red star") == Parsed(shape="star", colour="red")
    assert parse("red circle moving left, dark red background").background == "maroon"


def test_unknown_words_are_ignored_not_fatal() -> None:
    assert tokenize("a cute red circle, very shiny!") == tokenize("a red circle")
    assert tokenize("zzz qqq") == [WORD_ID[NULL]]
    assert tokenize("") == [WORD_ID[NULL]]
    assert len(tokenize("red " * 100)) == MAX_TOKENS
    assert VOCAB[0] == "<pad>"
