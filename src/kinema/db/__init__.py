"""The one database that the task store and the accounts share: engines, column types, migrations.

`make_engine(url)` connects (SQLite in WAL mode, or Postgres); `migrate.upgrade(engine)` brings every
table to the newest schema through one Alembic chain; `open_database(url)` does both. `events` names
what a task store tells its hook inside a status change's transaction. This package knows no table's
meaning.
"""

from kinema.db.base import Base, JSONDocument, UTCDateTime
from kinema.db.database import make_engine, normalise_url
from kinema.db.events import EVENT_NAMES, EventName, TaskEvent, TaskHook
from kinema.db.migrate import open_database

__all__ = [
    "EVENT_NAMES",
    "Base",
    "EventName",
    "JSONDocument",
    "TaskEvent",
    "TaskHook",
    "UTCDateTime",
    "make_engine",
    "normalise_url",
    "open_database",
]
