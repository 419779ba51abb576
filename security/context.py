"""What one process knows about security: signing on or off, its identity, the CA bundle,
and the access policies of its resources directory. Built from a `SecurityConfig`, which
`ledgerflow.config.Settings` reads from the environment (this module reads none of it):

- `signing` (LEDGERFLOW_SIGNING): signs and verifies histories; default off.
- `certs_dir` (LEDGERFLOW_CERTS_DIR): where `ledgerflow certs init` writes and the runtime
  reads certificates; default `.ledgerflow/certs` in the working directory. In it:
  `ca.crt` (the CA bundle), `<app-id>.crt` and `<app-id>.key` (the app's identity).
- `cert_file`, `key_file`, `ca_file` (LEDGERFLOW_CERT_FILE, LEDGERFLOW_KEY_FILE,
  LEDGERFLOW_CA_FILE): name the files directly (override the directory's defaults).
- `resources_dir` (LEDGERFLOW_RESOURCES_DIR): WorkflowAccessPolicy YAML files; default
  `.ledgerflow/resources`.
- `verify_mode` (LEDGERFLOW_SIGNING_VERIFY): `head` (default) or `full`; see orchestrator/guard.py.

`current(app_id, config)` is the one builder: the entry points call it (or hand the config to
what calls it) with `Settings.security`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from security import crypto
from security.policy import PolicyStore


@dataclass(frozen=True)
class SecurityConfig:
    """Explicit security settings; a path left None takes its default under the working
    directory at the time it is used (as the variables did)."""

    signing: bool = False
    certs_dir: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    resources_dir: Path | None = None
    verify_mode: str = "head"

    def certs(self) -> Path:
        return Path(self.certs_dir or Path.cwd() / ".ledgerflow" / "certs")

    def resources(self) -> Path:
        return Path(self.resources_dir or Path.cwd() / ".ledgerflow" / "resources")

    def identity_files(self, app_id: str) -> tuple[Path, Path, Path]:
        """(certificate, key, CA bundle) of `app_id`."""
        base = self.certs()
        return (Path(self.cert_file or base / f"{app_id}.crt"), Path(self.key_file or base / f"{app_id}.key"),
                Path(self.ca_file or base / "ca.crt"))


class SigningConfigurationError(Exception):
    """Signing is on but the identity cannot be used; the message says what to do."""


@dataclass
class SecurityContext:
    app_id: str
    identity: crypto.Identity | None = None
    trust: crypto.TrustBundle | None = None
    policies: PolicyStore | None = None
    verify_mode: str = "head"

    @property
    def signing(self) -> bool:
        return self.identity is not None

    @classmethod
    def build(cls, app_id: str, config: SecurityConfig) -> SecurityContext:
        """The context of `app_id` under `config` (uncached; see `current`)."""
        policies = PolicyStore(config.resources())
        mode = config.verify_mode.strip().lower()
        if not config.signing:
            return cls(app_id, policies=policies, verify_mode=mode)
        identity, trust = load_identity(app_id, config)
        return cls(app_id, identity, trust, policies, mode)


def load_identity(app_id: str, config: SecurityConfig) -> tuple[crypto.Identity, crypto.TrustBundle]:
    cert_file, key_file, ca_file = config.identity_files(app_id)
    hint = (f"create them with `ledgerflow certs init --app-id {app_id} --dir {config.certs()}` or name them with "
            "LEDGERFLOW_CERT_FILE, LEDGERFLOW_KEY_FILE and LEDGERFLOW_CA_FILE")
    try:
        identity = crypto.load_identity(cert_file, key_file)
        trust = crypto.load_bundle(ca_file)
    except crypto.IdentityError as exc:
        raise SigningConfigurationError(f"LEDGERFLOW_SIGNING is on but the app identity cannot be loaded: {exc}; "
                                        f"{hint}") from exc
    if identity.app_id != app_id:
        raise SigningConfigurationError(
            f"the certificate {cert_file} is for app '{identity.app_id}', not '{app_id}'; {hint}")
    try:
        trust.verify(identity.cert, crypto.now_utc(), fp=identity.fp)
    except crypto.VerificationError as exc:
        raise SigningConfigurationError(f"the certificate {cert_file} is not usable ({exc}); {hint}") from exc
    return identity, trust


_cache: dict[tuple[object, ...], tuple[float, SecurityContext]] = {}
_cache_lock = threading.Lock()
_RECHECK_SECONDS = 1.0
def _key(app_id: str, config: SecurityConfig) -> tuple[object, ...]:
    key: list[object] = [app_id, os.getcwd(), config]
    if config.signing:  # a rotated certificate is picked up without a restart
        cert_file, _, ca_file = config.identity_files(app_id)
        for path in (cert_file, ca_file):
            try:
                key.append(path.stat().st_mtime_ns)
            except OSError:
                key.append("-")
    return tuple(key)


def current(app_id: str, config: SecurityConfig) -> SecurityContext:
    """The context for `app_id` under `config`, cached while the configuration and the
    certificate files stay the same (re-checked at most once a second)."""
    now = time.monotonic()
    fast = (app_id, config)
    with _cache_lock:
        hit = _cache.get(fast)
        if hit is not None and now - hit[0] < _RECHECK_SECONDS:
            return hit[1]
    key = _key(app_id, config)
    with _cache_lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache[fast] = (now, entry[1])
            return entry[1]
    ctx = SecurityContext.build(app_id, config)
    with _cache_lock:
        _cache[key] = (now, ctx)
        _cache[fast] = (now, ctx)
    return ctx


def reset_cache() -> None:
    with _cache_lock:
        _cache.clear()
