"""The signature chain over a workflow's stored history.

Each step that appends events signs that batch:

    events digest = SHA-256( for each event: u32 len || encoding of the event )
    event encoding = for each stored field (sequence, type, payload, timestamp):
                     u32 len || the field's bytes, exactly as stored
    signed input  = SHA-256( "ledgerflow-history-v1" || instance ID || run || generation ||
                             first sequence || event count || signed-at || certificate
                             fingerprint || previous signature digest || events digest )
                    (every field length-prefixed)
    signature digest = SHA-256(signature)

The previous signature digest of a generation's first batch is 32 zero bytes. Binding the
instance ID, the run (its creation time) and the generation makes a history copied to another
instance, run or generation fail; the first sequence and count make batches contiguous;
signed-at, covered by the signature, is the time the certificate must have been valid at.
The last signature digest and the number of signed events are also kept on the instance row,
so a tail cut (the last batches and their signatures deleted consistently) is detected.

`verify` recomputes everything from the raw stored rows and names the first check that fails.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from security import crypto
from security.crypto import VerificationError

DOMAIN = b"ledgerflow-history-v1"
ZERO = bytes(32)
TAMPERED = "DAPR_WORKFLOW_HISTORY_TAMPERED"
#: A signature may be dated this far past the verifier's clock (clock skew between hosts).
FUTURE_SKEW = timedelta(minutes=5)

# Names of the checks (they appear in error messages and tests).
CONTIGUITY, LINKAGE, DIGEST, SIGNATURE, CERTIFICATE = (
    "contiguity", "chain linkage", "digest", "signature", "certificate")
VALIDITY, CHAIN, IDENTITY, COVERAGE, TAIL = (
    "certificate validity", "certificate chain", "identity", "coverage", "tail")


class StoredEvent(Protocol):
    sequence: int
    type: str
    payload: str
    timestamp: datetime


class StoredSignature(Protocol):
    start_sequence: int
    event_count: int
    previous_digest: bytes
    events_digest: bytes
    cert_id: int
    signed_at: datetime
    signature: bytes


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def timestamp_text(value: datetime) -> str:
    return crypto.utc(value).isoformat()


def event_bytes(sequence: int, type_name: str, payload: str, timestamp: datetime) -> bytes:
    return b"".join(_lp(p) for p in (str(sequence).encode(), type_name.encode(), payload.encode(),
                                     timestamp_text(timestamp).encode()))


def events_digest(events: Sequence[StoredEvent]) -> bytes:
    h = hashlib.sha256()
    for e in events:
        h.update(_lp(event_bytes(e.sequence, e.type, e.payload, e.timestamp)))
    return h.digest()


def signed_input(instance_id: str, run: str, generation: int, start: int, count: int, signed_at: datetime,
                 cert_fp: bytes, previous: bytes, digest: bytes) -> bytes:
    parts = (DOMAIN, instance_id.encode(), run.encode(), str(generation).encode(), str(start).encode(),
             str(count).encode(), timestamp_text(signed_at).encode(), cert_fp, previous, digest)
    return crypto.sha256(b"".join(_lp(p) for p in parts))


def signature_digest(signature: bytes) -> bytes:
    return crypto.sha256(signature)


@dataclass(frozen=True)
class BatchSignature:
    """What a step stores for the batch it appends."""

    start_sequence: int
    event_count: int
    previous_digest: bytes
    events_digest: bytes
    signed_at: datetime
    signature: bytes

    @property
    def digest(self) -> bytes:
        return signature_digest(self.signature)


def sign_batch(identity: crypto.Identity, instance_id: str, run: str, generation: int,
               events: Sequence[StoredEvent], previous: bytes | None, signed_at: datetime) -> BatchSignature:
    previous = previous or ZERO
    digest = events_digest(events)
    start = events[0].sequence
    data = signed_input(instance_id, run, generation, start, len(events), signed_at, identity.fp, previous, digest)
    return BatchSignature(start, len(events), previous, digest, signed_at, identity.sign(data))


def verify_head_batch(
    *,
    instance_id: str,
    run: str,
    generation: int,
    owner_app_id: str,
    events_from_start: Sequence[StoredEvent],
    last: StoredSignature,
    certificates: Mapping[int, bytes],
    trust: crypto.TrustBundle,
    expected_head: bytes | None,
    expected_count: int,
    now: datetime | None = None,
) -> None:
    """The cheap check of a warm step: the last batch (the chain head) and nothing after it.

    `events_from_start` are the stored events from the last batch's first sequence on.
    Catches a cut or extended tail, a dropped or altered last signature, and any change to
    the last batch; older batches are left to the full verification of cold loads and reads.
    """
    now = now or crypto.now_utc()
    where = f"the last batch (events {last.start_sequence}..{last.start_sequence + last.event_count - 1})"
    if signature_digest(bytes(last.signature)) != expected_head or \
            last.start_sequence + last.event_count != expected_count:
        raise VerificationError(TAIL, "the last signature is not the chain head the instance recorded")
    ordered = sorted(events_from_start, key=lambda e: e.sequence)
    if [e.sequence for e in ordered] != list(range(last.start_sequence, last.start_sequence + len(ordered))):
        raise VerificationError(CONTIGUITY, f"{where}: event sequences are not contiguous")
    if len(ordered) != last.event_count:
        raise VerificationError(COVERAGE if len(ordered) > last.event_count else TAIL,
                                f"{where}: {len(ordered)} stored event(s) where {last.event_count} were signed")
    digest = events_digest(ordered)
    if digest != bytes(last.events_digest):
        raise VerificationError(DIGEST, f"{where}: the stored events do not match the signed digest")
    der = certificates.get(last.cert_id)
    if der is None:
        raise VerificationError(CERTIFICATE, f"{where} references certificate {last.cert_id}, which is missing")
    cert, fp = crypto.load_cert_der(bytes(der)), crypto.fingerprint(bytes(der))
    signed_at = crypto.utc(last.signed_at)
    if signed_at > now + FUTURE_SKEW:
        raise VerificationError(VALIDITY, f"{where} is dated in the future")
    app_id = trust.verify(cert, signed_at, fp=fp)
    if app_id != owner_app_id:
        raise VerificationError(IDENTITY, f"{where} was signed by app '{app_id}', not by the owner '{owner_app_id}'")
    data = signed_input(instance_id, run, generation, last.start_sequence, last.event_count, signed_at, fp,
                        bytes(last.previous_digest), digest)
    crypto.verify_signature(cert.public_key(), bytes(last.signature), data)


@dataclass(frozen=True)
class Verified:
    head: bytes | None
    signed_events: int
    batches: int


def verify(
    *,
    instance_id: str,
    run: str,
    generation: int,
    owner_app_id: str,
    events: Sequence[StoredEvent],
    signatures: Sequence[StoredSignature],
    certificates: Mapping[int, bytes],
    trust: crypto.TrustBundle,
    expected_head: bytes | None,
    expected_count: int,
    allow_tamper_marker: bool = False,
    now: datetime | None = None,
) -> Verified:
    """Verify a generation's stored history; raises VerificationError naming the failed check.

    `events` and `signatures` are the rows as read (any order); `certificates` maps the
    certificate ids the signatures reference to DER bytes. `expected_head`/`expected_count`
    come from the instance row. With `allow_tamper_marker`, one unsigned trailing event (the
    FAILED marker a tampered run gets) is accepted beyond the signed events.
    """
    now = now or crypto.now_utc()
    ordered = sorted(events, key=lambda e: e.sequence)
    for i, e in enumerate(ordered):
        if e.sequence != i:
            raise VerificationError(CONTIGUITY, f"event sequence {e.sequence} found where {i} was expected")
    sigs = sorted(signatures, key=lambda s: s.start_sequence)
    covered = 0
    previous = ZERO
    last_signed_at: datetime | None = None
    parsed: dict[int, tuple[object, bytes]] = {}
    for n, s in enumerate(sigs):
        where = f"batch {n} (events {s.start_sequence}..{s.start_sequence + s.event_count - 1})"
        if s.start_sequence != covered or s.event_count < 1:
            raise VerificationError(CONTIGUITY, f"{where} does not start where batch {n - 1} ended ({covered})")
        if bytes(s.previous_digest) != previous:
            raise VerificationError(LINKAGE, f"{where} does not link to the signature before it")
        batch = ordered[s.start_sequence:s.start_sequence + s.event_count]
        if len(batch) != s.event_count:
            raise VerificationError(COVERAGE, f"{where} covers events that are missing from the history")
        digest = events_digest(batch)
        if digest != bytes(s.events_digest):
            raise VerificationError(DIGEST, f"{where}: the stored events do not match the signed digest")
        if s.cert_id not in parsed:
            der = certificates.get(s.cert_id)
            if der is None:
                raise VerificationError(CERTIFICATE, f"{where} references certificate {s.cert_id}, which is missing")
            parsed[s.cert_id] = (crypto.load_cert_der(bytes(der)), crypto.fingerprint(bytes(der)))
        cert, fp = parsed[s.cert_id]
        signed_at = crypto.utc(s.signed_at)
        if signed_at > now + FUTURE_SKEW:
            raise VerificationError(VALIDITY, f"{where} is dated in the future ({signed_at.isoformat()})")
        if last_signed_at is not None and signed_at < last_signed_at:
            raise VerificationError(VALIDITY, f"{where} is dated before the batch it follows")
        app_id = trust.verify(cert, signed_at, fp=fp)  # type: ignore[arg-type]
        if app_id != owner_app_id:
            raise VerificationError(IDENTITY, f"{where} was signed by app '{app_id}', not by the owner '{owner_app_id}'")
        data = signed_input(instance_id, run, generation, s.start_sequence, s.event_count, signed_at, fp, previous,
                            digest)
        crypto.verify_signature(cert.public_key(), bytes(s.signature), data)  # type: ignore[attr-defined]
        previous = signature_digest(bytes(s.signature))
        covered += s.event_count
        last_signed_at = signed_at
    head = previous if sigs else None
    if (expected_head or None) != head or expected_count != covered:
        raise VerificationError(
            TAIL, f"the history ends at {covered} signed event(s) but the instance recorded {expected_count}: "
                  "events or signatures were removed or added at the end")
    extra = ordered[covered:]
    if extra:
        marker_ok = (allow_tamper_marker and len(extra) == 1 and extra[0].type == "ExecutionCompleted"
                     and TAMPERED in extra[0].payload)
        if not marker_ok:
            raise VerificationError(COVERAGE, f"{len(extra)} event(s) from sequence {covered} on are not signed")
    return Verified(head, covered, len(sigs))
