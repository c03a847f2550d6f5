"""Alembic environment: migrate over the connection that `kinema.jobs.migrate` hands in.

There is no alembic.ini: `migrate.upgrade(engine)` applies migrations and `migrate.revision(engine,
message)` autogenerates a new one during development.
"""

from __future__ import annotations

from alembic import context

from kinema.jobs.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit(
        "run Kinema's migrations through kinema.jobs.migrate (upgrade or revision), not the alembic CLI"
    )
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
