"""The base of every JSON request body: text fields may not carry NUL characters.

JSON allows "\\u0000"; SQL text columns do not (Postgres refuses the whole insert or lookup), so a NUL
is a 400 naming the field here rather than a 500 later.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_validator


class Body(BaseModel):
    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("contains a NUL character (\\u0000); remove it")
        return value
