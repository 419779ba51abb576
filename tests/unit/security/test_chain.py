"""The signature chain on in-memory rows: every single-field mutation of every stored row is
detected (Hypothesis), and each check has a name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from security import chain, crypto
from security.certs import init_certs

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Ev:
    sequence: int
    type: str
    payload: str
    timestamp: datetime


@dataclass(frozen=True)
class Sig:
    start_sequence: int
    event_count: int
    previous_digest: bytes
    events_digest: bytes
    cert_id: int
    signed_at: datetime
    signature: bytes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("certs")
    paths = init_certs(d, "orders", key_type="p256")
    return crypto.load_identity(paths.cert, paths.key), crypto.load_bundle(paths.ca_cert)


def build(identity: crypto.Identity, batches: int = 4):
    events, sigs, head = [], [], None
    now = crypto.now_utc()
    for b in range(batches):
        batch = [Ev(len(events) + i, "TaskCompleted", f'{{"task_id":{b},"result":"{b * 10 + i}"}}',
                    T0 + timedelta(seconds=len(events) + i)) for i in range(3)]
        signed = chain.sign_batch(identity, "wf-1", "run1", 0, batch, head, now)
        events += batch
        sigs.append(Sig(signed.start_sequence, signed.event_count, signed.previous_digest, signed.events_digest, 1,
                        signed.signed_at, signed.signature))
        head = signed.digest
    return events, sigs, head


def check(world, events, sigs, head, count, certs=None, **kw):
    identity, trust = world
    return chain.verify(instance_id=kw.get("instance_id", "wf-1"), run=kw.get("run", "run1"),
                        generation=kw.get("generation", 0), owner_app_id=kw.get("owner", "orders"), events=events,
                        signatures=sigs, certificates=certs or {1: identity.der}, trust=trust, expected_head=head,
                        expected_count=count)


def test_a_clean_chain_verifies(world) -> None:
    events, sigs, head = build(world[0])
    assert check(world, events, sigs, head, 12).batches == 4


@pytest.mark.parametrize("binding, value", [("instance_id", "wf-2"), ("run", "run2"), ("generation", 1),
                                            ("owner", "billing")])
def test_copies_to_another_instance_run_generation_or_owner_fail(world, binding: str, value) -> None:
    events, sigs, head = build(world[0])
    with pytest.raises(crypto.VerificationError) as err:
        check(world, events, sigs, head, 12, **{binding: value})
    assert err.value.check in ("signature", "identity")


_EVENT_FIELDS = ("sequence", "type", "payload", "timestamp")
_SIG_FIELDS = ("start_sequence", "event_count", "previous_digest", "events_digest", "cert_id", "signed_at",
               "signature")


def _mutate(value, k: int):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + (k % 5) + 1
    if isinstance(value, datetime):
        return value + timedelta(microseconds=(k % 1000) + 1)
    if isinstance(value, bytes):
        i = k % len(value)
        return value[:i] + bytes([value[i] ^ ((k % 255) + 1)]) + value[i + 1:]
    i = k % len(value)
    return value[:i] + chr(ord(value[i]) ^ ((k % 31) + 1)) + value[i + 1:]


COUNTS = {"mutations": 0, "detected": 0}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["event", "signature", "head", "count", "cert"]), row=st.integers(0, 11),
       field=st.integers(0, 6), k=st.integers(0, 10_000))
def test_every_single_field_mutation_is_detected(world, kind: str, row: int, field: int, k: int) -> None:
    events, sigs, head = build(world[0])
    count, certs = 12, {1: world[0].der}
    if kind == "event":
        name = _EVENT_FIELDS[field % 4]
        events[row] = dataclasses.replace(events[row], **{name: _mutate(getattr(events[row], name), k)})
    elif kind == "signature":
        s = sigs[row % 4]
        name = _SIG_FIELDS[field]
        sigs[row % 4] = dataclasses.replace(s, **{name: _mutate(getattr(s, name), k)})
    elif kind == "head":
        head = _mutate(head, k)
    elif kind == "count":
        count = _mutate(count, k)
    else:
        certs = {1: _mutate(world[0].der, k)}
    COUNTS["mutations"] += 1
    with pytest.raises((crypto.VerificationError, ValueError)):
        check(world, events, sigs, head, count, certs)
    COUNTS["detected"] += 1


def test_structural_attacks_are_detected_and_named(world) -> None:
    events, sigs, head = build(world[0])
    cases = {
        "deleted event": (events[:4] + events[5:], sigs, head, 12),
        "swapped events": (events[:3] + [dataclasses.replace(events[4], sequence=3),
                                         dataclasses.replace(events[3], sequence=4)] + events[5:], sigs, head, 12),
        "inserted event": (events + [Ev(12, "TaskCompleted", "{}", T0)], sigs, head, 12),
        "dropped signature": (events, sigs[:2] + sigs[3:], head, 12),
        "dropped last signature": (events, sigs[:3], head, 12),
        "tail cut": (events[:9], sigs[:3], head, 12),
        "swapped signatures": (events, [dataclasses.replace(sigs[1], start_sequence=0),
                                        dataclasses.replace(sigs[0], start_sequence=3), *sigs[2:]], head, 12),
    }
    found = {}
    for name, (e, s, h, c) in cases.items():
        with pytest.raises(crypto.VerificationError) as err:
            check(world, e, s, h, c)
        found[name] = err.value.check
    print(f"\nstructural attacks detected: {len(found)}/{len(cases)}: {found}")
    assert found["tail cut"] == "tail" and found["inserted event"] == "coverage"


def test_signature_dated_when_the_certificate_was_not_valid_fails(world, tmp_path: Path) -> None:
    paths = init_certs(tmp_path, "orders", days=1, not_before=crypto.now_utc() - timedelta(days=3))
    expired = crypto.load_identity(paths.cert, paths.key)
    trust = crypto.load_bundle(paths.ca_cert)
    batch = [Ev(0, "ExecutionStarted", "{}", T0)]
    s = chain.sign_batch(expired, "wf-1", "run1", 0, batch, None, crypto.now_utc())
    sig = Sig(s.start_sequence, s.event_count, s.previous_digest, s.events_digest, 1, s.signed_at, s.signature)
    with pytest.raises(crypto.VerificationError) as err:
        chain.verify(instance_id="wf-1", run="run1", generation=0, owner_app_id="orders", events=batch,
                     signatures=[sig], certificates={1: expired.der}, trust=trust, expected_head=s.digest,
                     expected_count=1)
    assert err.value.check == "certificate validity"


def test_report_counts() -> None:
    print(f"\nchain mutations: {COUNTS['detected']}/{COUNTS['mutations']} detected")
    assert COUNTS["detected"] == COUNTS["mutations"]
