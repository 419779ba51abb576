"""What one process knows about security: signing on or off, its identity, the CA bundle,
and the access policies of its resources directory. Built from the environment:

- LEDGERFLOW_SIGNING: `on` (also 1/true/yes) signs and verifies histories; default off.
- LEDGERFLOW_CERTS_DIR: where `ledgerflow certs init` writes and the runtime reads
  certificates; default `.ledgerflow/certs` in the working directory. In it:
  `ca.crt` (the CA bundle), `<app-id>.crt` and `<app-id>.key` (the app's identity).
- LEDGERFLOW_CERT_FILE, LEDGERFLOW_KEY_FILE, LEDGERFLOW_CA_FILE: name the files directly
  (override the directory's defaults).
- LEDGERFLOW_RESOURCES_DIR: WorkflowAccessPolicy YAML files; default `.ledgerflow/resources`.
- LEDGERFLOW_SIGNING_VERIFY: `head` (default) or `full`; see orchestrator/guard.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from security import crypto
from security.policy import PolicyStore

ON_VALUES = frozenset({"on", "1", "true", "yes"})


def signing_enabled() -> bool:
    return os.environ.get("LEDGERFLOW_SIGNING", "off").strip().lower() in ON_VALUES


def default_certs_dir() -> Path:
    return Path(os.environ.get("LEDGERFLOW_CERTS_DIR") or Path.cwd() / ".ledgerflow" / "certs")


def default_resources_dir() -> Path:
    return Path(os.environ.get("LEDGERFLOW_RESOURCES_DIR") or Path.cwd() / ".ledgerflow" / "resources")


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
    def from_env(cls, app_id: str | None = None) -> SecurityContext:
        app = app_id or os.environ.get("LEDGERFLOW_APP_ID") or os.environ.get("APP_ID") or "default"
        policies = PolicyStore(default_resources_dir())
        mode = os.environ.get("LEDGERFLOW_SIGNING_VERIFY", "head").strip().lower()
        if not signing_enabled():
            return cls(app, policies=policies, verify_mode=mode)
        identity, trust = load_identity(app)
        return cls(app, identity, trust, policies, mode)


def load_identity(app_id: str) -> tuple[crypto.Identity, crypto.TrustBundle]:
    base = default_certs_dir()
    cert_file = Path(os.environ.get("LEDGERFLOW_CERT_FILE") or base / f"{app_id}.crt")
    key_file = Path(os.environ.get("LEDGERFLOW_KEY_FILE") or base / f"{app_id}.key")
    ca_file = Path(os.environ.get("LEDGERFLOW_CA_FILE") or base / "ca.crt")
    hint = (f"create them with `ledgerflow certs init --app-id {app_id} --dir {base}` or name them with "
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


_cache: dict[tuple[str, ...], tuple[float, SecurityContext]] = {}
_cache_lock = __import__("threading").Lock()
_RECHECK_SECONDS = 1.0


def _env_key(app_id: str) -> tuple[str, ...]:
    env = os.environ
    names = ("LEDGERFLOW_SIGNING", "LEDGERFLOW_CERTS_DIR", "LEDGERFLOW_CERT_FILE", "LEDGERFLOW_KEY_FILE",
             "LEDGERFLOW_CA_FILE", "LEDGERFLOW_RESOURCES_DIR", "LEDGERFLOW_SIGNING_VERIFY")
    key = [app_id, os.getcwd(), *(env.get(n, "") for n in names)]
    if signing_enabled():  # a rotated certificate is picked up without a restart
        base = default_certs_dir()
        for path in (env.get("LEDGERFLOW_CERT_FILE") or base / f"{app_id}.crt",
                     env.get("LEDGERFLOW_CA_FILE") or base / "ca.crt"):
            try:
                key.append(str(Path(path).stat().st_mtime_ns))
            except OSError:
                key.append("-")
    return tuple(key)


def current(app_id: str | None = None) -> SecurityContext:
    """The context for `app_id` from the environment, cached while the environment and the
    certificate files stay the same (re-checked at most once a second)."""
    import time

    app = app_id or os.environ.get("LEDGERFLOW_APP_ID") or os.environ.get("APP_ID") or "default"
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get((app,))
        if hit is not None and now - hit[0] < _RECHECK_SECONDS:
            return hit[1]
    key = _env_key(app)
    with _cache_lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache[(app,)] = (now, entry[1])
            return entry[1]
    ctx = SecurityContext.from_env(app)
    with _cache_lock:
        _cache[key] = (now, ctx)
        _cache[(app,)] = (now, ctx)
    return ctx


def reset_cache() -> None:
    with _cache_lock:
        _cache.clear()
