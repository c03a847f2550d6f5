"""The API benchmark's client: each connection's create-then-polls cycle (benchmarks/api_load.py)."""

import asyncio
import json

from benchmarks.api_load import Cycle, Load, drive


def test_cycles_are_staggered_and_carry_over_from_warm_up_to_measuring() -> None:
    load = Load(url="", token="", requests=0, warmup=0, clients=1, connections=3, polls=2, client="raw")
    created = iter(range(100))

    def run(connection: int) -> tuple[list[str], list[str], dict[str, list[float]]]:
        sent: list[str] = []

        async def call(method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
            sent.append("C" if method == "POST" else "p")
            return 200, json.dumps({"data": {"id": f"t{next(created)}"}}).encode()

        cycle = Cycle(skip=connection % (load.polls + 1))
        asyncio.run(drive(call, load, [4], {}, cycle))  # warm-up
        warm, measured = sent[:], {}
        sent.clear()
        asyncio.run(drive(call, load, [3], measured, cycle))
        return warm, sent, measured

    # connection i's first cycle leaves out i polls, so the connections' creates fall at different times
    # and measuring goes on where warm-up stopped (not every connection opens with a create)
    warm, sent, measured = run(0)
    assert (warm, sent) == (["C", "p", "p", "C"], ["p", "p", "C"])
    assert len(measured["create"]) == 1 and len(measured["poll"]) == 2
    assert run(1)[:2] == (["C", "p", "C", "p"], ["p", "C", "p"])
    assert run(2)[:2] == (["C", "C", "p", "p"], ["C", "p", "p"])
