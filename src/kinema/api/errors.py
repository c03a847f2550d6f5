"""Kling error codes and the envelope every response wears (shared/KLING_API.md §1, §8).

An error is always a non-2xx status with a non-zero `code` and no `data`; success is HTTP 200, code 0,
message "SUCCEED". Every response carries a fresh `request_id`.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

STATUS_OF_CODE = {
    1000: 401, 1001: 401, 1002: 401, 1003: 401, 1004: 401,
    1100: 429, 1102: 429, 1103: 403,
    1200: 400, 1201: 400, 1202: 404, 1203: 404,
    1301: 400, 1302: 429, 1303: 429,
    5000: 500, 5001: 503, 5002: 504,
}  # fmt: skip


class ErrorBody(BaseModel):
    """The body of every error response, as the OpenAPI document shows it: never a `data` field."""

    model_config = ConfigDict(extra="forbid")

    code: int
    message: str
    request_id: str


# What the OpenAPI document says an operation may answer besides 200. Naming "4XX" also stops FastAPI
# from documenting its 422 validation error, which this API never sends (validation errors are 400).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": ErrorBody,
        "description": "Refused (KLING_API.md §8): 400 with 1200/1201/1301, 401 with 1000-1004, 403 with "
        "1103, 404 with 1202/1203, 429 with 1100/1102/1302/1303",
    },
    "5XX": {"model": ErrorBody, "description": "500 with 5000, 503 with 5001, 504 with 5002"},
}


class ApiError(Exception):
    """An error with a Kling code; its HTTP status follows from the code. `clear_cookie` names a cookie
    the answer deletes (a session that has ended, so the browser stops sending it)."""

    def __init__(self, code: int, message: str, *, clear_cookie: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS_OF_CODE[code]
        self.clear_cookie = clear_cookie


def envelope(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": str(uuid.uuid4())}


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    response = JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)
    if exc.clear_cookie:
        secure = request.url.scheme == "https"
        response.delete_cookie(exc.clear_cookie, path="/", secure=secure, httponly=True, samesite="strict")
    return response


async def handle_validation(request: Request, exc: Exception) -> JSONResponse:
    """Pydantic errors become 400/1201 naming the field, or 1200 when the body is not JSON at all."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request", "type": ""}
    # Only the body itself not being an object is 1200; a nested field that should be one is 1201.
    if first.get("type") == "json_invalid" or first.get("loc") == ("body",):
        return JSONResponse(
            error_body(1200, "the body must be a JSON object; check Content-Type and syntax"), 400
        )
    where = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path"))
    message = str(first["msg"]).removeprefix("Value error, ")
    return JSONResponse(error_body(1201, f"{where}: {message}" if where else message), status_code=400)


async def handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return JSONResponse(
            error_body(1202, f"no route {request.method} {request.url.path}"), status_code=404
        )
    if exc.status_code == 405:
        return JSONResponse(
            error_body(1202, f"method {request.method} not allowed on {request.url.path}"), 404
        )
    return JSONResponse(error_body(1200, str(exc.detail)), status_code=exc.status_code)
