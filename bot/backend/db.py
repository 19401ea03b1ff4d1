"""The one engine/session factory of the backend, and schema migration."""
from __future__ import annotations

import os
from pathlib import Path
from contextlib import contextmanager
from datetime import datetime
from typing import Callable, Iterator, Optional

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.backend.rules import utcnow

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE_PATH = ROOT / "var" / "tuanjian.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
URL_ENV = "TUANJIAN_DATABASE_URL"

_engine: Optional[Engine] = None
_sessionmaker: Optional[sessionmaker] = None


def database_url() -> str:
    url = os.environ.get(URL_ENV)
    if url:
        return url
    DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def make_engine(url: Optional[str] = None) -> Engine:
    """A new engine; applications use get_engine(), tests build their own."""
    url = url or database_url()
    kwargs: dict = {"future": True, "pool_pre_ping": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 2}
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
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN")


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

    def __init__(self, sessions: Optional[Callable[[], Session]] = None,
                 clock: Callable[[], datetime] = utcnow):
        self._sessions = sessions
        self.clock = clock

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        factory = self._sessions or get_sessionmaker()
        with factory() as session, session.begin():
            yield session


def _dialect_insert(s: Session, model, values: dict):
    from sqlalchemy.dialects import postgresql, sqlite

    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[s.get_bind().dialect.name]
    return insert(model).values(**values)


def upsert(s: Session, model, key: dict, values: dict) -> None:
    """INSERT .. ON CONFLICT (key) DO UPDATE: two concurrent writers of one key cannot both insert."""
    statement = _dialect_insert(s, model, {**key, **values})
    s.execute(statement.on_conflict_do_update(
        index_elements=list(key), set_={name: statement.excluded[name] for name in values}))


def insert_missing(s: Session, model, key: dict, values: dict) -> bool:
    """INSERT .. ON CONFLICT (key) DO NOTHING; True when the row was inserted."""
    result = s.execute(_dialect_insert(s, model, {**key, **values})
                       .on_conflict_do_nothing(index_elements=list(key)))
    return result.rowcount > 0


def _alembic_config():
    from alembic.config import Config

    # No ini file here: env.py would otherwise reconfigure (and silence) the
    # application's logging through fileConfig.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Optional[Engine] = None, revision: str = "head") -> None:
    """alembic upgrade, on the given engine or the application's."""
    from alembic import command

    config = _alembic_config()
    with (engine or get_engine()).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def reset(engine: Optional[Engine] = None) -> None:
    """Drop everything through the migrations (downgrade base) and recreate it."""
    from alembic import command

    config = _alembic_config()
    with (engine or get_engine()).begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        command.upgrade(config, "head")
