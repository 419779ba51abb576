"""`ledgerflow certs init`: a development CA and this app's certificate and key."""

from __future__ import annotations

import click

from ledgerflow.cli_help import examples
from ledgerflow.config import app_id_from_env, security_from_env
from security import crypto
from security.certs import init_certs


@click.group(epilog=examples("ledgerflow certs init --app-id orders"))
def certs() -> None:
    """X.509 identities for history signing (LEDGERFLOW_SIGNING=on)."""


@certs.command("init", epilog=examples("ledgerflow certs init --app-id orders",
                                             "ledgerflow certs init --app-id billing --key-type p256"))
@click.option("--app-id", default=None, help="The app's ID (default: LEDGERFLOW_APP_ID, else 'default').")
@click.option("--dir", "directory", default=None,
              help="Where to write (default: LEDGERFLOW_CERTS_DIR, else .ledgerflow/certs).")
@click.option("--key-type", default="ed25519", show_default=True, type=click.Choice(list(crypto.KEY_TYPES)))
@click.option("--trust-domain", default="public", show_default=True)
@click.option("--namespace", default="default", show_default=True)
@click.option("--days", default=365, show_default=True, help="Validity of the app certificate.")
@click.option("--new-ca", is_flag=True, help="Replace the CA (histories signed under the old one stop verifying).")
def certs_init(app_id: str | None, directory: str | None, key_type: str, trust_domain: str, namespace: str,
               days: int, new_ca: bool) -> None:
    """Create a development CA (once) and issue the app's certificate and key under it.

    Run it again to rotate the app's certificate under the same CA."""
    app = app_id or app_id_from_env()
    paths = init_certs(directory or security_from_env().certs(), app, key_type=key_type, trust_domain=trust_domain,
                       namespace=namespace, days=days, new_ca=new_ca)
    click.echo(f"{'created' if paths.created_ca else 'using'} CA {paths.ca_cert}")
    click.echo(f"issued {paths.cert} and {paths.key} for {paths.spiffe_id}")
    click.echo("turn signing on with LEDGERFLOW_SIGNING=on")
