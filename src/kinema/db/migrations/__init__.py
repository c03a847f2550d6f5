"""Alembic migrations of Kinema's database, shipped inside the package; run by `kinema.db.migrate`."""
