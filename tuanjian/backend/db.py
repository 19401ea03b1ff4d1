"""The one engine/session factory of the backend, and schema migration."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tuanjian import settings
from tuanjian.backend.rules import utcnow

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_engine: Engine | None = None
_sessionmaker: sessionmaker | None = None


def make_engine(url: str | None = None) -> Engine:
    """A new engine; applications use get_engine(), tests build their own."""
    url = url or settings.database_url()
    # hide_parameters: a failed statement is logged without the members' text it carried.
    kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True, "hide_parameters": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 2}
        kwargs.update(settings.database_pool())
    elif url.startswith("sqlite"):
        # The action server calls the backend from worker threads; a pooled
        # connection is only ever used by one thread at a time.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 2}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT;
    # let SQLAlchemy emit BEGIN itself (the documented recipe).
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = make_engine()
    return _engine


def get_sessionmaker() -> sessionmaker:
    global _sessionmaker
    if _sessionmaker is None:
        _sessionmaker = sessionmaker(bind=get_engine(), future=True)
    return _sessionmaker


class TransactionalService:
    """Base of the backend services: one transaction per operation, on the
    application's sessions or on injected ones (tests), with an injectable clock."""

    def __init__(self, sessions: Callable[[], Session] | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self._sessions = sessions
        self.clock = clock

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        factory = self._sessions or get_sessionmaker()
        with factory() as session, session.begin():
            yield session


def _dialect_insert(s: Session, model: Any, values: dict[str, Any]) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[s.get_bind().dialect.name]
    return insert(model).values(**values)


def upsert(s: Session, model: Any, key: dict[str, Any], values: dict[str, Any]) -> None:
    """INSERT .. ON CONFLICT (key) DO UPDATE: two concurrent writers of one key cannot both insert."""
    statement = _dialect_insert(s, model, {**key, **values})
    s.execute(statement.on_conflict_do_update(
        index_elements=list(key), set_={name: statement.excluded[name] for name in values}))


def insert_missing(s: Session, model: Any, key: dict[str, Any], values: dict[str, Any]) -> bool:
    """INSERT .. ON CONFLICT (key) DO NOTHING; True when the row was inserted."""
    result = s.execute(_dialect_insert(s, model, {**key, **values})
                       .on_conflict_do_nothing(index_elements=list(key)))
    return bool(result.rowcount > 0)


def _alembic_config() -> Config:

    # No ini file here: env.py would otherwise reconfigure (and silence) the
    # application's logging through fileConfig.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine | None = None, revision: str = "head") -> None:
    """alembic upgrade, on the given engine or the application's."""
    from alembic import command

    config = _alembic_config()
    with (engine or get_engine()).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def reset(engine: Engine | None = None) -> None:
    """Drop everything through the migrations (downgrade base) and recreate it."""
    from alembic import command

    config = _alembic_config()
    with (engine or get_engine()).begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        command.upgrade(config, "head")
