"""The web studio's built files: the single-page app compiled from studio/ by Vite, shipped as package data.

This package only says where the files are; kinema.api.studio serves them. The studio holds no server
logic: it talks to Kinema through the public HTTP API like any other client.
"""

from __future__ import annotations

from pathlib import Path

DIST = Path(__file__).resolve().parent / "dist"


def built(dist: Path = DIST) -> bool:
    """Whether the build is present (`npm run build` in studio/ writes it; releases ship it)."""
    return (dist / "index.html").is_file()
