"""Alembic environment: runs against the connection handed over by ``boltit.core.db.migrate``."""

from alembic import context
from sqlalchemy import create_engine

from boltit.core.schema import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # ``alembic`` run by hand: take the URL from the ini file
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
