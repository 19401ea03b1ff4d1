"""A PostgreSQL and a Redis server of a test's own, on free ports and
throw-away folders, so the fault tests can stop and restart them without
touching the machine's (which other tests and the benchmark use).

Both come from the Debian packages the machine already has (PostgreSQL's
initdb and pg_ctl, redis-server). PostgreSQL refuses to run as root: as root,
its commands run as the `postgres` user.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmark.local_servers import free_port
from tuanjian.polling import wait_until


def _postgres_bin() -> Path:
    found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
    folder = Path(found.stdout.strip()) if found.returncode == 0 else None
    if not folder or not (folder / "initdb").exists():
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not candidates:
            raise RuntimeError("PostgreSQL's initdb is missing (Debian's postgresql package)")
        folder = candidates[-1].parent
    return folder


class OwnPostgres:
    """initdb into a temporary folder; start, stop and restart with pg_ctl."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="own-postgres-"))
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        self._bin = _postgres_bin()
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.folder / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as_postgres, str(self._bin / tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", action, "-w", "-m", "fast", "-D", str(self.folder / "data"), "-o", options,
                  "-l", str(self.folder / "postgres.log"))

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop")

    def restart(self) -> None:
        self._ctl("restart")

    def remove(self) -> None:
        subprocess.run([*self._as_postgres, str(self._bin / "pg_ctl"), "stop", "-m", "immediate", "-D",
                        str(self.folder / "data")], check=False, capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


class OwnRedis:
    """redis-server on a free port, keeping nothing on disk."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(self._answers, timeout=10):
            raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@contextmanager
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    try:
        server.start()
        yield server
    finally:
        server.stop()
