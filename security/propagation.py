"""Signing and verifying propagated history chunks (the wire format is described in
orchestrator/engine/propagation.py). Each chunk is attested by the app that authored it;
a receiver with signing on accepts a chunk only when its attestation verifies against its
own CA bundle and the signing certificate's app ID is the chunk's `app_id`."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

from security import attest, crypto
from security.crypto import VerificationError


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def chunk_digest(chunk: dict[str, Any]) -> bytes:
    h = hashlib.sha256()
    for e in chunk.get("events", []):
        h.update(_lp(b"".join(_lp(str(part).encode()) for part in e)))
    return h.digest()


def _fields(chunk: dict[str, Any]) -> tuple[str | bytes, ...]:
    return (str(chunk.get("app_id")), str(chunk.get("instance_id")), str(chunk.get("name")),
            str(chunk.get("generation")), chunk_digest(chunk))


def sign_chunk(identity: crypto.Identity, chunk: dict[str, Any]) -> dict[str, Any]:
    return {**chunk, "attestation": attest.attest(identity, attest.CHUNK, *_fields(chunk))}


def verify_text(trust: crypto.TrustBundle, text: str) -> None:
    """Raises VerificationError unless every chunk is attested by the app it names."""
    try:
        data = json.loads(text)
        chunks = data["chunks"]
        if not isinstance(chunks, list):
            raise TypeError("chunks must be a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError("propagated history", f"malformed: {exc}") from exc
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, dict):
            raise VerificationError("propagated history", f"chunk {i} is malformed")
        try:
            signer = attest.verify(trust, chunk.get("attestation"), attest.CHUNK, *_fields(chunk))
        except VerificationError as exc:
            raise VerificationError(exc.check, f"propagated chunk {i} ({chunk.get('name')}): {exc.detail}") from exc
        if signer != chunk.get("app_id"):
            raise VerificationError("identity", f"propagated chunk {i} names app '{chunk.get('app_id')}' "
                                                f"but was signed by '{signer}'")
