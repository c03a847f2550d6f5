"""Write the HTTP API's OpenAPI document to studio/openapi.json, the source of the studio's typed client.

The app is built over in-memory fakes (task store, accounts, a temporary media folder), so this needs no
database, no worker and no torch. Usage: `python scripts/openapi.py [OUT]` (default studio/openapi.json);
`--check` exits 1 when OUT differs from what the code describes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from kinema.accounts.memory import MemoryAccountStore
from kinema.api.app import create_app
from kinema.api.catalog import Catalog
from kinema.api.context import ApiContext
from kinema.jobs import MemoryTaskStore
from kinema.storage.local import LocalStorage

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "studio" / "openapi.json"


def spec() -> dict[str, Any]:
    """The OpenAPI document of `create_app`, exactly as `/openapi.json` serves it."""
    store = MemoryTaskStore()
    accounts = MemoryAccountStore()
    with tempfile.TemporaryDirectory() as folder:
        storage = LocalStorage(Path(folder), base_url="http://localhost", secret=b"\0" * 32)
        ctx = ApiContext(
            store=store, keys=accounts, accounts=accounts, storage=storage, catalog=Catalog(store)
        )
        return create_app(ctx).openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail if OUT is not up to date")
    args = parser.parse_args(argv)
    text = render(spec())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            sys.stderr.write(f"{args.out} is stale; run: python scripts/openapi.py\n")
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
