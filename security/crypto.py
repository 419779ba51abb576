"""X.509 identities (SPIFFE URI SANs), keys and signatures, with the `cryptography` package.

An app's identity is a certificate whose URI SAN is
`spiffe://<trust-domain>/ns/<namespace>/<app-id>`, its private key (Ed25519, ECDSA P-256 or
RSA) and a CA bundle. A certificate is trusted when it was directly issued by a CA of the
bundle (checked with the CA's public key) and both were valid at the time that matters: the
time a signature says it was made, which is itself covered by the signature.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("ed25519", "p256", "rsa")
SPIFFE_PREFIX = "spiffe://"


class VerificationError(Exception):
    """A check failed. `check` names it (e.g. "signature", "certificate chain")."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


class IdentityError(Exception):
    """The app's own certificate, key or CA bundle is missing, unreadable or unusable."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# -- keys and signatures -----------------------------------------------------------------

def generate_key(key_type: str = "ed25519") -> Any:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type in ("p256", "ecdsa", "ecdsa-p256"):
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def sign(key: Any, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _pss(), hashes.SHA256())
    raise IdentityError(f"unsupported key type {type(key).__name__}")


def verify_signature(public_key: Any, signature: bytes, data: bytes) -> None:
    """Raises VerificationError("signature", ...) unless `signature` is valid for `data`."""
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, _pss(), hashes.SHA256())
        else:
            raise VerificationError("signature", f"unsupported key type {type(public_key).__name__}")
    except InvalidSignature as exc:
        raise VerificationError("signature", "the signature does not match the signed data") from exc
    except (ValueError, TypeError) as exc:
        raise VerificationError("signature", f"malformed signature: {exc}") from exc


# -- SPIFFE IDs ----------------------------------------------------------------------------

def spiffe_id(trust_domain: str, namespace: str, app_id: str) -> str:
    return f"{SPIFFE_PREFIX}{trust_domain}/ns/{namespace}/{app_id}"


def parse_spiffe(uri: str) -> tuple[str, str, str]:
    """(trust domain, namespace, app id) of a SPIFFE ID; ValueError otherwise."""
    if not uri.startswith(SPIFFE_PREFIX):
        raise ValueError(f"not a SPIFFE ID: {uri!r}")
    parts = uri[len(SPIFFE_PREFIX):].split("/")
    if len(parts) != 4 or parts[1] != "ns" or not all(parts):
        raise ValueError(f"not a spiffe://<trust-domain>/ns/<namespace>/<app-id> ID: {uri!r}")
    return parts[0], parts[2], parts[3]


def cert_app_id(cert: x509.Certificate) -> str:
    """The app ID in the certificate's SPIFFE URI SAN; VerificationError("identity") otherwise."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError("identity", "the certificate has no subject alternative name") from exc
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        try:
            return parse_spiffe(uri)[2]
        except ValueError:
            continue
    raise VerificationError("identity", "the certificate has no spiffe://<td>/ns/<ns>/<app-id> URI SAN")


def fingerprint(der: bytes) -> bytes:
    return sha256(der)


# -- certificates --------------------------------------------------------------------------

def _validity(cert: x509.Certificate) -> tuple[datetime, datetime]:
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def issue_ca(key: Any, *, common_name: str = "Ledgerflow development CA", days: int = 3650,
             not_before: datetime | None = None) -> x509.Certificate:
    start = not_before or now_utc() - timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    )
    return builder.sign(key, _hash_for(key))


def issue_app_cert(ca_key: Any, ca_cert: x509.Certificate, key: Any, *, app_id: str,
                   trust_domain: str = "public", namespace: str = "default", days: int = 365,
                   not_before: datetime | None = None) -> x509.Certificate:
    start = not_before or now_utc() - timedelta(minutes=5)
    uri = spiffe_id(trust_domain, namespace, app_id)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, app_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
    )
    return builder.sign(ca_key, _hash_for(ca_key))


