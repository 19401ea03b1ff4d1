"""Alembic environment: the connection comes from tuanjian.backend.db.migrate(), or,
on the alembic command line, from an engine on tuanjian.backend.db's URL."""
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from tuanjian.backend.db import make_engine
from tuanjian.backend.models import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")

connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine()
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()
