"""Where the benchmark runs: servers, worker processes, RSS sampling, machine and versions.

Servers and processes are started with the test suite's own helpers
(`tests/fixtures/redis.py`, `postgres.py`, `processes.py`), so there is one way to start
redis-server, PostgreSQL and Celery workers and to stop them by PID in this repository.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures import postgres as pg_fixture
from tests.fixtures import redis as redis_fixture
from tests.fixtures.processes import ManagedProcess, ProcessGroup

REPO = Path(__file__).resolve().parents[1]
APP_MODULE = "bench.app"


class BenchError(RuntimeError):
    """The environment could not be set up (a server or a process did not start)."""


# -- servers ---------------------------------------------------------------------------------

@dataclass
class Servers:
    """Redis and PostgreSQL: ours (started here, stopped by PID) or given by URL."""

    broker_url: str
    admin_db_url: str | None  # None: the database URL was given, use it as it is
    given_db_url: str | None
    redis: Any = None
    postgres: Any = None
    _dbs: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, work_dir: Path) -> Servers:
        broker = os.environ.get("LEDGERFLOW_BROKER_URL")
        database = os.environ.get("LEDGERFLOW_DATABASE_URL")
        servers = cls(broker_url=broker or "", admin_db_url=None, given_db_url=database)
        try:
            if not broker:
                servers.redis = _guard(lambda: redis_fixture.start_redis(work_dir / "redis"))
                servers.broker_url = servers.redis.url
            elif not broker.startswith("redis://"):
                raise BenchError(f"LEDGERFLOW_BROKER_URL must be redis:// for the benchmark, not {broker!r}")
            if not database:
                servers.postgres = _guard(pg_fixture.start_postgres)
                servers.admin_db_url = servers.postgres.url()
        except BaseException:
            servers.stop()
            raise
        return servers

    def database(self, label: str) -> str:
        """A fresh migrated database for one scenario (or the given URL)."""
        from persistence.store import Store

        if self.postgres is None:
            url = self.given_db_url or ""
        else:
            name = f"bench_{label.lower()}_{uuid.uuid4().hex[:6]}"
            url = self.postgres.create_database(name)
            self._dbs.append(name)
        with Store(url) as store:
            store.migrate()
        return url

    def server_versions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        try:
            import redis

            info = redis.Redis.from_url(self.broker_url).info("server")
            out["redis-server"] = str(info.get("redis_version"))
        except Exception as exc:  # a version is nice to have, not needed
            out["redis-server"] = f"unknown ({exc.__class__.__name__})"
        try:
            import sqlalchemy as sa

            url = self.admin_db_url or self.given_db_url or ""
            engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)
                                      if url.startswith("postgresql://") else url)
            with engine.connect() as conn:
                out["postgresql"] = str(conn.exec_driver_sql("SHOW server_version").scalar())
            engine.dispose()
        except Exception as exc:
            out["postgresql"] = f"unknown ({exc.__class__.__name__})"
        return out

    def stop(self) -> None:
        if self.postgres is not None:
            for name in self._dbs:
                try:
                    self.postgres.drop_database(name)
                except Exception:
                    pass
            self.postgres.cleanup()
            self.postgres = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def _guard(start: Any) -> Any:
    """Run a fixture helper outside pytest: its pytest.fail() becomes a BenchError."""
    try:
        return start()
    except BaseException as exc:
        if exc.__class__.__name__ == "Failed" or isinstance(exc, RuntimeError):
            raise BenchError(str(exc)) from exc
        raise


# -- processes -------------------------------------------------------------------------------

class Processes:
    """The worker processes of one benchmark run; all killed (by process group) at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.group = ProcessGroup(log_dir)
        self.named: dict[str, ManagedProcess] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        proc = self.group.start(name, argv, env=env, cwd=str(REPO))
        self.named[name] = proc
        return proc

    def ledgerflow(self, name: str, env: dict[str, str], *args: str) -> ManagedProcess:
        return self.start(name, [sys.executable, "-m", "ledgerflow.cli", "--log-level", "WARNING", *args], env)

    def celery_worker(self, name: str, env: dict[str, str], queues: str, concurrency: int) -> ManagedProcess:
        return self.start(name, [sys.executable, "-m", "celery", "-A", "bench.baseline", "worker", "-P", "prefork",
                                 "-c", str(concurrency), "-Q", queues, "-l", "WARNING", "--without-mingle",
                                 "--without-gossip", "-O", "fair", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"], env)

    def check_alive(self) -> None:
        dead = [p for p in self.named.values() if not p.is_alive()]
        if dead:
            raise BenchError("process(es) exited: " + ", ".join(f"{p.name} ({p.returncode})" for p in dead)
                             + "\n" + self.group.format_logs(30))

    def stop(self, name: str) -> None:
        proc = self.named.pop(name, None)
        if proc is not None:
            proc.stop_gracefully(5)

    def stop_all(self) -> None:
        self.group.stop_all()
        self.named.clear()


# -- memory ----------------------------------------------------------------------------------

def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


def rss_mb(pid: int) -> tuple[float, float]:
    """(RSS of the process, largest RSS among its children) in MB."""
    kids = [_rss_kb(c) for c in _children(pid)]
    return _rss_kb(pid) / 1024, (max(kids) / 1024 if kids else 0.0)


class RssSampler:
    """Samples the RSS of named processes (and of their pool children) while a scenario runs."""

    def __init__(self, pids: dict[str, int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        for name, pid in self.pids.items():
            main, child = rss_mb(pid)
            self.peak[name] = max(self.peak.get(name, 0.0), main)
            if child:
                key = f"{name}/child"
                self.peak[key] = max(self.peak.get(key, 0.0), child)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.sample()


@contextmanager
def sampling(pids: dict[str, int]) -> Iterator[RssSampler]:
    with RssSampler(pids) as sampler:
        yield sampler


# -- machine and versions --------------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except FileNotFoundError:
        pass
    mem_gb = None
    try:
        with open("/proc/meminfo") as fh:
            mem_gb = round(int(fh.readline().split()[1]) / 1024 / 1024, 1)
    except (FileNotFoundError, ValueError):
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": mem_gb,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("ledgerflow", "celery", "kombu", "redis", "SQLAlchemy", "psycopg"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True,
                               timeout=5).stdout.strip()
        out["commit"] = commit + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def work_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="lf-bench-"))
