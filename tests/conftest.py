"""Test-wide settings: offline hub, one torch thread (tests are tiny; oversubscription only slows them)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    import torch
except ImportError:  # the API-only tests run without torch
    pass
else:
    torch.set_num_threads(1)
