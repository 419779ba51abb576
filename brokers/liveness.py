"""Liveness of the calls a worker process holds, and the broker's epoch (Redis only).

**Held calls.** A Celery worker's main process knows every message it has reserved
(`celery.worker.state.reserved_requests`: received, waiting for a pool process, or running,
until acknowledged). A thread of that process renews, as each message arrives and every
`RENEW_SECONDS`, one member per held call in a sorted set per owner app,
`ledgerflow:live:<app>`, scored with Redis's own clock; a call it no longer holds is removed
at the next renewal. A pool process also marks the call itself when it starts and clears
it when done (`HeldCalls.begin`/`end`), so a worker killed a moment after receiving a call
still leaves a mark. A call's holder key names the first live worker holding it and the pool
process running it: a copy received meanwhile by another worker or another pool process (a
re-send, a message Redis restored after the visibility timeout) is not run. Activity workers hold
activity calls, orchestrators hold the results they are committing (`deliver`). A member
whose score is older than `STALE_SECONDS` belongs to a process that stopped (killed, frozen,
cut off): the owner's reconcile tick claims it (`BrokerWatch.claim_stale`) and sends the call
again. A healthy call is renewed for as long as it runs, however long that is; Celery's own
heartbeats say which worker lives, not which calls it holds.

**Epoch.** `ledgerflow:epoch:<app>` is set once and never expires. When a tick finds it
missing, Redis lost its data (a FLUSHALL, a restart without persistence, a failover to an
empty replica): the tick sets it again and schedules a recovery `RECOVERY_GRACE_SECONDS`
later (time for the workers to renew what they still hold), which re-sends every call
published before the loss was found that no process holds (`BrokerWatch.check_epoch`). An
orchestrator checks the epoch when it starts, too: a new deployment sets it before it
publishes anything (so a backlog is never taken for a loss), and a loss that happened while
no orchestrator ran is found there.

Everything here fails open: when Redis does not answer, nothing is renewed or claimed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from celery import Celery, signals

from brokers.urls import redis_url


log = logging.getLogger("ledgerflow.liveness")

#: How often a worker process renews the calls it holds.
RENEW_SECONDS = 1.0
#: At most one renewal per this many seconds when messages arrive fast (each wakes it).
MIN_RENEW_GAP = 0.05
#: A held call not renewed for this long belongs to a process that stopped.
STALE_SECONDS = 5.0
#: After the epoch vanished, how long to let workers renew what they hold before re-sending.
RECOVERY_GRACE_SECONDS = 3.0

#: kombu's Redis transport keeps each received, unacknowledged message here (by delivery tag),
#: indexed by the time it was received.
UNACKED, UNACKED_INDEX = "unacked", "unacked_index"

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "
# KEYS[2i-1]: the set of member i, KEYS[2i]: its call's holder key. ARGV[1]: how many of the
# members to add (the rest are removed), ARGV[2]: this holder, ARGV[3]: stale seconds,
# ARGV[3+i]: member i. A call's holder key names the first live process that holds it.
_RENEW = _NOW + """
local n, holder, ttl = tonumber(ARGV[1]), ARGV[2], math.ceil(tonumber(ARGV[3]))
for i = 1, #KEYS / 2 do
  local set, call, member = KEYS[2 * i - 1], KEYS[2 * i], ARGV[3 + i]
  local current = redis.call('GET', call)
  local mine = current and (current == holder or string.sub(current, 1, #holder + 1) == holder .. '/')
  if i <= n then
    redis.call('ZADD', set, now, member)
    if not current then redis.call('SET', call, holder, 'EX', ttl) elseif mine then redis.call('EXPIRE', call, ttl) end
  else
    redis.call('ZREM', set, member)
    if current == holder then redis.call('DEL', call) end
  end
end
return n
"""
# KEYS: the set, the call's holder key; ARGV: this worker's holder, this pool process
# (holder/pid), stale seconds, the member, '1' to take the call over. -> the holder when
# another process (of another worker, or another pool process of this one) holds the call,
# else 1 (held by this pool process now).
_BEGIN = _NOW + """
local current = redis.call('GET', KEYS[2])
if current and current ~= ARGV[1] and current ~= ARGV[2] and ARGV[5] ~= '1' then return current end
redis.call('SET', KEYS[2], ARGV[2], 'EX', math.ceil(tonumber(ARGV[3])))
redis.call('ZADD', KEYS[1], now, ARGV[4])
return 1
"""
# KEYS: the set, the call's holder key; ARGV: this pool process (holder/pid), the member.
_END = """
redis.call('ZREM', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""
# KEYS[1]: the set; ARGV: stale seconds, limit. Removes and returns the stale members.
_CLAIM = _NOW + """
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])), 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(stale) do redis.call('ZREM', KEYS[1], member) end
return stale
"""
# KEYS[1]: a lock; ARGV[1]: its holder's token. Released only by its holder.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# KEYS[1]: the set; ARGV[1]: stale seconds. The members renewed lately.
_FRESH = _NOW + "return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')"
# KEYS: epoch, recovery; ARGV: a new epoch token, grace seconds, the caller's unix time, whether
# to take a due recovery. -> {lost, due, the caller's unix time when the loss was found}
_EPOCH = _NOW + """
local lost = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], string.format('%.6f', now + tonumber(ARGV[2])) .. ' ' .. ARGV[3])
  lost = 1
end
local recovery = redis.call('GET', KEYS[2])
if ARGV[4] == '1' and recovery then
  local due, found = string.match(recovery, '(%S+) (%S+)')
  if tonumber(due) <= now then
    redis.call('DEL', KEYS[2])
    return {lost, 1, found}
  end
end
return {lost, 0, ''}
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _task_of(message: Any) -> tuple[str, tuple[Any, ...]] | None:
    """(task name, args) of a Celery message as kombu stores it in Redis; None if not one."""
    try:
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        return str(message["headers"]["task"]), tuple(json.loads(body)[0])
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        return None


def live_key(app_id: str) -> str:
    return f"ledgerflow:live:{app_id}"


@dataclass(frozen=True)
class Held:
    """One call held by a process: the owner app (whose tick watches it), the owning
    instance, and the call's outbox key (`task:<generation>:<task id>`)."""

    app_id: str
    instance_id: str
    key: str
    holder: str = ""

    def member(self) -> str:
        return json.dumps([self.instance_id, self.key, self.holder], separators=(",", ":"))

    def holder_key(self) -> str:
        """Names the process holding the call (the first one, while it lives)."""
        return f"ledgerflow:holder:{self.app_id}:{self.instance_id}:{self.key}"

    @classmethod
    def parse(cls, app_id: str, member: bytes | str) -> Held | None:
        try:
            instance_id, key, holder = json.loads(member)
            return cls(app_id, str(instance_id), str(key), str(holder))
        except (ValueError, TypeError):
            return None


#: What a reserved request holds: (task name, args) -> the call, or None (not a call).
HeldOf = Callable[[str, tuple[Any, ...]], "Held | None"]


def is_redis(broker_url: str) -> bool:
    return redis_url(broker_url) is not None


def _client(broker_url: str) -> Any:
    import redis

    return redis.Redis.from_url(redis_url(broker_url) or broker_url, socket_timeout=2.0, socket_connect_timeout=2.0)


class HeldCalls:
    """The renewal thread of one worker process, for one Celery app. Start it with `track`."""

    def __init__(self, app: Celery, broker_url: str) -> None:
        self.app = app
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._redis = _client(broker_url)
        self._renew = self._redis.register_script(_RENEW)
        self._begin = self._redis.register_script(_BEGIN)
        self._end = self._redis.register_script(_END)
        self._kinds: list[HeldOf] = []
        self._renewed: set[Held] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, held_of: HeldOf) -> None:
        self._kinds.append(held_of)

    def held(self) -> set[Held]:
        """Every call this process holds now."""
        from celery.worker import state

        for _ in range(5):  # the consumer thread changes the set while we copy it
            try:
                requests = list(state.reserved_requests)
                break
            except RuntimeError:
                continue
        else:
            return set(self._renewed)
        out: set[Held] = set()
        for req in requests:
            if getattr(req, "app", None) is not self.app:
                continue
            for held_of in self._kinds:
                try:
                    call = held_of(req.name, tuple(req.args or ()))
                except (KeyError, IndexError, TypeError, AttributeError):
                    call = None
                if call is not None:
                    out.add(Held(call.app_id, call.instance_id, call.key, self.holder))
        return out

    def renew(self) -> None:
        """One renewal: add (with Redis's clock) what is held, remove what no longer is."""
        with self._lock:
            now = self.held()
            calls = [*now, *(self._renewed - now)]
            if calls:
                self._renew(keys=[k for c in calls for k in (live_key(c.app_id), c.holder_key())],
                            args=[len(now), self.holder, STALE_SECONDS, *[c.member() for c in calls]])
            self._renewed = now

    def begin(self, call: Held) -> bool:
        """Before a pool process runs `call`: hold it now (the renewal may come a moment
        later, too late if the worker dies at once). False when another live process holds
        it: this is a copy (a re-send, a message Redis restored) that must not run. True when
        Redis does not answer."""
        call = Held(call.app_id, call.instance_id, call.key, self.holder)
        keys = [live_key(call.app_id), call.holder_key()]
        args = [self.holder, self._process(), STALE_SECONDS, call.member()]
        try:
            holder = self._begin(keys=keys, args=[*args, 0])
            if holder == 1:
                return True
            sibling = holder.decode().removeprefix(f"{self.holder}/")
            if sibling.isdigit() and not _alive(int(sibling)):  # a pool process of this worker died in it
                return bool(self._begin(keys=keys, args=[*args, 1]))
            return False
        except Exception as exc:
            log.debug("liveness check failed: %r", exc)
            return True

    def begin_many(self, calls: Sequence[Held]) -> list[Held]:
        """`begin` for many calls in one pipelined round trip (an orchestrator's batch of
        results); returns the calls this process now holds. A call another process holds is
        asked again alone (its holder may be a dead sibling)."""
        if not calls:
            return []
        try:
            pipe = self._redis.pipeline(transaction=False)
            for call in calls:
                mine = Held(call.app_id, call.instance_id, call.key, self.holder)
                self._begin(keys=[live_key(mine.app_id), mine.holder_key()],
                            args=[self.holder, self._process(), STALE_SECONDS, mine.member(), 0], client=pipe)
            answers = pipe.execute()
        except Exception as exc:
            log.debug("liveness check failed: %r", exc)
            return list(calls)
        return [call for call, answer in zip(calls, answers, strict=True) if answer == 1 or self.begin(call)]

    def end_many(self, calls: Sequence[Held]) -> None:
        """`end` for many calls in one pipelined round trip."""
        if not calls:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for call in calls:
                mine = Held(call.app_id, call.instance_id, call.key, self.holder)
                self._end(keys=[live_key(mine.app_id), mine.holder_key()], args=[self._process(), mine.member()],
                          client=pipe)
            pipe.execute()
        except Exception as exc:  # the marks go stale; the tick finds the results consumed or re-sends
            log.debug("liveness release failed: %r", exc)

    def end(self, call: Held) -> None:
        """After a pool process ran `call` (its result is published)."""
        call = Held(call.app_id, call.instance_id, call.key, self.holder)
        try:
            self._end(keys=[live_key(call.app_id), call.holder_key()], args=[self._process(), call.member()])
        except Exception as exc:  # the mark goes stale; the tick finds the result consumed or re-sends
            log.debug("liveness release failed: %r", exc)

    def _process(self) -> str:
        """This pool process (a prefork child inherits the worker's holder)."""
        return f"{self.holder}/{os.getpid()}"

    def notify(self) -> None:
        """A message was received: renew at once (started on the first)."""
        self.start()
        self._wake.set()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ledgerflow-liveness", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(RENEW_SECONDS)
            self._wake.clear()
            try:
                self.renew()
            except Exception as exc:  # Redis away: the tick cannot run either; try again
                log.debug("liveness renewal failed: %r", exc)
            self._stop.wait(MIN_RENEW_GAP)  # many messages received at once: one renewal for them


@contextmanager
def holding(calls: HeldCalls | None, call: Held | None) -> Iterator[bool]:
    """Hold `call` while the block runs (`HeldCalls.begin`/`end`); yields False, holding
    nothing, when another live process holds it (the block must then leave it alone)."""
    if calls is None or call is None:
        yield True
        return
    if not calls.begin(call):
        yield False
        return
    try:
        yield True
    finally:
        calls.end(call)


@contextmanager
def holding_all(calls: HeldCalls | None, held: Sequence[Held | None]) -> Iterator[list[Held]]:
    """`holding` for a batch: the calls are held (in one round trip each way) while the block
    runs; yields those this process holds (all of them when there is no Redis)."""
    wanted = [call for call in held if call is not None]
    if calls is None:
        yield wanted
        return
    mine = calls.begin_many(wanted)
    try:
        yield mine
    finally:
        calls.end_many(mine)


def track(app: Celery, broker_url: str, held_of: HeldOf) -> HeldCalls | None:
    """Renew the calls of kind `held_of` that `app`'s worker holds, from its first received
    message until the worker shuts down. None when the broker is not Redis."""
    if not is_redis(broker_url):
        return None
    calls: HeldCalls | None = getattr(app, "_ledgerflow_held", None)
    if calls is None:
        calls = HeldCalls(app, broker_url)
        app._ledgerflow_held = calls  # type: ignore[attr-defined]
        signals.task_received.connect(_starter(calls), weak=False)
        signals.worker_shutdown.connect(_stopper(calls), weak=False)
    calls.add(held_of)
    return calls


def _starter(calls: HeldCalls) -> Callable[..., None]:
    def on_received(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is calls.app:
            calls.notify()

    return on_received


def _stopper(calls: HeldCalls) -> Callable[..., None]:
    def on_shutdown(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is calls.app:
            calls.stop()

    return on_shutdown


class BrokerWatch:
    """What the reconcile tick asks Redis: stale held calls, fresh ones, and the epoch."""

    def __init__(self, broker_url: str, *, stale_seconds: float = STALE_SECONDS,
                 grace_seconds: float = RECOVERY_GRACE_SECONDS) -> None:
        self.stale_seconds = stale_seconds
        self.grace_seconds = grace_seconds
        self._redis = _client(broker_url)
        self._claim = self._redis.register_script(_CLAIM)
        self._fresh = self._redis.register_script(_FRESH)
        self._epoch = self._redis.register_script(_EPOCH)
        self._release = self._redis.register_script(_RELEASE)

    def claim_stale(self, app_id: str, limit: int = 1000) -> list[Held]:
        """Remove and return the calls of `app_id` whose holder stopped renewing them (each
        is returned to one caller only, however many ticks run at once)."""
        members = self._claim(keys=[live_key(app_id)], args=[self.stale_seconds, limit])
        return [h for m in members if (h := Held.parse(app_id, m)) is not None]

    def unacked(self, limit: int = 1000, older_than: float | None = None) -> list[tuple[str, str, tuple[Any, ...]]]:
        """(delivery tag, task name, args) of the messages some consumer received (more than
        `older_than` seconds ago, default `stale_seconds`) and has not acknowledged (kombu's
        `unacked` hash): running, or received by a process that died before it could mark
        what it held."""
        ago = self.stale_seconds if older_than is None else older_than
        tags = self._redis.zrangebyscore(UNACKED_INDEX, "-inf", time.time() - ago, start=0, num=limit)
        raws = self._redis.hmget(UNACKED, tags) if tags else []
        return [(tag.decode(), *task) for tag, raw in zip(tags, raws)
                if raw is not None and (task := _task_of(json.loads(raw)[0])) is not None]

    def queued(self, queue: str) -> list[tuple[str, tuple[Any, ...]]]:
        """(task name, args) of every message waiting in `queue` (reads the whole list)."""
        return [task for raw in self._redis.lrange(queue, 0, -1) if (task := _task_of(json.loads(raw))) is not None]

    @contextmanager
    def exclusive(self, name: str, seconds: float) -> Iterator[bool]:
        """Yields True to one holder of `name` at a time (for at most `seconds`, should the
        holder die), False to the others meanwhile, and False when Redis does not answer."""
        key, token = f"ledgerflow:lock:{name}", uuid.uuid4().hex
        try:
            mine = bool(self._redis.set(key, token, nx=True, px=int(seconds * 1000)))
        except Exception as exc:
            log.debug("liveness lock failed: %r", exc)
            mine = False
        try:
            yield mine
        finally:
            if mine:
                try:
                    self._release(keys=[key], args=[token])
                except Exception as exc:  # it expires by itself
                    log.debug("liveness lock release failed: %r", exc)

    def queue_length(self, queue: str) -> int:
        return int(self._redis.llen(queue))

    def audit_due(self, app_id: str, every: float) -> bool:
        """True for one caller per `every` seconds per app, however many ticks run at once."""
        return bool(self._redis.set(f"ledgerflow:audit:{app_id}", "1", nx=True, px=int(every * 1000)))

    def swap_suspects(self, app_id: str, suspects: set[tuple[str, str]], ttl: float) -> set[tuple[str, str]]:
        """Store this audit's suspects (instance id, call key) for the next audit; returns the
        previous audit's (empty when it is older than `ttl` seconds)."""
        key = f"ledgerflow:suspects:{app_id}"
        with self._redis.pipeline() as pipe:
            pipe.get(key)
            pipe.set(key, json.dumps(sorted(suspects)), px=int(ttl * 1000))
            before, _ = pipe.execute()
        return {(iid, call) for iid, call in json.loads(before)} if before else set()

    def take_unacked(self, tag: str) -> bool:
        """Take over an unacknowledged message whose consumer died: kombu will not restore it
        (the caller sends the call again). True for one caller only."""
        if not self._redis.zrem(UNACKED_INDEX, tag):
            return False
        self._redis.hdel(UNACKED, tag)
        return True

    def held(self, app_id: str) -> set[tuple[str, str]]:
        """(instance id, call key) of every call of `app_id` some live process holds."""
        members = self._fresh(keys=[live_key(app_id)], args=[self.stale_seconds])
        return {(h.instance_id, h.key) for m in members if (h := Held.parse(app_id, m)) is not None}

    def check_epoch(self, app_id: str, *, take_due: bool = True) -> tuple[bool, float | None]:
        """(the epoch had vanished and is set again now; with `take_due`, the unix time the
        loss was found when the recovery it scheduled is due now, else None). A due recovery
        is returned to one caller only. Calls published after that time are in the new
        broker: the recovery leaves them alone."""
        lost, due, found = self._epoch(keys=[f"ledgerflow:epoch:{app_id}", f"ledgerflow:recover:{app_id}"],
                                       args=[uuid.uuid4().hex, self.grace_seconds, f"{time.time():.6f}",
                                             int(take_due)])
        return bool(lost), float(found) if due else None
