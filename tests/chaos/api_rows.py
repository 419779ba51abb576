"""Rows B1-B5 of ../shared/RELIABILITY.md: bad input at the HTTP API, against a real
`ledgerflow api` process over a real stack (PostgreSQL, Redis, orchestrator, worker, beat).

Like tests/chaos/scenarios.py, each scenario is written once and run at two sizes: reduced
in tests/integration/reliability/test_api_rows.py, full behind the `chaos` marker in
tests/chaos/test_chaos_rows.py. Bad requests go out on raw sockets, byte for byte, so that
no client library normalises `../`, refuses a NUL or re-encodes a path.

    B1  bad instance and app IDs on every route (and NUL in names, bad list filters and
        flags): only 400/404/401, nothing written
    B2  bad bodies and framing: only 400/413/415; workers and the database unaffected
    B3  slowloris: slow connections are closed by the header timeout; a normal client
        keeps its p99 under 1 s
    B4  schemathesis over /openapi.json (all phases, all checks, stateful links)
    B5  every operation without the token, with a wrong one, with one in the query: 401

This module is also schemathesis's hook module in B4 (SCHEMATHESIS_HOOKS names it; see the
end of the file).
"""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import selectors
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from ledgerflow.api.openapi import VERSIONS
from tests.fixtures.chaos import REPO, ChaosStack, Prober, RowReport, percentile, spread, tree_rss_kb
from tests.fixtures.processes import wait_for

MakeStack = Callable[..., ChaosStack]

#: The tables a request could write to; "nothing written" compares their row counts.
WATCHED_TABLES = ("instances", "inbox", "history_events", "outbox", "timers")
ALLOWED_500S_ENV = "LEDGERFLOW_B4_ALLOWED_500S"
#: Steps per stateful scenario (schemathesis's default is 6): long enough for chains like
#: start -> pause -> resume -> terminate -> purge -> get, so that more links get followed.
STATEFUL_STEPS = 20


# -- raw HTTP --------------------------------------------------------------------------------------


@dataclass
class Answer:
    """A parsed HTTP answer; status 0 when the connection closed without one."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def parse_answer(data: bytes) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
    if match is None:
        return Answer(0, body=data)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return Answer(int(match.group(1)), headers, body)


def address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return data
        if not chunk:
            return data
        data += chunk


def raw_request(base: str, method: str, target: bytes, *, headers: Sequence[tuple[bytes, bytes]] = (),
                body: bytes | None = None, timeout: float = 30) -> Answer:
    """One request on its own connection (`Connection: close`), the target sent as given."""
    head = b"%s %s HTTP/1.1\r\nHost: lf\r\nConnection: close\r\n" % (method.encode(), target)
    head += b"".join(b"%s: %s\r\n" % (k, v) for k, v in headers)
    if body is not None:
        head += b"Content-Length: %d\r\n" % len(body)
    with socket.create_connection(address(base), timeout=timeout) as sock:
        try:
            sock.sendall(head + b"\r\n" + (body or b""))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the end of the body: read its answer
        return parse_answer(_read_all(sock))


def stream_request(base: str, head: bytes, chunks: Iterable[bytes], timeout: float = 60) -> tuple[Answer, int]:
    """Send `head`, then `chunks`, while a reader thread waits for the answer; returns the
    answer and the body bytes sent. The reader takes the answer as soon as it arrives: a
    server that answers 413 and closes with unread body bytes resets the connection, and a
    reset that arrived before the answer was read would lose it."""
    sock = socket.create_connection(address(base), timeout=timeout)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(_read_all(sock)), daemon=True)
    sent = 0
    try:
        sock.sendall(head)
        reader.start()
        for chunk in chunks:
            if received:
                break
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        reader.join(timeout)
        sock.close()
    return parse_answer(received[0] if received else b""), sent


def _http_get(base: str, path: str, headers: dict[str, str], timeout: float = 10) -> tuple[int, bytes]:
    import http.client

    host, port = address(base)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- stack helpers ---------------------------------------------------------------------------------


def row_counts(stack: ChaosStack) -> dict[str, int]:
    return {table: stack.sql(f"SELECT count(*) FROM {table}")[0][0] for table in WATCHED_TABLES}


def settled_counts(stack: ChaosStack, timeout: float = 30) -> dict[str, int]:
    """Row counts once two readings a second apart agree (outbox rows of finished work are
    deleted in the background)."""
    last = row_counts(stack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = row_counts(stack)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the row counts kept changing for {timeout:.0f}s: {last}")


def _api_stack(make_stack: MakeStack, *, args: Sequence[str] = ()) -> tuple[ChaosStack, str, str]:
    """A stack with one worker and an API behind a random token, warmed up."""
    stack = make_stack()
    stack.start_all(workers=1)
    token = secrets.token_urlsafe(24)
    base = stack.start_api(token=token, args=args)
    stack.warm_up()
    return stack, base, token


def _api_log(stack: ChaosStack) -> str:
    return stack.processes["api"].log_text()


def _assert_healthy(stack: ChaosStack, base: str) -> None:
    """Every process still runs and the API answers its health route."""
    dead = [name for name, proc in stack.processes.items() if not proc.is_alive()]
    assert not dead, f"processes died: {dead}\n{stack.logs()}"
    status, _ = _http_get(base, "/v1.0/healthz", {})
    assert status == 204, f"the API's health route answered {status}"


def _tracebacks(stack: ChaosStack) -> int:
    return _api_log(stack).count("Traceback")


def _by_status(answers: Iterable[Answer]) -> dict[int, int]:
    return dict(sorted(Counter(a.status for a in answers).items()))


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM, kept by the kernel)."""
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def _in_parallel(requests: Sequence[Callable[[], Answer]], threads: int) -> list[Answer]:
    from concurrent.futures import ThreadPoolExecutor

    if threads <= 1:
        return [send() for send in requests]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda send: send(), requests))


