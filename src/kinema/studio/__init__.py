"""The web studio's built files: the single-page app compiled from studio/ by Vite, shipped as package data.

This package only says where the files are; kinema.api.studio serves them. The studio holds no server
logic: it talks to Kinema through the public HTTP API like any other client.
"""

from __future__ import annotations

from pathlib import Path

BUILD = Path(__file__).resolve().parent / "web"  # not "dist/": the repository ignores every dist/


def built(folder: Path = BUILD) -> bool:
    """Whether the build is present (`npm run build` in studio/ writes it; releases ship it)."""
    return (folder / "index.html").is_file()
