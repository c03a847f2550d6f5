"""Alembic environment: migrate over the connection that `kinema.db.migrate` hands in.

There is no alembic.ini: `migrate.upgrade(engine)` applies migrations and `migrate.revision(engine,
message, metadata)` autogenerates a new one during development, comparing with the tables in `metadata`.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit(
        "run Kinema's migrations through kinema.db.migrate (upgrade or revision), not the alembic CLI"
    )
context.configure(
    connection=connection,
    target_metadata=context.config.attributes.get("metadata"),
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
