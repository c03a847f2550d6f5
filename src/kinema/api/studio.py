"""Serves the web studio: its page at `/` and its content-hashed scripts and styles at `/assets/`.

Mounted after every API route, so `/api`, `/v1`, `/media`, `/docs` and the health endpoints keep their
answers. The studio navigates with URL fragments (`/#/library`), so the server needs no catch-all route.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from kinema.studio import BUILD, built

log = logging.getLogger("kinema.api")

# Media links may point at an S3 bucket on another origin; everything else comes from this server.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob: https: http:; media-src 'self' blob: https: http:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class Assets(StaticFiles):
    """Static files whose names carry a content hash, so browsers may keep them forever."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_studio(app: FastAPI, folder: Path = BUILD) -> None:
    """Serve the studio at `/`; without a build (a source checkout before `npm run build`) serve nothing."""
    if not built(folder):
        log.warning(
            "the web studio is not built (%s is missing): run `npm ci && npm run build` in studio/", folder
        )
        return
    page = folder / "index.html"

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def studio() -> FileResponse:
        return FileResponse(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    app.mount("/assets", Assets(directory=folder / "assets"), name="studio-assets")
