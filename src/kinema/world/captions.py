"""The world's language: captions with varied wording, the word vocabulary and prompt parsing.

Captions follow "a {colour} {shape} {motion} on a {background} background" with synonyms and a few
templates. The tokenizer is word-level over this closed vocabulary; unknown words are ignored, not
fatal, so "a cute red circle moving left" still works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from kinema.world.scene import BACKGROUNDS, COLOURS, MOTIONS, SHAPES

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "ball", "dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle",),
    "star": ("star",),
}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {c: (c,) for c in COLOURS}
COLOUR_WORDS["purple"] = ("purple", "violet")
COLOUR_WORDS["cyan"] = ("cyan", "turquoise")
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "black": ("black",),
    "gray": ("gray", "grey"),
    "navy": ("navy", "dark blue"),
    "maroon": ("maroon", "dark red"),
}
MOTION_WORDS: dict[str, tuple[str, ...]] = {
    "left": ("moving left", "drifting left", "sliding left", "heading left", "going left"),
    "right": ("moving right", "drifting right", "sliding right", "heading right", "going right"),
    "up": ("moving up", "drifting up", "rising", "floating up", "heading up"),
    "down": ("moving down", "drifting down", "falling", "sinking", "heading down"),
    "bouncing": ("bouncing", "bouncing around", "ricocheting"),
    "growing": ("growing", "expanding", "getting bigger"),
    "shrinking": ("shrinking", "contracting", "getting smaller"),
    "rotating": ("rotating", "spinning", "turning"),
    "still": ("standing still", "staying still", "resting", "not moving"),
}
TEMPLATES: tuple[str, ...] = (
    "a {colour} {shape} {motion} on a {background} background",
    "a {colour} {shape} {motion} on a {background} background",
    "the {colour} {shape} is {motion} on a {background} background",
    "{colour} {shape} {motion}, {background} background",
    "a {colour} {shape} {motion} against a {background} backdrop",
    "one {colour} {shape} {motion} over a plain {background} background",
)

PAD, NULL = "<pad>", "<null>"
MAX_TOKENS = 16


def _vocabulary() -> tuple[str, ...]:
    words: set[str] = set()
    for table in (SHAPE_WORDS, COLOUR_WORDS, BACKGROUND_WORDS, MOTION_WORDS):
        for phrases in table.values():
            for phrase in phrases:
                words.update(phrase.split())
    for template in TEMPLATES:
        words.update(w for w in _words(template) if not w.startswith("{"))
    return (PAD, NULL, *sorted(words))


def _words(text: str) -> list[str]:
    return re.findall(r"\{?[a-z]+\}?", text.lower())


VOCAB: tuple[str, ...] = _vocabulary()
WORD_ID: dict[str, int] = {w: i for i, w in enumerate(VOCAB)}


def tokenize(prompt: str | None) -> list[int]:
    """Word ids of a prompt; unknown words are dropped, an empty prompt is the null caption."""
    ids = [WORD_ID[w] for w in _words(prompt or "") if w in WORD_ID][:MAX_TOKENS]
    return ids or [WORD_ID[NULL]]


def tokenize_batch(prompts: list[str | None]) -> np.ndarray:
    """(B, MAX_TOKENS) int64 ids, right-padded with PAD (id 0)."""
    out = np.zeros((len(prompts), MAX_TOKENS), dtype=np.int64)
    for i, prompt in enumerate(prompts):
        ids = tokenize(prompt)
        out[i, : len(ids)] = ids
    return out


def caption(rng: np.random.Generator, *, shape: str, colour: str, motion: str, background: str) -> str:
    """One wording of a scene, drawn at random among synonyms and templates."""

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    return pick(TEMPLATES).format(
        colour=pick(COLOUR_WORDS[colour]),
        shape=pick(SHAPE_WORDS[shape]),
        motion=pick(MOTION_WORDS[motion]),
        background=pick(BACKGROUND_WORDS[background]),
    )


@dataclass(frozen=True)
class Parsed:
    """The world attributes a prompt names; None where it names none."""

    shape: str | None = None
    colour: str | None = None
    motion: str | None = None
    background: str | None = None


def parse(prompt: str) -> Parsed:
    """Read the attributes a prompt asks for (used by the checker and by `kinema eval`).

    The background is the colour named after "on"/"against"/"over" (or just before "background" /
    "backdrop"); the object colour is the first colour named before it.
    """
    text = " " + " ".join(_words(prompt)) + " "
    found: dict[str, str] = {}
    for name, table in (("shape", SHAPE_WORDS), ("motion", MOTION_WORDS)):
        hits = [(text.find(f" {p} "), key) for key, ps in table.items() for p in ps if f" {p} " in text]
        if hits:
            found[name] = min(hits)[1]
    split = re.search(r" (on|against|over)( a| the| plain)* ", text) or re.search(
        r" (a |the |plain )*(\w+ )?\w+ (background|backdrop) ", text
    )
    head, tail = (text[: split.start()] + " ", text[split.start() :]) if split else (text, "")
    for name, table, region in (("colour", COLOUR_WORDS, head), ("background", BACKGROUND_WORDS, tail)):
        hits = [(region.find(f" {p} "), key) for key, ps in table.items() for p in ps if f" {p} " in region]
        if hits:
            found[name] = min(hits)[1]
    return Parsed(**found)


assert set(MOTION_WORDS) == set(MOTIONS) and set(SHAPE_WORDS) == set(SHAPES)
assert set(BACKGROUND_WORDS) == set(BACKGROUNDS)
