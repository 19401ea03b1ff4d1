"""The production topology on one machine: N Rasa replicas and an action
server on PostgreSQL and Redis, behind nginx (round robin, no stickiness).

    scripts/run_replicas.sh [--replicas 2] [--port 8080]

Every replica has the same settings a deployment gives it: the tracker store
and the backend on PostgreSQL (each in a schema of its own, made for the run
and dropped after it), Rasa's RedisLockStore and the WeChat claims in Redis,
the proxy trusted for X-Forwarded-For. The tests in
tests/integration/test_replicas.py run against it.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from rasa.constants import ENV_CPU_INTER_OP_CONFIG, ENV_CPU_INTRA_OP_CONFIG
from sqlalchemy import text

from benchmark.local_servers import ENDPOINT_PLUGINS, Processes, answers_greeting, free_port, running_processes
from tuanjian import settings
from tuanjian.backend import db

POSTGRES_URL = settings.test_postgres_url()
REDIS_URL = "redis://127.0.0.1:6379/14"
# Rasa's setting: how long one turn may hold its conversation (and so how long
# a conversation whose turn died with its replica waits); deploy/k8s sets the same.
TICKET_LOCK_LIFETIME = "10"
# One thread per replica for the sentence encoder's BLAS and for Rasa's own
# TensorFlow settings: a message's matrix products are small, and extra
# threads spin on the cores the other replicas need. Scale by replicas;
# deploy/k8s sets the same (docs/experiments.md, "Issue #17").
REPLICA_THREADS = {settings.ENCODER_THREADS: "1", ENV_CPU_INTRA_OP_CONFIG: "1", ENV_CPU_INTER_OP_CONFIG: "1"}
CREATE_TRACKER_TABLES = (
    "from rasa.core.tracker_store import TrackerStore; from rasa.utils.endpoints import EndpointConfig; "
    f"TrackerStore.create(EndpointConfig(type='{ENDPOINT_PLUGINS['tracker_store']}'))")
NGINX_CONF = """worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log {run}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {run}/body;
  proxy_temp_path {run}/proxy;
  fastcgi_temp_path {run}/fastcgi;
  uwsgi_temp_path {run}/uwsgi;
  scgi_temp_path {run}/scgi;
  client_max_body_size 1m;
  # Bodies up to the limit stay in memory (nginx started by root runs its
  # workers as nobody; see running_topology for its temporary folders).
  client_body_buffer_size 1m;
  upstream rasa {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://rasa;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_read_timeout 120s;
    }}
  }}
}}
"""


@dataclass(frozen=True)
class Topology:
    base: str  # the proxy, e.g. http://127.0.0.1:8080
    replicas: list[str]  # each replica's own address
    tracker_store_url: str
    database_url: str
    logs: Path
    processes: Processes  # by name: actions, rasa-0, …, nginx


@dataclass(frozen=True)
class Stores:
    """The servers a topology stores on: a schema of its own is made on each
    PostgreSQL server for the run; Redis is used as given."""
    tracker_postgres: str = POSTGRES_URL
    backend_postgres: str = POSTGRES_URL
    redis: str = REDIS_URL


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError("nginx is missing: scripts/system_deps.sh installs Debian's package")
    return found


@contextmanager
def postgres_schema(prefix: str, server: str = POSTGRES_URL) -> Iterator[str]:
    """A SQLAlchemy URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{server}?options=-csearch_path%3D{schema}"
    finally:
        try:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            admin.dispose()


@contextmanager
def running_topology(replicas: int = 2, port: int | None = None, stores: Stores = Stores(),
                     model: Path = settings.MODEL_PATH, messages_per_minute: str = "0") -> Iterator[Topology]:
    """The topology; messages_per_minute is the channels' per-conversation limit
    (off by default: the replica tests send bursts from one sender)."""
    if not model.exists():
        raise RuntimeError("train first: scripts/test.sh trains before running pytest")
    logs = Path(tempfile.mkdtemp(prefix="topology-"))
    # nginx's workers (user nobody) write request bodies and large responses
    # to temporary folders in here: with mkdtemp's 0700 they could not, and
    # each body over 16 KiB was a 500 (the load test's oversized bodies).
    logs.chmod(0o755)
    with postgres_schema("topology_tracker", stores.tracker_postgres) as tracker_url, \
            postgres_schema("topology_backend", stores.backend_postgres) as backend_url:
        action_port, proxy_port = free_port(), port or free_port()
        rasa_ports = [free_port() for _ in range(replicas)]
        endpoints = logs / "endpoints.yml"
        endpoints.write_text(
            f"action_endpoint:\n  url: http://127.0.0.1:{action_port}/webhook\n"
            "  headers:\n    Authorization: Bearer ${ACTION_SERVER_TOKEN}\n"
            f"tracker_store:\n  type: {ENDPOINT_PLUGINS['tracker_store']}\n"
            f"lock_store:\n  type: {ENDPOINT_PLUGINS['lock_store']}\n"
            f"nlg:\n  type: {ENDPOINT_PLUGINS['nlg']}\n")
        env = dict(os.environ, TUANJIAN_DATABASE_URL=backend_url, TUANJIAN_TRACKER_STORE_URL=tracker_url,
                   TUANJIAN_REDIS_URL=stores.redis, TUANJIAN_TRUSTED_PROXIES="127.0.0.1",
                   ACTION_SERVER_TOKEN=secrets.token_urlsafe(24), WEB_SESSION_SECRET=secrets.token_urlsafe(24),
                   TUANJIAN_THROTTLE_KEY=secrets.token_urlsafe(24), TUANJIAN_MESSAGES_PER_MINUTE=messages_per_minute,
                   SQL_POOL_SIZE="5", SQL_MAX_OVERFLOW="5", TICKET_LOCK_LIFETIME=TICKET_LOCK_LIFETIME,
                   **REPLICA_THREADS)
        subprocess.run([sys.executable, "-m", "tuanjian.backend.demo"], cwd=settings.ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        # The tracker store's table, made once: replicas starting together would
        # race to create it (a deployment runs this as its migration step).
        subprocess.run([sys.executable, "-c", CREATE_TRACKER_TABLES], cwd=settings.ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (logs / "nginx.conf").write_text(NGINX_CONF.format(
            run=logs, port=proxy_port,
            servers="\n".join(f"    server 127.0.0.1:{p};" for p in rasa_ports)))
        commands = [("actions", [sys.executable, "-m", "actions.server", "--port", str(action_port)], env)]
        commands += [(f"rasa-{i}", ["rasa", "run", "--model", str(model), "--port", str(p),
                                    "--endpoints", str(endpoints), "--credentials", "credentials.yml"], env)
                     for i, p in enumerate(rasa_ports)]
        commands.append(("nginx", [nginx_binary(), "-p", str(logs), "-c", str(logs / "nginx.conf")], env))
        replica_urls = [f"http://127.0.0.1:{p}" for p in rasa_ports]
        with running_processes(commands, logs, lambda: all(answers_greeting(url) for url in replica_urls),
                               timeout=300) as processes:
            yield Topology(f"http://127.0.0.1:{proxy_port}", replica_urls, tracker_url, backend_url, logs,
                           processes)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080, help="the proxy's port")
    args = parser.parse_args()
    with running_topology(args.replicas, args.port) as topology:
        print(f"{args.replicas} replicas behind nginx at {topology.base}/webhooks/rest/webhook "
              f"(logs in {topology.logs}); Ctrl-C stops everything", flush=True)
        with suppress(KeyboardInterrupt):
            subprocess.run(["sleep", "infinity"], check=False)


if __name__ == "__main__":
    main()