# -- B1: bad IDs on every route --------------------------------------------------------------------


def _pct(text: str) -> bytes:
    """Percent-encode every byte of the UTF-8 text."""
    return b"".join(b"%%%02X" % b for b in text.encode())


#: Label -> the bytes that go into the request target where an instance ID belongs.
BAD_IDS: dict[str, bytes] = {
    "../x": b"../x",
    "%2e%2e%2f": b"%2e%2e%2fx",
    "%2E%2E%2F (trailing slash)": b"%2E%2E%2F",
    "double-encoded ../": b"%252e%252e%252fx",
    "..\\x": b"..%5Cx",
    "overlong UTF-8 ../": b"%C0%AE%C0%AE%C0%AFx",
    "encoded slash": b"a%2Fb",
    "trailing slash": b"x/",
    "raw NUL": b"a\x00b",
    "encoded NUL": b"a%00b",
    "65 chars": b"a" * 65,
    "1000 chars": b"b" * 1000,
    "empty": b"",
    "space": b"a%20b",
    "trailing newline": b"abc%0A",
    "CRLF header injection": b"a%0D%0AX-Injected:%201",
    "semicolon": b"a;b",
    "invalid UTF-8": b"%FF%FE",
    "encoded lone surrogate": b"%ED%A0%80",
    "cyrillic look-alike (encoded)": _pct("w\u043erkflow"),
    "cyrillic look-alike (raw UTF-8)": "w\u043erkflow".encode(),
    "fullwidth digits": _pct("\uff11\uff12\uff13"),
    "Kelvin sign K": _pct("\u212a1"),
    "dotless i": _pct("\u0131d"),
    "zero-width space": _pct("a\u200bb"),
    "BOM": _pct("\ufeffabc"),
    "RTL mark": _pct("abc\u200f"),
    "RTL override": _pct("\u202eabc"),
    "RTL isolate (raw UTF-8)": "\u2067abc".encode(),
}

#: For appID, which takes up to 128 characters and is optional (empty: the server's app).
BAD_APP_IDS: dict[str, bytes] = {
    **{k: v for k, v in BAD_IDS.items() if k not in ("65 chars", "empty")},
    "129 chars": b"c" * 129,
    "leading dot": b".hidden",
}


#: Names may hold any text but NUL (PostgreSQL text cannot store it).
BAD_NAMES: dict[str, bytes] = {"raw NUL": b"a\x00b", "encoded NUL": b"a%00b", "only NUL": b"%00"}

#: List filters that once reached the database as they were (500s), each now a 400.
BAD_FILTERS: dict[str, bytes] = {
    "createdAfter before year 1 in UTC": b"createdAfter=0001-01-01T00:00:00%2B01:00",
    "createdBefore after year 9999 in UTC": b"createdBefore=9999-12-31T23:59:59-01:00",
    "createdAfter not RFC 3339": b"createdAfter=2020-01-01",
    "createdAfter empty": b"createdAfter=",
    "continuationToken beyond bigint": b"continuationToken=99999999999999999999999",
    "continuationToken fullwidth digit": b"continuationToken=%EF%BC%91",
    "pageSize fullwidth digit": b"pageSize=%EF%BC%95",
    "status with a dotless i": b"status=RUNN%C4%B1NG",
    "status with a long s": b"status=%C5%BFUSPENDED",
}


