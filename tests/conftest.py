"""Shared fixtures: the repo, the domain, the seed; and the databases.

Backend and action tests run on SQLite always and on PostgreSQL when it is
reachable. Each database gets its schema from the Alembic migration once per
session; each test runs inside a transaction that is rolled back at the end,
and every service operation works in a SAVEPOINT inside it.
"""
import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tuanjian import settings
from tuanjian.backend import db
from tuanjian.backend.demo import load_demo
from tuanjian.backend.service import TransferService

ROOT = settings.ROOT
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The verification throttle's digest key (scripts/run.sh generates one for the embedded default).
os.environ.setdefault("TUANJIAN_THROTTLE_KEY", "test-throttle-key")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def domain_dict():
    """The domain as the action server receives it from Rasa."""
    from rasa.shared.core.domain import Domain

    return Domain.load(str(settings.DOMAIN_DIR)).as_dict()


@pytest.fixture(scope="session")
def seed_text() -> str:
    return settings.SEED_FAQ.read_text("utf-8")

POSTGRES_URL = settings.test_postgres_url()
REQUIRE_POSTGRES = settings.postgres_required()
SQLALCHEMY_2 = int(sqlalchemy.__version__.split(".")[0]) >= 2
NOW = datetime(2024, 6, 15, 8, 30, tzinfo=timezone.utc)

_postgres_problem: list[str] = []  # why PostgreSQL was left out, for the summary line


@functools.cache
def _postgres_reachable() -> bool:
    engine = db.make_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except OperationalError as exc:
        _postgres_problem.append(str(exc.orig).strip().splitlines()[0])
        return False
    finally:
        engine.dispose()


def pytest_generate_tests(metafunc):
    if "database" in metafunc.fixturenames:
        names = ["sqlite"]
        if REQUIRE_POSTGRES or _postgres_reachable():
            names.append("postgresql")
        metafunc.parametrize("database", names, indirect=True, scope="session")


def pytest_terminal_summary(terminalreporter):
    if _postgres_problem:
        terminalreporter.write_line(
            f"backend tests ran on SQLite ONLY: PostgreSQL at {POSTGRES_URL} is not reachable "
            f"({_postgres_problem[0]}); set TUANJIAN_REQUIRE_POSTGRES=1 to make this an error",
            yellow=True, bold=True)


@pytest.fixture(scope="session")
def database(request, tmp_path_factory):
    """An engine on a freshly migrated database."""
    if request.param == "sqlite":
        engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}")
        db.migrate(engine)
        yield engine
        engine.dispose()
        return
    if not _postgres_reachable():
        pytest.fail(f"TUANJIAN_REQUIRE_POSTGRES=1 but PostgreSQL at {POSTGRES_URL} is not reachable: "
                    f"{_postgres_problem[0]}")
    with fresh_postgres_schema("tuanjian_test") as engine:
        yield engine


@contextmanager
def fresh_postgres_schema(prefix: str) -> Iterator[Engine]:
    """An engine on a freshly migrated PostgreSQL schema of its own (dropped
    afterwards), so that reruns and parallel runs do not meet."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = db.make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        db.migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def executed_statements(target: Any) -> Iterator[list[tuple[str, Any]]]:
    """(statement, parameters) of every statement `target` (an engine or a
    connection) sends to the database while the block runs."""
    executed: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, *args):
        executed.append((statement, parameters))

    sqlalchemy.event.listen(target, "before_cursor_execute", record)
    try:
        yield executed
    finally:
        sqlalchemy.event.remove(target, "before_cursor_execute", record)


def starts_with(executed: list[tuple[str, Any]], *verbs: str) -> list[tuple[str, Any]]:
    """The (statement, parameters) that begin with one of `verbs` (SELECT, UPDATE, ...)."""
    return [(statement, parameters) for statement, parameters in executed
            if statement.lstrip().upper().startswith(verbs)]


@contextmanager
def committed_postgres(prefix: str) -> Iterator[Engine]:
    """A fresh schema for tests that commit in several connections at once:
    skipped without PostgreSQL, an error when TUANJIAN_REQUIRE_POSTGRES=1."""
    if not _postgres_reachable():
        if REQUIRE_POSTGRES:
            pytest.fail(f"TUANJIAN_REQUIRE_POSTGRES=1 but PostgreSQL at {POSTGRES_URL} is not reachable")
        pytest.skip("PostgreSQL is not reachable (the summary line says so)")
    with fresh_postgres_schema(prefix) as engine:
        yield engine


@pytest.fixture
def connection(database):
    with database.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


@pytest.fixture
def sessions(connection):
    """Session factory whose sessions commit and roll back a SAVEPOINT only."""
    def factory() -> Session:
        if SQLALCHEMY_2:
            return Session(bind=connection, join_transaction_mode="create_savepoint")
        connection.begin_nested()  # SQLAlchemy 1.4 joins an open savepoint
        return Session(bind=connection, future=True)
    return factory


class FakeClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return FakeClock(NOW)


@pytest.fixture
def service(sessions, clock):
    return TransferService(sessions, clock)


@pytest.fixture
def demo(sessions, clock):
    with sessions() as session, session.begin():
        load_demo(session, clock.now)
