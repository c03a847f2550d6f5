"""The jobs package stays a torch-free leaf."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_task_store_does_not_import_torch() -> None:
    code = "import sys, kinema.jobs; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
