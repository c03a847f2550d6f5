"""Alembic migrations of the task store, shipped inside the package; run by `kinema.jobs.migrate`."""
