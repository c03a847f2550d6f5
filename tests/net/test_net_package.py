"""The net package is a torch-free leaf that exports its public names."""

import subprocess
import sys

import kinema.net
from kinema.net import FetchPolicy
from kinema.settings import Settings


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, kinema.net; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_public_names_are_exported() -> None:
    assert all(hasattr(kinema.net, name) for name in kinema.net.__all__)


def test_policy_from_settings_normalises_the_allow_list() -> None:
    policy = FetchPolicy.from_settings(Settings(allow_hosts=["Images.Internal.", "[::1]", "0:0::1"]))
    assert policy.allow_hosts == frozenset({"images.internal", "::1"})
