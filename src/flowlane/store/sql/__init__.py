"""The SQL store: one schema for SQLite and PostgreSQL, its engine factory and migrations."""
