"""Identities: key types, SPIFFE IDs, trust (rotation, new CA, expiry), `ledgerflow certs init`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from security import crypto
from security.certs import init_certs
from security.context import SecurityConfig, SigningConfigurationError, load_identity


@pytest.mark.parametrize("key_type", crypto.KEY_TYPES)
def test_every_key_type_signs_and_verifies(tmp_path: Path, key_type: str) -> None:
    paths = init_certs(tmp_path, "orders", key_type=key_type)
    identity = crypto.load_identity(paths.cert, paths.key)
    trust = crypto.load_bundle(paths.ca_cert)
    assert identity.app_id == "orders"
    assert trust.verify(identity.cert, crypto.now_utc()) == "orders"
    sig = identity.sign(b"data")
    crypto.verify_signature(identity.cert.public_key(), sig, b"data")
    with pytest.raises(crypto.VerificationError) as err:
        crypto.verify_signature(identity.cert.public_key(), sig, b"other")
    assert err.value.check == "signature"


def test_spiffe_ids() -> None:
    assert crypto.parse_spiffe("spiffe://public/ns/default/orders") == ("public", "default", "orders")
    for bad in ("https://x/ns/a/b", "spiffe://public/orders", "spiffe://public/ns//orders"):
        with pytest.raises(ValueError):
            crypto.parse_spiffe(bad)


def test_rotation_under_the_same_ca_verifies_a_new_ca_or_an_expired_cert_does_not(tmp_path: Path) -> None:
    first = init_certs(tmp_path, "orders")
    old = crypto.load_identity(first.cert, first.key)
    trust = crypto.load_bundle(first.ca_cert)
    rotated = init_certs(tmp_path, "orders")  # same CA, new key and certificate
    assert not rotated.created_ca
    new = crypto.load_identity(rotated.cert, rotated.key)
    assert new.fp != old.fp
    assert trust.verify(new.cert, crypto.now_utc()) == "orders"
    assert trust.verify(old.cert, crypto.now_utc()) == "orders"

    other = init_certs(tmp_path / "other", "orders")  # a different CA
    with pytest.raises(crypto.VerificationError) as err:
        trust.verify(crypto.load_identity(other.cert, other.key).cert, crypto.now_utc())
    assert err.value.check == "certificate chain"

    expired = init_certs(tmp_path, "orders", days=1, not_before=crypto.now_utc() - timedelta(days=3))
    cert = crypto.load_identity(expired.cert, expired.key).cert
    with pytest.raises(crypto.VerificationError) as err:
        trust.verify(cert, crypto.now_utc())
    assert err.value.check == "certificate validity"


def test_loading_an_identity_says_what_to_do(tmp_path: Path) -> None:
    config = SecurityConfig(signing=True, certs_dir=tmp_path)
    with pytest.raises(SigningConfigurationError, match="ledgerflow certs init --app-id orders"):
        load_identity("orders", config)
    init_certs(tmp_path, "billing")
    (tmp_path / "orders.crt").write_bytes((tmp_path / "billing.crt").read_bytes())
    (tmp_path / "orders.key").write_bytes((tmp_path / "billing.key").read_bytes())
    with pytest.raises(SigningConfigurationError, match="is for app 'billing'"):
        load_identity("orders", config)
    init_certs(tmp_path, "orders", days=1, not_before=crypto.now_utc() - timedelta(days=3))
    with pytest.raises(SigningConfigurationError, match="certificate validity"):
        load_identity("orders", config)


def test_certs_init_command_writes_the_default_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledgerflow.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEDGERFLOW_CERTS_DIR", raising=False)
    result = CliRunner().invoke(main, ["certs", "init", "--app-id", "orders", "--key-type", "p256"])
    assert result.exit_code == 0, result.output
    base = tmp_path / ".ledgerflow" / "certs"
    assert sorted(p.name for p in base.iterdir()) == ["ca.crt", "ca.key", "orders.crt", "orders.key"]
    assert (base / "orders.key").stat().st_mode & 0o077 == 0
    assert "spiffe://public/ns/default/orders" in result.output
    result = CliRunner().invoke(main, ["certs", "init", "--app-id", "billing", "--dir", str(tmp_path / "d")])
    assert result.exit_code == 0 and (tmp_path / "d" / "billing.crt").exists()
    identity, _ = load_identity_from(base, "orders")
    assert identity.app_id == "orders"


def load_identity_from(base: Path, app: str):
    return crypto.load_identity(base / f"{app}.crt", base / f"{app}.key"), crypto.load_bundle(base / "ca.crt")


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
@pytest.mark.filterwarnings("ignore:Parsed a serial number")
def test_every_damaged_byte_of_a_stored_certificate_is_a_verification_error(tmp_path: Path, mask: int) -> None:
    """A flipped byte anywhere in a stored certificate is reported as a failed check, never a
    crash (S1 found a flip in the version field raising cryptography's InvalidVersion). The
    certificate's own signature covers only its TBS part: a flip outside it that the parser
    tolerates (e.g. the BIT STRING's unused-bits byte) still verifies here, and is caught by
    the history chain, whose signed input binds the SHA-256 of the stored bytes."""
    paths = init_certs(tmp_path, "orders")
    identity = crypto.load_identity(paths.cert, paths.key)
    trust = crypto.load_bundle(paths.ca_cert)
    der = crypto.cert_der(identity.cert)
    tbs = identity.cert.tbs_certificate_bytes
    signed = range(der.index(tbs), der.index(tbs) + len(tbs))
    accepted = []
    for i in range(len(der)):
        damaged = der[:i] + bytes([der[i] ^ mask]) + der[i + 1:]
        try:
            trust.verify(crypto.load_cert_der(damaged), crypto.now_utc())
        except crypto.VerificationError:
            continue
        accepted.append(i)
        assert crypto.fingerprint(damaged) != identity.fp  # what the chain's signatures bind
    assert not [i for i in accepted if i in signed], accepted