def _b1_requests(versions: Sequence[str], instance: str) -> list[tuple[str, str, bytes, bytes | None]]:
    """(position, method, target, body) for each bad ID in each place an ID goes, each NUL
    name where a name goes, and each bad list filter."""
    body = b'{"x": 1, "n": 1}'
    out: list[tuple[str, str, bytes, bytes | None]] = []
    for version in versions:
        base = f"{version}/workflows/dapr".encode()
        for raw in BAD_IDS.values():
            one = base + b"/" + raw
            out += [("instance ID", "GET", one, None), ("instance ID", "GET", one + b"/history", None)]
            out += [("instance ID", "POST", one + b"/" + action, None)
                    for action in (b"terminate", b"pause", b"resume", b"purge", b"raiseEvent")]
            out.append(("instance ID", "POST", one + b"/raiseEvent/go", b'"data"'))
            if raw:  # an empty instanceID asks for a random one
                out.append(("instanceID query", "POST", base + b"/chain/start?instanceID=" + raw, body))
        existing = base + b"/" + instance.encode()
        routes = [("GET", base, None), ("POST", base + b"/chain/start", body), ("GET", existing, None),
                  ("GET", existing + b"/history", None), ("POST", existing + b"/raiseEvent/go", b'"data"'),
                  *[("POST", existing + b"/" + a, None) for a in (b"terminate", b"pause", b"resume", b"purge")]]
        for raw in BAD_APP_IDS.values():
            out += [("appID query", method, target + b"?appID=" + raw, b) for method, target, b in routes]
        for raw in BAD_NAMES.values():
            out += [("name", "POST", base + b"/" + raw + b"/start", body),
                    ("name", "POST", existing + b"/raiseEvent/" + raw, b'"data"'),
                    ("name", "GET", base + b"?name=" + raw, None)]
        out += [("list filter", "GET", base + b"?" + query, None) for query in BAD_FILTERS.values()]
        out += [("flag", "POST", existing + b"/" + action + b"?non_recursive=" + value, None)
                for action in (b"terminate", b"purge") for value in (b"ture", b"", b"%C4%B1")]
    return out


def b1_bad_ids(make_stack: MakeStack, row: RowReport, *, versions: Sequence[str] = VERSIONS,
               threads: int = 1) -> None:
    stack, base, token = _api_stack(make_stack)
    existing = stack.acknowledged[0]  # a COMPLETED warm-up workflow: a bypassed check would act on it
    before = settled_counts(stack)
    requests = _b1_requests(versions, existing)
    auth = [(b"dapr-api-token", token.encode())]
    t0 = time.monotonic()
    answers = _in_parallel([lambda m=m, t=t, b=b: raw_request(base, m, t, headers=auth, body=b)
                            for _, m, t, b in requests], threads)
    took = time.monotonic() - t0
    after = settled_counts(stack)
    by_position: dict[str, Counter[int]] = {}
    for (position, *_), answer in zip(requests, answers):
        by_position.setdefault(position, Counter())[answer.status] += 1
    unexpected = [(m, t, a.status) for (_, m, t, _), a in zip(requests, answers) if a.status not in (400, 401, 404)]
    row.figure("requests", f"{len(answers)} ({len(BAD_IDS)} bad IDs, {len(BAD_APP_IDS)} bad appIDs, "
                           f"{len(BAD_NAMES)} bad names, {len(BAD_FILTERS)} bad filters, {len(versions)} version(s), "
                           f"{threads} thread(s), {took:.1f}s)")
    row.figure("by status", _by_status(answers))
    row.figure("by position", {k: dict(sorted(v.items())) for k, v in by_position.items()})
    row.figure("5xx", sum(1 for a in answers if a.status >= 500))
    row.figure("rows written", {t: after[t] - before[t] for t in WATCHED_TABLES if after[t] != before[t]} or 0)
    row.figure("tracebacks in API log", _tracebacks(stack))
    assert len(answers) == len(requests) and all(a.status for a in answers), "a request got no answer"
    assert not unexpected, f"answers other than 400/401/404: {unexpected[:10]}"
    assert after == before, f"bad IDs wrote rows: {before} -> {after}"
    assert _tracebacks(stack) == 0, _api_log(stack)[-3000:]
    _assert_healthy(stack, base)


# -- B2: bad bodies ---------------------------------------------------------------------------------


def bad_bodies(depth: int = 100_000) -> dict[str, bytes]:
    """Label -> a body that must be refused with 400 on every route that takes one."""
    return {
        f"{depth // 1000}k-deep array": b"[" * depth + b"]" * depth,
        f"{depth // 1000}k-deep object": b'{"a":' * depth + b"1" + b"}" * depth,
        "10k-digit int": b"9" * 10_000,
        "5k-digit negative int in an object": b'{"n": -' + b"9" * 5000 + b"}",
        "1e400 (float overflow)": b"1e400",
        "[-1e999]": b"[-1e999]",
        "NaN": b"NaN",
        "Infinity in an object": b'{"a": Infinity}',
        "-Infinity in an array": b"[-Infinity]",
        "\\u0000 in a string": b'"a\\u0000b"',
        "\\u0000 in a key": b'{"\\u0000": 1}',
        "lone high surrogate": b'"\\ud800"',
        "lone low surrogate in an array": b'["\\udfff"]',
        "reversed surrogate pair": b'"\\udc00\\ud800"',
        "lone surrogate in a key": b'{"k\\ud83d": 1}',
        "invalid UTF-8": b'"\xff\xfe"',
        "overlong UTF-8": b'"\xc0\xae"',
        "UTF-8-encoded surrogate": b'"\xed\xa0\x80"',
        "truncated UTF-8": b'"\xe2\x82"',
        "UTF-16": '{"a": 1}'.encode("utf-16"),
        "UTF-8 BOM": b'\xef\xbb\xbf{"a": 1}',
        "raw NUL in a string": b'"a\x00b"',
        "raw control character": b'"a\x01b"',
        "trailing garbage": b'{"a": 1} x',
        "unterminated": b'{"a": [1, 2',
        "single quotes": b"{'a': 1}",
    }


