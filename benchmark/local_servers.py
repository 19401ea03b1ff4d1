"""The assistant's two servers on the trained model, on free local ports and a
demo database of their own: for the end-to-end tests and the benchmark."""
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuanjian.polling import wait_until
from tuanjian.settings import MODEL_PATH as MODEL
from tuanjian.settings import ROOT

# Our plugins as endpoints.yml (and deploy/k8s/configmap.yml) name them.
ENDPOINT_PLUGINS = {"tracker_store": "tuanjian.rasa_server.tracker_store.RedactingSQLTrackerStore",
                    "lock_store": "tuanjian.rasa_server.lock_store.LockStoreFromSettings",
                    "nlg": "tuanjian.rasa_server.nlg.ResponseGenerator"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_greeting(base: str) -> bool:
    """Up once a greeting over REST gets a reply."""
    import requests

    try:
        return bool(requests.post(f"{base}/webhooks/rest/webhook",
                                  json={"sender": "up", "message": "/greet"}, timeout=10).json())
    except (requests.RequestException, ValueError):
        return False


@dataclass(frozen=True)
class RunningAssistant:
    base: str  # the Rasa server, e.g. http://127.0.0.1:40123
    rasa_pid: int
    actions_pid: int
    tracker_db: Path | None = None  # the SQLite tracker store, when there is one
    action_port: int = 0
    action_token: str = ""
    logs: Path | None = None


@contextmanager
def running_assistant(is_up: Callable[[str], bool], credentials: str | None = None,
                      rasa_env: dict[str, str] | None = None,
                      sqlite_tracker_store: bool = False, model: Path = MODEL) -> Iterator[RunningAssistant]:
    """Rasa + action server on free ports and a demo database loaded "today";
    yields once `is_up(base URL)` holds. Conversations are kept in memory, or,
    with `sqlite_tracker_store`, in Rasa's SQL store on a SQLite file of their
    own, as `endpoints.yml` (the embedded default) keeps them; the staff
    page's review inbox reads that file."""
    if not model.exists():
        raise RuntimeError("train first: scripts/test.sh trains before running pytest")
    rasa_port, action_port = free_port(), free_port()
    logs = Path(tempfile.mkdtemp(prefix="assistant-test-"))
    endpoints = logs / "endpoints.yml"
    endpoints.write_text(f"action_endpoint:\n  url: http://127.0.0.1:{action_port}/webhook\n"
                         "  headers:\n    Authorization: Bearer ${ACTION_SERVER_TOKEN}\n"
                         f"nlg:\n  type: {ENDPOINT_PLUGINS['nlg']}\n")
    tracker_db = logs / "tracker.db" if sqlite_tracker_store else None
    if tracker_db:
        with endpoints.open("a") as f:
            f.write(f"tracker_store:\n  type: {ENDPOINT_PLUGINS['tracker_store']}\n"
                    f"  dialect: sqlite\n  db: {tracker_db}\n")
    if credentials is not None:
        (logs / "credentials.yml").write_text(credentials)
    env = dict(os.environ, TUANJIAN_DATABASE_URL=f"sqlite:///{logs / 'demo.db'}",
               ACTION_SERVER_TOKEN=secrets.token_urlsafe(24), WEB_SESSION_SECRET=secrets.token_urlsafe(24),
               TUANJIAN_THROTTLE_KEY=secrets.token_urlsafe(24), TUANJIAN_MESSAGES_PER_MINUTE="0")
    if tracker_db:
        env["TUANJIAN_TRACKER_STORE_URL"] = f"sqlite:///{tracker_db}"
    subprocess.run([sys.executable, "-m", "tuanjian.backend.demo"], cwd=ROOT, env=env, check=True)
    base = f"http://127.0.0.1:{rasa_port}"
    commands = [
        ("actions", [sys.executable, "-m", "actions.server", "--port", str(action_port)], env),
        ("rasa", ["rasa", "run", "--model", str(model), "--port", str(rasa_port), "--endpoints", str(endpoints),
                  "--credentials", str(logs / "credentials.yml") if credentials is not None else "credentials.yml"],
         {**env, **(rasa_env or {})}),
    ]
    with running_processes(commands, logs, lambda: is_up(base), timeout=180) as processes:
        yield RunningAssistant(base, processes.pids["rasa"], processes.pids["actions"], tracker_db, action_port,
                               env["ACTION_SERVER_TOKEN"], logs)


Command = tuple[str, list[str], dict[str, str]]  # name (its log is logs/<name>.log), argv, environment


class Processes:
    """The started servers by name: their pids, and a way to stop one (a
    fault) and start it again with the same command."""

    def __init__(self, commands: list[Command], logs: Path) -> None:
        self.commands = {name: (command, env) for name, command, env in commands}
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[Any] = []

    @property
    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.running.items()}

    def start(self, name: str) -> None:
        command, env = self.commands[name]
        self._log_files.append(open(self.logs / f"{name}.log", "a"))
        self.running[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log_files[-1],
                                              stderr=subprocess.STDOUT)

    def stop(self, name: str, kill: bool = False) -> None:
        proc = self.running.pop(name)
        proc.kill() if kill else proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def exited(self) -> list[subprocess.Popen[bytes]]:
        return [proc for proc in self.running.values() if proc.poll() is not None]

    def close(self) -> None:
        for name in list(self.running):
            self.stop(name)
        for log in self._log_files:
            log.close()


@contextmanager
def running_processes(commands: list[Command], logs: Path, is_up: Callable[[], bool],
                      timeout: float) -> Iterator[Processes]:
    """Start the commands; yield them once is_up() holds (an error if one exits
    first or `timeout` passes); stop them all afterwards."""
    processes = Processes(commands, logs)

    def up_or_exited() -> bool:
        exited = processes.exited()
        if exited:
            raise RuntimeError(f"a server exited with {exited[0].returncode}; logs in {logs}")
        return is_up()

    try:
        for name, _, _ in commands:
            processes.start(name)
        if not wait_until(up_or_exited, timeout=timeout):
            raise RuntimeError(f"servers did not come up; logs in {logs}")
        yield processes
    finally:
        processes.close()
