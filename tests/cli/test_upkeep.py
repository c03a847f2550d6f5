"""`kinema serve`'s upkeep round: among its sweeps, workers dead for more than a day leave the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kinema.cli.serve import DEAD_WORKER_KEPT, Server
from kinema.cli.services import Services, build_services
from kinema.jobs import FakeClock, open_store
from kinema.settings import Settings


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = build_services(Settings(data_dir=tmp_path / "data"))
    yield built
    built.close()


def register_seen(services: Services, worker_id: str, ago: timedelta) -> None:
    """Register `worker_id` as a worker last seen `ago` before now (through a store on a set clock)."""
    clock = FakeClock(datetime.now(UTC) - ago)
    with closing(open_store(services.settings.resolved_database_url(), clock=clock)) as store:
        store.register_worker(worker_id, [{"id": "builtin"}])


def test_upkeep_forgets_workers_dead_for_more_than_a_day(services: Services) -> None:
    register_seen(services, "killed-yesterday", DEAD_WORKER_KEPT + timedelta(minutes=5))
    register_seen(services, "offline-an-hour", timedelta(hours=1))
    services.store.register_worker("alive", [{"id": "builtin"}])

    Server(None, services, pool=None, sender=None).upkeep()

    assert [w.worker_id for w in services.store.workers()] == ["alive", "offline-an-hour"]


def test_the_stores_of_a_process_share_one_engine_and_its_pool(tmp_path: Path) -> None:
    built = build_services(Settings(data_dir=tmp_path / "data", database_pool=3))
    try:
        assert built.store.engine is built.accounts.engine
    finally:
        built.close()
