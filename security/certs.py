"""A development CA and app certificates on disk (what `ledgerflow certs init` does).

Layout of the directory: `ca.crt` + `ca.key` (the CA; created once, reused for every app so
their histories and attestations verify against one bundle), `<app-id>.crt` + `<app-id>.key`
(the app's identity; issued anew on every run, which is how a certificate is rotated under
the same CA). Keys are written with mode 0600.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from security import crypto


@dataclass(frozen=True)
class CertPaths:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    spiffe_id: str
    created_ca: bool


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def init_certs(directory: Path | str, app_id: str, *, key_type: str = "ed25519", trust_domain: str = "public",
               namespace: str = "default", days: int = 365, new_ca: bool = False,
               not_before: datetime | None = None) -> CertPaths:
    directory = Path(directory)
    ca_cert_path, ca_key_path = directory / "ca.crt", directory / "ca.key"
    created = False
    if new_ca or not (ca_cert_path.exists() and ca_key_path.exists()):
        ca_key = crypto.generate_key(key_type)
        ca_cert = crypto.issue_ca(ca_key)
        _write(ca_key_path, crypto.key_pem(ca_key), private=True)
        _write(ca_cert_path, crypto.cert_pem(ca_cert))
        created = True
    else:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    key = crypto.generate_key(key_type)
    cert = crypto.issue_app_cert(ca_key, ca_cert, key, app_id=app_id, trust_domain=trust_domain,
                                 namespace=namespace, days=days, not_before=not_before)
    cert_path, key_path = directory / f"{app_id}.crt", directory / f"{app_id}.key"
    _write(key_path, crypto.key_pem(key), private=True)
    _write(cert_path, crypto.cert_pem(cert))
    return CertPaths(ca_cert_path, ca_key_path, cert_path, key_path,
                     crypto.spiffe_id(trust_domain, namespace, app_id), created)