Framing = dict[str, tuple[bytes, Callable[[], Iterator[bytes]]]]


def _repeat(total: int, size: int = 65536) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        chunk = min(size, total - sent)
        yield b"7" * chunk
        sent += chunk


def _chunked(total: int, size: int = 65536) -> Iterator[bytes]:
    for chunk in _repeat(total, size):
        yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
    yield b"0\r\n\r\n"


def oversize_cases(max_body: int, oversize: int) -> Framing:
    """Label -> (headers after the request line, body chunks): bodies over the cap (413)."""
    return {
        f"Content-Length {max_body + 1} (1 byte over)": (b"Content-Length: %d\r\n" % (max_body + 1),
                                                          lambda: _repeat(max_body + 1)),
        f"chunked, no Content-Length, {oversize >> 20} MiB": (b"Transfer-Encoding: chunked\r\n",
                                                              lambda: _chunked(oversize)),
        "Content-Length 1 GiB, 1 KiB sent": (b"Content-Length: %d\r\n" % (1 << 30), lambda: _repeat(1024)),
    }


def framing_cases() -> Framing:
    """Label -> (headers, body chunks): a body whose framing is bad (400)."""
    return {
        "Content-Length not a number": (b"Content-Length: 12abc\r\n", lambda: iter([b'{"a": 1}'])),
        "two different Content-Lengths": (b"Content-Length: 2\r\nContent-Length: 8\r\n", lambda: iter([b"{}"])),
        "Content-Length and Transfer-Encoding": (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                                                 lambda: iter([b"2\r\n{}\r\n0\r\n\r\n"])),
        "negative Content-Length": (b"Content-Length: -1\r\n", lambda: iter([b"{}"])),
    }


def _b2_targets(versions: Sequence[str], waiter: str) -> list[tuple[str, bytes]]:
    out = []
    for version in versions:
        out.append(("start", f"{version}/workflows/dapr/chain/start?instanceID=b2-{uuid.uuid4().hex[:12]}".encode()))
        out.append(("raiseEvent", f"{version}/workflows/dapr/{waiter}/raiseEvent/go".encode()))
    return out


def _send_bad_bodies(base: str, token: str, targets: Sequence[tuple[str, bytes]], bodies: dict[str, bytes],
                     framing: Framing) -> tuple[list[tuple[str, str, Answer]], dict[str, int]]:
    """Every body and framing on every target; the answers, and the most body bytes sent
    per framing before the server answered."""
    auth = [(b"dapr-api-token", token.encode())]
    results, sent = [], dict.fromkeys(framing, 0)
    for route, target in targets:
        for label, body in bodies.items():
            answer = raw_request(base, "POST", target, headers=auth, body=body)
            results.append((route, label, answer))
        for label, (headers, chunks) in framing.items():
            head = b"POST %s HTTP/1.1\r\nHost: lf\r\ndapr-api-token: %s\r\n%s\r\n" % (target, token.encode(), headers)
            answer, n = stream_request(base, head, chunks())
            results.append((route, label, answer))
            sent[label] = max(sent[label], n)
    return results, sent


