"""The layer contract of ARCHITECTURE.md, checked by import-linter and by importing in a clean process."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_shared_types_and_the_world_import_without_torch() -> None:
    code = (
        "import sys, kinema.spec, kinema.errors, kinema.settings, kinema.world.render, kinema.world.checker, "
        "kinema.world.captions, kinema.storage.local, kinema.jobs, kinema.api.auth, kinema.api.errors; "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
