"""Keep freed tensor memory in the process instead of handing it back to the kernel after every op.

glibc serves blocks above its mmap threshold (128 KiB at start, adapting upward) with fresh `mmap`
pages and unmaps them on free, so each new activation of a small model's forward pays a page fault
per 4 KiB touched: 1,100-1,300 faults per forward of the built-in model, 86,000-92,000 per
5-second clip, on this project's 2-core VM (benchmarks/RESULTS.md, session 7). Raising the mmap and
trim thresholds makes those blocks come from, and return to, the heap. Peak memory is unchanged; up
to 64 MiB that was freed at the top of the heap stays reserved for the next forward. A no-op where
the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import threading

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest accepted value on 64-bit
TRIM_THRESHOLD = 64 * 1024 * 1024  # free heap kept at the top before it goes back to the kernel

_lock = threading.Lock()
_done: list[bool] = []


def reuse_freed_memory() -> bool:
    """Apply the thresholds once per process; True when they are in force."""
    with _lock:
        if not _done:
            _done.append(_apply())
        return _done[0]


def _apply() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    ok_mmap = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok_trim = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return ok_mmap and ok_trim
