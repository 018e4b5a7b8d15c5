"""Member registry: SQLModel models, repository functions, Alembic migrations, PII crypto, import."""
