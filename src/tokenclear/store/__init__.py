"""The book: SQLAlchemy 2 models, Alembic migrations (the only way the schema is made), repositories."""
