"""Alembic migrations of the hwnas service schema (own version table: hwnas_alembic_version)."""