def b2_bad_bodies(make_stack: MakeStack, row: RowReport, *, versions: Sequence[str] = VERSIONS,
                  depth: int = 100_000, oversize: int = 64 << 20, rss_growth_limit_mb: int = 256) -> None:
    stack, base, token = _api_stack(make_stack)
    max_body = 4 * 1024 * 1024  # ApiSettings.max_body_bytes: the API runs with its default
    client = stack.client()
    waiter = stack.schedule(client, "waiter", None)
    wait_for(lambda: client.get_workflow_state(waiter).runtime_status.name == "RUNNING", 60,
             message="the waiter to run", logs=stack.procs)
    before = settled_counts(stack)
    bodies, oversized = bad_bodies(depth), oversize_cases(max_body, oversize)
    framing = {**oversized, **framing_cases()}
    targets = _b2_targets(versions, waiter)
    api_pid = stack.processes["api"].pid
    rss_before, peak_before = tree_rss_kb(api_pid), peak_rss_kb(api_pid)
    t0 = time.monotonic()
    results, sent = _send_bad_bodies(base, token, targets, bodies, framing)
    took = time.monotonic() - t0
    peak = peak_rss_kb(api_pid)
    after = settled_counts(stack)
    answers = [a for _, _, a in results]
    unexpected = [(route, label, a.status, a.body[:120]) for route, label, a in results
                  if a.status not in (400, 413, 415)]
    expected_count = len(targets) * (len(bodies) + len(framing))
    row.figure("requests", f"{len(results)} ({len(bodies)} bodies + {len(framing)} framings x {len(targets)} "
                           f"routes, {took:.1f}s)")
    row.figure("by status", _by_status(answers))
    row.figure("5xx", sum(1 for a in answers if a.status >= 500))
    row.figure("oversize", {label: f"{_by_status(a for _, lb, a in results if lb == label)}, at most "
                                   f"{sent[label] / (1 << 20):.1f} MiB written to the socket before the answer"
                            for label in oversized})
    row.figure("API peak RSS", f"{_mb(peak)} (VmHWM; {_mb(peak_before)} before the bad bodies, RSS then "
                               f"{_mb(rss_before)}; body cap {max_body >> 20} MiB)")
    row.figure("rows written", {t: after[t] - before[t] for t in WATCHED_TABLES if after[t] != before[t]} or 0)
    assert len(results) == expected_count, (len(results), expected_count)
    assert not unexpected, f"answers other than 400/413/415: {unexpected[:10]}"
    assert after == before, f"bad bodies wrote rows: {before} -> {after}"
    assert _tracebacks(stack) == 0, _api_log(stack)[-3000:]
    assert (peak - rss_before) / 1024 < rss_growth_limit_mb, f"the API peaked {_mb(peak - rss_before)} above " \
                                                              "its resident size before the bad bodies"
    unaffected = _b2_still_works(stack, base, token, client, waiter)
    row.figure("after", unaffected)
    row.figure("checker", stack.check().summary())
    _assert_healthy(stack, base)


def _b2_still_works(stack: ChaosStack, base: str, token: str, client: Any, waiter: str) -> str:
    """The waiter gets a good event after all the bad ones; a new chain runs to the end."""
    auth = [(b"dapr-api-token", token.encode())]
    good = raw_request(base, "POST", f"/v1.0/workflows/dapr/{waiter}/raiseEvent/go".encode(), headers=auth,
                       body=b'{"ok": true}')
    chain = f"b2-good-{uuid.uuid4().hex[:8]}"
    started = raw_request(base, "POST", f"/v1.0/workflows/dapr/chain/start?instanceID={chain}".encode(),
                          headers=auth, body=b'{"x": 3, "n": 2}')
    assert (good.status, started.status) == (202, 202), (good, started)
    stack.acknowledged.append(chain)
    stack.wait_terminal([waiter, chain], 120)
    outputs = stack.outputs([waiter, chain])
    assert outputs == {waiter: {"ok": True}, chain: 12}, outputs
    return "the waiter took the good event after the bad ones; a new chain COMPLETED"


# -- B3: slowloris ----------------------------------------------------------------------------------


@dataclass
class _Slow:
    sock: socket.socket
    opened: float
    next_byte: float
    sent: int = 0


class Slowloris:
    """`connections` connections that send a request line and then one header byte every
    `every` seconds, never finishing their headers; each one the server closes is replaced
    until `stop()`. One selector thread drives them all."""

    PREFIX = b"GET /v1.0/workflows/dapr HTTP/1.1\r\nHost: lf\r\n"
    TRICKLE = b"X-Slow-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"

    def __init__(self, base: str, connections: int, every: float = 1.0) -> None:
        self.address = address(base)
        self.connections = connections
        self.every = every
        self.opened = 0
        self.closed_by_server = 0
        self.lifetimes: list[float] = []
        self.max_open = 0
        self.connect_errors = 0
        self._selector = selectors.DefaultSelector()
        self._live: dict[int, _Slow] = {}
        self._replace = True
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Slowloris:
        for i in range(self.connections):
            self._open(time.monotonic() + self.every * i / self.connections)
        self._thread.start()
        return self

    def _open(self, first_byte_at: float) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=5)
            sock.sendall(self.PREFIX)
        except OSError:
            self.connect_errors += 1
            return
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)
        self._live[sock.fileno()] = _Slow(sock, time.monotonic(), first_byte_at)
        self.opened += 1
        self.max_open = max(self.max_open, len(self._live))

    def _closed(self, slow: _Slow, by_server: bool) -> None:
        self._selector.unregister(slow.sock)
        del self._live[slow.sock.fileno()]
        slow.sock.close()
        if by_server:
            self.closed_by_server += 1
            self.lifetimes.append(time.monotonic() - slow.opened)
            if self._replace:
                self._open(time.monotonic() + self.every)

    def _run(self) -> None:
        while not self._done.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                slow = self._live.get(key.fd)
                if slow is not None:
                    self._readable(slow)
            now = time.monotonic()
            for slow in [s for s in self._live.values() if s.next_byte <= now]:
                self._trickle(slow, now)

    def _readable(self, slow: _Slow) -> None:
        try:
            data = slow.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # closed by the server (an answer would mean the headers were complete)
            self._closed(slow, by_server=True)

    def _trickle(self, slow: _Slow, now: float) -> None:
        try:
            slow.sock.send(self.TRICKLE[slow.sent % len(self.TRICKLE):][:1])
            slow.sent += 1
            slow.next_byte = now + self.every
        except BlockingIOError:
            slow.next_byte = now + self.every
        except OSError:
            self._closed(slow, by_server=True)

    def stop(self, drain: float) -> int:
        """Stop replacing connections, wait up to `drain` seconds for the server to close the
        rest; returns how many it left open (then closes them)."""
        self._replace = False
        deadline = time.monotonic() + drain
        while self._live and time.monotonic() < deadline:
            time.sleep(0.1)
        self._done.set()
        self._thread.join(5)
        left = list(self._live.values())
        for slow in left:
            self._closed(slow, by_server=False)
        return len(left)


