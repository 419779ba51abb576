"""Attestations: a small signed statement "app X says these bytes", carried in messages.

Used for results of activities and child workflows (signed by the callee, verified by the
caller), for activity requests and child starts (signed by the caller, verified by the
callee: the caller's identity for access policies), and for propagated history chunks
(signed by their authoring app, verified by the receiver). The signer's certificate travels
with the statement; the verifier trusts it only if it chains to its own CA bundle, and takes
the app ID from its SPIFFE SAN, never from a field of the message.
"""

from __future__ import annotations

import base64
import json
import struct
from datetime import datetime
from typing import Any

from security import crypto
from security.chain import FUTURE_SKEW
from security.crypto import VerificationError

COMPLETION = b"ledgerflow-completion-v1"
REQUEST = b"ledgerflow-activity-request-v1"
CHILD_START = b"ledgerflow-child-start-v1"
CHUNK = b"ledgerflow-propagated-chunk-v1"


def _digest(domain: bytes, at: str, fields: tuple[str | bytes, ...]) -> bytes:
    parts = [domain, at.encode()] + [f if isinstance(f, bytes) else f.encode() for f in fields]
    return crypto.sha256(b"".join(struct.pack(">I", len(p)) + p for p in parts))


def attest(identity: crypto.Identity, domain: bytes, *fields: str | bytes, at: datetime | None = None) -> dict[str, str]:
    when = crypto.utc(at or crypto.now_utc()).isoformat()
    signature = identity.sign(_digest(domain, when, fields))
    return {"cert": base64.b64encode(identity.der).decode(), "sig": base64.b64encode(signature).decode(), "at": when}


def verify(trust: crypto.TrustBundle, attestation: Any, domain: bytes, *fields: str | bytes) -> str:
    """The app ID that signed `fields`; VerificationError when the attestation is missing or bad."""
    if not isinstance(attestation, dict):
        raise VerificationError("attestation", "missing")
    try:
        der = base64.b64decode(attestation["cert"], validate=True)
        signature = base64.b64decode(attestation["sig"], validate=True)
        at_text = str(attestation["at"])
        at = crypto.utc(datetime.fromisoformat(at_text))
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError("attestation", f"malformed: {exc}") from exc
    if at > crypto.now_utc() + FUTURE_SKEW:
        raise VerificationError("certificate validity", "the attestation is dated in the future")
    cert = crypto.load_cert_der(der)
    app_id = trust.verify(cert, at, fp=crypto.fingerprint(der))
    crypto.verify_signature(cert.public_key(), signature, _digest(domain, at_text, fields))
    return app_id


def embed(payload: str, attestation: dict[str, str]) -> str:
    """A codec payload (a JSON object) with the attestation added as an extra key; decoding
    ignores keys that are not fields of the event."""
    data = json.loads(payload)
    data["attestation"] = attestation
    return json.dumps(data, separators=(",", ":"))


def embedded(payload: str) -> Any:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data.get("attestation") if isinstance(data, dict) else None
