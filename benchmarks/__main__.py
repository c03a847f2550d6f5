"""Run every CPU benchmark and print its numbers with the command that reproduces each."""

from __future__ import annotations

import sys

from benchmarks import builtin_speed


def main() -> int:
    builtin_speed.main(sys.argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
