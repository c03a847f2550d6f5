"""The jobs package stays a torch-free leaf and carries its migrations inside the package."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files

from kinema.jobs import migrate


def test_importing_the_task_store_does_not_import_torch() -> None:
    code = "import sys, kinema.jobs; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


def test_migrations_ship_inside_the_package() -> None:
    versions = files("kinema.jobs") / "migrations" / "versions"
    assert (files("kinema.jobs") / "migrations" / "env.py").is_file()
    assert any(entry.name.endswith("_create_tasks.py") for entry in versions.iterdir())
    assert migrate.head() == "0001"