def _hash_for(key: Any) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def key_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def load_cert_der(der: bytes) -> x509.Certificate:
    """Parse a stored certificate; any damage is a ``VerificationError``, never a crash.

    ``cryptography`` parses some fields lazily, so the ones verification reads are touched
    here, inside the ``try``. Damaged DER raises more than ``ValueError`` (``InvalidVersion``,
    ``KeyError`` from an extension, ...), so every exception of the parser counts as damage."""
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.subject, cert.issuer, cert.extensions  # noqa: B018 - force the lazy parse
        cert.not_valid_before_utc, cert.not_valid_after_utc  # noqa: B018
        return cert
    except Exception as exc:  # noqa: BLE001 - see above: the bytes are untrusted
        raise VerificationError("certificate", f"unreadable certificate: {exc!r}") from exc


# -- trust ---------------------------------------------------------------------------------

class TrustBundle:
    """The CA certificates an app trusts; verifies leaf certificates against them."""

    def __init__(self, cas: list[x509.Certificate]) -> None:
        if not cas:
            raise IdentityError("the CA bundle holds no certificate")
        self.cas = cas
        self._chain_ok: dict[bytes, x509.Certificate] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_pem(cls, pem: bytes) -> TrustBundle:
        try:
            return cls(x509.load_pem_x509_certificates(pem))
        except ValueError as exc:
            raise IdentityError(f"unreadable CA bundle: {exc}") from exc

    def _issuer(self, cert: x509.Certificate, fp: bytes) -> x509.Certificate:
        with self._lock:
            cached = self._chain_ok.get(fp)
        if cached is not None:
            return cached
        for ca in self.cas:
            if ca.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            with self._lock:
                self._chain_ok[fp] = ca
            return ca
        raise VerificationError("certificate chain", "the certificate was not issued by a trusted CA")

    def verify(self, cert: x509.Certificate, at: datetime, *, fp: bytes | None = None) -> str:
        """The app ID of `cert` if it chains to this bundle and was valid at `at`."""
        fp = fp if fp is not None else fingerprint(cert_der(cert))
        ca = self._issuer(cert, fp)
        at = utc(at)
        for what, c in (("certificate", cert), ("CA certificate", ca)):
            start, end = _validity(c)
            if not start <= at <= end:
                raise VerificationError(
                    "certificate validity",
                    f"the {what} is valid from {start.isoformat()} to {end.isoformat()}, not at {at.isoformat()}")
        return cert_app_id(cert)


@dataclass
class Identity:
    """This app's certificate and private key."""

    app_id: str
    cert: x509.Certificate
    key: Any
    der: bytes
    fp: bytes

    @classmethod
    def of(cls, cert: x509.Certificate, key: Any) -> Identity:
        der = cert_der(cert)
        return cls(cert_app_id(cert), cert, key, der, fingerprint(der))

    def sign(self, data: bytes) -> bytes:
        return sign(self.key, data)

    def valid_at(self, at: datetime) -> bool:
        start, end = _validity(self.cert)
        return start <= utc(at) <= end

    @property
    def not_after(self) -> datetime:
        return _validity(self.cert)[1]


def load_identity(cert_file: Path, key_file: Path) -> Identity:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise IdentityError(f"{exc.filename} not found") from exc
    except ValueError as exc:
        raise IdentityError(f"unreadable certificate or key ({cert_file}, {key_file}): {exc}") from exc
    if cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise IdentityError(f"the key {key_file} does not belong to the certificate {cert_file}")
    try:
        return Identity.of(cert, key)
    except VerificationError as exc:
        raise IdentityError(f"{cert_file}: {exc}") from exc


def load_bundle(ca_file: Path) -> TrustBundle:
    try:
        return TrustBundle.from_pem(ca_file.read_bytes())
    except FileNotFoundError as exc:
        raise IdentityError(f"{exc.filename} not found") from exc
