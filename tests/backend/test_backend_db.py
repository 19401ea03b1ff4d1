"""Engine configuration, the migration, and the constraints it creates."""
import os
import subprocess
import sys
from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from tuanjian import settings
from tuanjian.backend import db
from tuanjian.backend.models import Base, Member, Organisation, TransferEvent, TransferRequest

ROOT = settings.ROOT


def test_migration_matches_the_models(connection):
    context = MigrationContext.configure(connection)
    assert compare_metadata(context, Base.metadata) == []
    head = ScriptDirectory.from_config(db._alembic_config()).get_current_head()
    assert context.get_current_revision() == head == "0006"


def test_foreign_keys_are_enforced(sessions):
    with pytest.raises(IntegrityError):
        with sessions() as s, s.begin():
            s.add(Member(member_no="x1", name="x", phone_last4="0000", organisation_id=987654))


def test_level_check_constraint(sessions):
    with pytest.raises(IntegrityError):
        with sessions() as s, s.begin():
            s.execute(text("INSERT INTO organisations (name, level, province, contact) "
                           "VALUES ('x', '团小组', 'x', 'x')"))


def test_naive_timestamps_are_refused_and_aware_ones_round_trip(sessions, demo):
    with pytest.raises(StatementError):
        with sessions() as s, s.begin():
            s.execute(select(TransferEvent).where(TransferEvent.at > datetime(2024, 1, 1))).all()
    with sessions() as s:
        at = s.execute(select(TransferRequest.created_at).order_by(TransferRequest.id)).scalars().first()
        assert at.tzinfo is not None and at.utcoffset().total_seconds() == 0
        assert s.execute(select(Organisation.name).where(Organisation.level == "团总支")).scalars().all()


def test_url_from_environment_or_default(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.DATABASE_URL, "postgresql+psycopg2://127.0.0.1:5432/test")
    assert settings.database_url() == "postgresql+psycopg2://127.0.0.1:5432/test"
    engine = db.make_engine()
    assert engine.dialect.name == "postgresql"
    assert settings.DEFAULT_DATABASE_PATH == ROOT / "var" / "tuanjian.db"
    monkeypatch.delenv(settings.DATABASE_URL)
    monkeypatch.setattr(settings, "DEFAULT_DATABASE_PATH", tmp_path / "var" / "tuanjian.db")
    assert settings.database_url() == f"sqlite:///{tmp_path / 'var' / 'tuanjian.db'}"
    assert (tmp_path / "var").is_dir()


def test_no_engine_at_import_time():
    code = ("import tuanjian.backend.service, tuanjian.backend.demo, tuanjian.backend.models; "
            "from tuanjian.backend import db; "
            "assert db._engine is None and db._sessionmaker is None")
    env = dict(os.environ, TUANJIAN_DATABASE_URL="postgresql+psycopg2://127.0.0.1:1/nowhere")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def test_postgresql_pool_size_comes_from_the_settings(monkeypatch):
    monkeypatch.setenv(settings.DATABASE_POOL_SIZE, "3")
    monkeypatch.setenv(settings.DATABASE_MAX_OVERFLOW, "2")
    engine = db.make_engine("postgresql+psycopg2://127.0.0.1:5432/test")  # no connection is made
    assert (engine.pool.size(), engine.pool._max_overflow) == (3, 2)
    monkeypatch.delenv(settings.DATABASE_POOL_SIZE)
    monkeypatch.delenv(settings.DATABASE_MAX_OVERFLOW)
    engine = db.make_engine("postgresql+psycopg2://127.0.0.1:5432/test")
    assert (engine.pool.size(), engine.pool._max_overflow) == (5, 5)
