"""The world's vocabulary of things: shapes, colours, backgrounds, motions and canvases.

Exact RGB values are part of the contract so that anyone can check a generated clip.
"""

from __future__ import annotations

from dataclasses import dataclass

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 90, 220),
    "yellow": (235, 200, 40),
    "purple": (150, 60, 200),
    "orange": (240, 130, 30),
    "cyan": (40, 200, 210),
    "white": (240, 240, 240),
}

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (10, 10, 10),
    "gray": (110, 110, 110),
    "navy": (20, 30, 80),
    "maroon": (80, 20, 30),
}

MOTIONS: tuple[str, ...] = (
    "left",
    "right",
    "up",
    "down",
    "bouncing",
    "growing",
    "shrinking",
    "rotating",
    "still",
)

# (height, width) of the model's native canvas per aspect ratio; all three hold 1,296 pixels and
# the same number of 3x3 patches (9x16, 12x12, 16x9), so one model serves all three natively.
CANVASES: dict[str, tuple[int, int]] = {
    "16:9": (27, 48),
    "1:1": (36, 36),
    "9:16": (48, 27),
}

FPS = 8


@dataclass(frozen=True)
class Scene:
    """Everything that decides a clip; `render` turns it into pixels deterministically."""

    shape: str
    colour: str
    background: str
    motion: str
    height: int
    width: int
    x: float  # object centre at frame 0, pixels
    y: float
    radius: float  # radius of the circle of equal area, pixels
    speed: float  # px/frame for moves, radius px/frame for growing/shrinking, rad/frame for rotating
    angle: float  # orientation at frame 0, radians
    vx: float = 0.0  # bouncing velocity, px/frame
    vy: float = 0.0

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.shape, self.colour, self.motion)


def held_out_triples() -> frozenset[tuple[str, str, str]]:
    """(shape, colour, motion) combinations never shown in training: the composition test.

    A fixed Latin-square style pick: every shape, colour and motion still appears in training with
    other partners, and each held-out triple differs from its neighbours in all three words.
    """
    triples = set()
    for i, colour in enumerate(COLOURS):
        for j in range(2):
            shape = SHAPES[(i + j) % len(SHAPES)]
            motion = MOTIONS[(2 * i + 5 * j) % len(MOTIONS)]
            triples.add((shape, colour, motion))
    return frozenset(triples)
