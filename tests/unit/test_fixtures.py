"""The test harness itself: process helpers and the redis-server fixture."""

from __future__ import annotations

import os
import sys

import pytest

from tests.fixtures.processes import ProcessGroup, WaitTimeout, wait_for
from tests.fixtures.redis import RedisError, RedisServer

SLEEPER = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"]


def pid_exists(pid: int) -> bool:
    """True while ``pid`` is a live (non-zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


# -- processes ---------------------------------------------------------------------------


def test_start_log_and_kill9(procs: ProcessGroup) -> None:
    p = procs.start("sleeper", SLEEPER)
    wait_for(lambda: "ready" in p.log_text(), 10, message="sleeper prints ready", logs=procs)
    assert p.is_alive() and pid_exists(p.pid)
    assert os.getpgid(p.pid) == p.pid  # its own process group, so group kills stay ours
    p.kill9()
    assert not p.is_alive()
    assert p.returncode == -9
    assert not pid_exists(p.pid)


def test_kill9_group_kills_children(procs: ProcessGroup) -> None:
    # A parent with one child, like a Celery prefork worker with its pool.
    code = (
        "import subprocess, sys, time;"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "print('child', c.pid, flush=True); time.sleep(60)"
    )
    p = procs.start("parent", [sys.executable, "-c", code])
    line = wait_for(
        lambda: next((l for l in p.log_text().splitlines() if l.startswith("child ")), None),
        10,
        message="parent reports its child",
    )
    child = int(line.split()[1])
    assert pid_exists(child)
    p.kill9()
    wait_for(lambda: not pid_exists(child), 5, message="child killed with its group")


def test_env_cwd_and_log(procs: ProcessGroup, tmp_path) -> None:
    code = "import os; print(os.environ['LF_X'], os.environ.get('LF_GONE'), os.getcwd())"
    os.environ["LF_GONE"] = "present"
    try:
        p = procs.start("env", [sys.executable, "-c", code], env={"LF_X": "42", "LF_GONE": None}, cwd=tmp_path)
    finally:
        del os.environ["LF_GONE"]
    assert p.wait(10) == 0
    assert p.log_text().split() == ["42", "None", str(tmp_path)]
    # A second process of the same name gets its own log file.
    q = procs.start("env", [sys.executable, "-c", "print('second')"], env={"LF_X": "1"})
    q.wait(10)
    assert q.log_path != p.log_path and q.log_text().strip() == "second"


def test_stop_gracefully_and_terminate(procs: ProcessGroup) -> None:
    p = procs.start("sleeper", SLEEPER)
    assert p.stop_gracefully(5) == -15  # default SIGTERM action
    # One that ignores SIGTERM is killed after the timeout.
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    q = procs.start("stubborn", [sys.executable, "-c", code])
    wait_for(lambda: "ready" in q.log_text(), 10, message="stubborn ready")
    assert q.stop_gracefully(0.3) == -9


def test_sigstop_sigcont(procs: ProcessGroup) -> None:
    p = procs.start("sleeper", SLEEPER)
    wait_for(lambda: "ready" in p.log_text(), 10, message="ready")
    p.sigstop()
    wait_for(lambda: proc_state(p.pid) == "T", 5, message="stopped state")
    p.sigcont()
    wait_for(lambda: proc_state(p.pid) != "T", 5, message="running again")
    assert p.is_alive()


def test_group_teardown_kills_everything(tmp_path) -> None:
    group = ProcessGroup(tmp_path)
    a = group.start("a", SLEEPER)
    b = group.start("b", SLEEPER)
    b.sigstop()  # a stopped process must die too
    group.stop_all()
    assert not a.is_alive() and not b.is_alive()
    assert not pid_exists(a.pid) and not pid_exists(b.pid)


def test_wait_for_timeout_message_and_logs(procs: ProcessGroup) -> None:
    p = procs.start("talker", [sys.executable, "-c", "print('hello from talker')"])
    p.wait(10)
    with pytest.raises(WaitTimeout) as info:
        wait_for(lambda: False, 0.2, message="the impossible", logs=procs)
    text = str(info.value)
    assert "the impossible" in text and "hello from talker" in text

    def flaky() -> bool:
        raise ConnectionError("not yet")

    with pytest.raises(WaitTimeout, match="not yet"):
        wait_for(flaky, 0.2, ignore=(ConnectionError,))
    with pytest.raises(ZeroDivisionError):  # unexpected errors are not swallowed
        wait_for(lambda: 1 / 0, 0.2, ignore=(ConnectionError,))
    assert wait_for(lambda: 7, 1) == 7


# -- redis-server ------------------------------------------------------------------------


def test_redis_ping_set_flush(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_url == redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.ping()
    assert redis_server.command("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"noeviction"]
    assert redis_server.command("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
    assert redis_server.command("CONFIG", "GET", "save") == [b"save", b""]
    redis_server.command("SET", "k", "v")
    assert redis_server.command("GET", "k") == b"v"
    redis_server.flushall()
    assert redis_server.command("GET", "k") is None
    with pytest.raises(RedisError):
        redis_server.command("NOSUCHCOMMAND")


def test_redis_url_starts_empty(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_server.command("DBSIZE") == 0
    redis_server.command("SET", "left-behind", "1")  # the next test must not see it


def test_redis_restart_and_kill9(redis_server: RedisServer, redis_url: str) -> None:
    port, pid = redis_server.port, redis_server.pid
    redis_server.command("SET", "k", "v")
    redis_server.restart()
    assert redis_server.port == port and redis_server.pid != pid
    assert not pid_exists(pid)
    assert redis_server.command("GET", "k") is None  # no persistence: the crash lost it
    redis_server.kill9()
    assert not redis_server.is_alive()
    with pytest.raises(OSError):
        redis_server.ping()
    redis_server.start()
    assert redis_server.ping() and redis_server.port == port


def test_redis_with_persistence(make_redis) -> None:
    server = make_redis("--appendonly", "yes", "--appendfsync", "always")
    server.command("SET", "k", "v")
    server.restart()
    assert server.command("GET", "k") == b"v"  # the AOF survived kill -9
