"""The task store's clock: `kinema.db.clock`, shared with the accounts, re-exported under its old name."""

from kinema.db.clock import Clock, FakeClock, SystemClock, to_ms

__all__ = ["Clock", "FakeClock", "SystemClock", "to_ms"]