def _raise_fd_limit(needed: int) -> str:
    """Raise the soft open-files limit (inherited by the API started afterwards) if short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    assert soft == resource.RLIM_INFINITY or soft >= needed, f"ulimit -n {soft} < {needed} (hard limit {hard})"
    return str(soft)


def b3_slowloris(make_stack: MakeStack, row: RowReport, *, connections: int, duration: float,
                 header_timeout: float = 2.0, every: float = 1.0) -> None:
    limit = _raise_fd_limit(2 * connections + 1024)
    stack, base, token = _api_stack(make_stack, args=["--header-timeout", f"{header_timeout:g}"])
    iid = stack.acknowledged[0]
    path, headers = f"/v1.0/workflows/dapr/{iid}", {"dapr-api-token": token}
    # sequential GETs, each on a new connection
    normal = Prober(lambda: str(_http_get(base, path, headers, timeout=10)[0]), every=0.05).start()
    time.sleep(1.0)
    baseline = list(normal.durations)
    slow = Slowloris(base, connections, every).start()
    time.sleep(duration)
    under_attack = len(normal.durations)
    left_open = slow.stop(drain=header_timeout + 5)
    normal.stop()
    attack = normal.durations[len(baseline):under_attack]
    row.figure("slow connections", f"{connections} at a time, 1 header byte every {every:g}s for {duration:g}s; "
                                   f"{slow.opened} opened, peak {slow.max_open} open (ulimit -n {limit})")
    row.figure("closed by the server", f"{slow.closed_by_server} (header timeout {header_timeout:g}s), "
                                       f"lifetime {spread(slow.lifetimes)}; left open {left_open}")
    row.figure("normal client", f"{len(attack)} requests under attack {dict(normal.results)}")
    row.figure("normal p99", f"{percentile(attack, 99):.3f}s (before the attack {percentile(baseline, 99):.3f}s; "
                             f"{spread(attack)})")
    assert slow.max_open >= 0.9 * connections, f"only {slow.max_open} of {connections} slow connections were open"
    assert slow.connect_errors == 0, f"{slow.connect_errors} slow connections could not connect"
    assert left_open == 0 and slow.closed_by_server == slow.opened, \
        f"the server left {left_open} slow connection(s) open ({slow.closed_by_server} of {slow.opened} closed)"
    assert header_timeout - 0.5 < min(slow.lifetimes) and max(slow.lifetimes) < header_timeout + 2.0, \
        f"slow connections lived {spread(slow.lifetimes)}, not the header timeout ({header_timeout:g}s)"
    assert len(attack) >= duration * 2, f"the normal client made only {len(attack)} requests"
    assert set(normal.results) == {"200"}, f"the normal client got {dict(normal.results)}"
    assert percentile(attack, 99) < 1.0, f"normal p99 {percentile(attack, 99):.3f}s under the attack"
    _assert_healthy(stack, base)


# -- B4: schemathesis ------------------------------------------------------------------------------


def _schemathesis(base: str, token: str, *, seed: int, max_examples: int, versions: Sequence[str], workdir: Path,
                  timeout: float) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], list[str]]:
    """`schemathesis run` with every check (Dapr's two documented 500s allowed by our own check
    instead of `not_a_server_error`, see `not_a_server_error_but_daprs`); returns the process,
    its JSON report and the 500s our check allowed."""
    report, allowed, config = workdir / "schemathesis.json", workdir / "allowed-500s.txt", workdir / "st.toml"
    config.write_text(f"[phases.stateful]\nmax-steps = {STATEFUL_STEPS}\n")
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{base}/openapi.json",
            "--header", f"dapr-api-token: {token}", "--checks", "all", "--exclude-checks", "not_a_server_error",
            "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(max_examples),
            "--seed", str(seed), "--generation-database", "none", "--request-timeout", "15", "--workers", "1",
            "--no-color", "--report", "json", "--report-json-path", str(report),
            "--include-path-regex", "^(?:" + "|".join(re.escape(v) for v in versions) + ")/"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": __name__, ALLOWED_500S_ENV: str(allowed), "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    loaded = allowed.read_text().splitlines() if allowed.exists() else []
    assert loaded[:1] == ["hooks loaded"], f"schemathesis did not load our check\n{done.stdout[-3000:]}{done.stderr}"
    document = json.loads(report.read_text()) if report.exists() else {}
    return done, document, loaded[1:]


def b4_schemathesis(make_stack: MakeStack, rng: Random, row: RowReport, *, max_examples: int,
                    versions: Sequence[str] = VERSIONS, timeout: float = 1800) -> None:
    stack, base, token = _api_stack(make_stack)
    seed = rng.randrange(2**31)
    done, report, allowed = _schemathesis(base, token, seed=seed, max_examples=max_examples, versions=versions,
                                          workdir=stack.tmp, timeout=timeout)
    out = done.stdout
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", out)
    cases = report.get("test_cases", {})
    phases = {name: p["status"] for name, p in report.get("phases", {}).items()}
    row.figure("schemathesis seed", seed)
    row.figure("cases run", f"{cases.get('generated')} (max {max_examples} per operation, "
                            f"{report.get('operations', {}).get('tested')} operations under {', '.join(versions)}, "
                            f"{report.get('running_time', 0):.0f}s)")
    row.figure("phases", phases)
    row.figure("stateful links covered", f"{links.group(1)} of {links.group(2)}" if links else "n/a")
    row.figure("failures", f"{cases.get('with_failures')} ({[f['code'] for f in report.get('failures', [])]})")
    row.figure("Dapr's documented 500s (allowed)", dict(Counter(allowed)))
    row.figure("tracebacks in API log", _tracebacks(stack))
    assert report, f"no report from schemathesis\n{out[-5000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0 and not report["failures"] and not report["errors"], out[-20000:]
    assert cases["with_failures"] == 0 and cases["errored"] == 0, cases
    assert cases["generated"] >= max_examples, cases
    assert phases.get("stateful") == "success" and phases.get("fuzzing") == "success" and \
        phases.get("coverage") == "success", phases
    assert links is not None and int(links.group(1)) > 0, "no stateful link was followed"
    assert report["operations"]["tested"] == report["operations"]["selected"] == 13 * len(versions), \
        report["operations"]
    assert _tracebacks(stack) == 0, _api_log(stack)[-3000:]
    _assert_healthy(stack, base)


def not_a_server_error_but_daprs(ctx: Any, response: Any, case: Any) -> None:
    """schemathesis's `not_a_server_error`, except for the two 500s that Dapr's API answers
    by contract and tests/integration/api holds us to: ERR_START_WORKFLOW for an instance ID
    that is still active, ERR_PURGE_WORKFLOW for an instance that has not finished. Only
    those bodies pass; every other 5xx fails."""
    if response.status_code < 500:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        body = {}
    code, message = (body.get("errorCode"), body.get("message", "")) if isinstance(body, dict) else (None, "")
    contract = {("ERR_START_WORKFLOW", "already exists and is"),
                ("ERR_PURGE_WORKFLOW", "not COMPLETED, FAILED or TERMINATED")}
    if response.status_code == 500 and any(code == c and text in message for c, text in contract):
        with open(os.environ[ALLOWED_500S_ENV], "a") as fh:
            fh.write(f"{code}\n")
        return None
    raise AssertionError(f"server error {response.status_code}: {response.content[:500]!r}")


def _register_schemathesis_check() -> None:
    import schemathesis

    schemathesis.check(not_a_server_error_but_daprs)
    with open(os.environ[ALLOWED_500S_ENV], "w") as fh:
        fh.write("hooks loaded\n")


# -- B5: auth on every operation --------------------------------------------------------------------


def _operations(base: str, token: str) -> list[tuple[str, str, bool]]:
    """(method, path template, open) for every operation of /openapi.json, the document route
    itself, and a route that does not exist (auth comes before routing: no 404 to probe with)."""
    status, body = _http_get(base, "/openapi.json", {"dapr-api-token": token})
    assert status == 200, status
    doc = json.loads(body)
    ops = [(method.upper(), path, op.get("security") == []) for path, item in doc["paths"].items()
           for method, op in item.items()]
    return [*ops, ("GET", "/openapi.json", False), ("GET", "/v1.0/no-such-route", False)]


def _fill(path: str, instance: str) -> str:
    values = {"component": "dapr", "instanceID": instance, "workflowName": "chain", "eventName": "go"}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _auth_variants(token: str) -> dict[str, tuple[list[tuple[bytes, bytes]], str]]:
    """Label -> (headers, query string) that must not authenticate."""
    last = "A" if token[-1] != "A" else "B"
    bad = [("no token", [], ""), ("wrong token", [(b"dapr-api-token", b"wrong")], ""),
           ("token in the query", [], f"?dapr-api-token={token}"),
           ("token in the query, wrong header", [(b"dapr-api-token", b"wrong")], f"?dapr-api-token={token}"),
           ("last character differs", [(b"dapr-api-token", (token[:-1] + last).encode())], ""),
           ("prefix of the token", [(b"dapr-api-token", token[:-1].encode())], ""),
           ("token plus a character", [(b"dapr-api-token", (token + "x").encode())], ""),
           ("empty token", [(b"dapr-api-token", b"")], ""),
           ("Authorization: Bearer", [(b"authorization", b"Bearer " + token.encode())], ""),
           ("token in another header", [(b"x-dapr-api-token", token.encode())], "")]
    return {label: (headers, query) for label, headers, query in bad}


def _b5_request(base: str, method: str, path: str, headers: list[tuple[bytes, bytes]], query: str) -> Answer:
    body = b'{"x": 1, "n": 1}' if method == "POST" else None
    return raw_request(base, method, (path + query).encode(), headers=headers, body=body)


def b5_auth(make_stack: MakeStack, row: RowReport) -> None:
    stack, base, token = _api_stack(make_stack)
    instance = stack.acknowledged[0]
    ops = _operations(base, token)
    before = settled_counts(stack)
    variants = _auth_variants(token)
    results = [(method, path, is_open, label, _b5_request(base, method, _fill(path, instance), headers, query))
               for method, path, is_open in ops for label, (headers, query) in variants.items()]
    after = settled_counts(stack)
    protected = [(m, p, label, a) for m, p, is_open, label, a in results if not is_open]
    successes = [(m, p, label, a.status) for m, p, label, a in protected
                 if (a.status, a.body) != (401, b"invalid api token")]
    health = [a.status for _, _, is_open, _, a in results if is_open]
    compared = _compare_digest_calls(stack, token, instance)
    controls = _with_the_token(base, token, ops, instance)  # last: it purges the instance
    row.figure("requests", f"{len(results)} ({len(ops)} operations x {len(variants)} ways without a valid token)")
    row.figure("by status", _by_status(a for *_, a in results))
    row.figure("unauthorised successes", len(successes))
    row.figure("with the token", _by_status(controls))
    row.figure("constant-time compare", compared)
    assert len(results) == len(ops) * len(variants) and len(ops) == 13 * len(VERSIONS) + 2, len(results)
    assert not successes, f"answers other than 401 'invalid api token' without a valid token: {successes[:10]}"
    assert health and set(health) == {204}, f"health answered {Counter(health)}"
    assert after == before, f"requests without a valid token wrote rows: {before} -> {after}"
    assert all(a.status != 401 and a.status < 500 for a in controls), _by_status(controls)
    _assert_healthy(stack, base)


def _with_the_token(base: str, token: str, ops: Sequence[tuple[str, str, bool]], instance: str) -> list[Answer]:
    """The same operations with the token: none answers 401 (the paths reach real routes)."""
    auth = [(b"dapr-api-token", token.encode())]
    return [_b5_request(base, method, _fill(path, instance), auth, "") for method, path, _ in ops]


def _compare_digest_calls(stack: ChaosStack, token: str, instance: str) -> str:
    """In process, over the stack's database: the token check goes through hmac.compare_digest
    (constant time) for a wrong token and for the right one."""
    import hmac
    import warnings

    import pytest

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
        from starlette.testclient import TestClient

    from ledgerflow.api import ApiSettings, create_app, middleware
    from ledgerflow.config import Settings
    from ledgerflow.management import WorkflowManager

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    manager = WorkflowManager(Settings(database_url=stack.db_url, broker_url=stack.broker_url, app_id=stack.app_id))
    try:
        with pytest.MonkeyPatch.context() as mp, \
                TestClient(create_app(manager, ApiSettings(token=token)), raise_server_exceptions=False) as api:
            mp.setattr(middleware.hmac, "compare_digest", spy)
            denied = api.get(f"/v1.0/workflows/dapr/{instance}", headers={"dapr-api-token": wrong})
            allowed = api.get(f"/v1.0/workflows/dapr/{instance}", headers={"dapr-api-token": token})
    finally:
        manager.close()
    assert (denied.status_code, allowed.status_code) == (401, 200), (denied.status_code, allowed.status_code)
    assert calls == [(wrong.encode(), token.encode()), (token.encode(), token.encode())], calls
    return "hmac.compare_digest for the wrong and the right token (spied in process)"


if os.environ.get("SCHEMATHESIS_HOOKS") == __name__ and ALLOWED_500S_ENV in os.environ:
    _register_schemathesis_check()  # imported by `schemathesis run` in B4
