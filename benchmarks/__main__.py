"""Run every CPU benchmark and print its numbers with the command that reproduces each.

`python -m benchmarks` runs them all with their defaults; `python -m benchmarks NAME [options]` runs
one (`builtin`: the built-in model's speed, `api`: the task API's throughput, `diffusers`: Kinema's
open-model backends against stock diffusers, tiny on a CPU), passing the options on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def builtin(argv: list[str]) -> Any:
    from benchmarks import builtin_speed

    return builtin_speed.main(argv)


def api(argv: list[str]) -> Any:
    from benchmarks import api_load

    return api_load.main(argv)


def diffusers(argv: list[str]) -> Any:
    from benchmarks import diffusers_speed

    return diffusers_speed.main(argv)


BENCHMARKS: dict[str, Callable[[list[str]], Any]] = {"builtin": builtin, "api": api, "diffusers": diffusers}


def main(argv: list[str]) -> int:
    if not argv:
        for run in BENCHMARKS.values():
            run([])
        return 0
    name, *options = argv
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    BENCHMARKS[name](options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
