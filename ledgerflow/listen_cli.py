"""`ledgerflow listen`: raise workflow events from pub/sub messages."""

from __future__ import annotations

import click

from ledgerflow.cli_help import examples
from ledgerflow.pubsub import SubscriptionError, Subscriptions, listen


@click.command("listen", epilog=examples("ledgerflow listen --subscriptions subs.yaml"))
@click.option("--subscriptions", "path", required=True, type=click.Path(dir_okay=False),
              help="YAML file of subscriptions (topic pattern -> event -> instance ID path).")
def listen_command(path: str) -> None:
    """Consume the topic exchange and raise workflow events; bad messages go to a dead-letter queue."""
    try:
        subscriptions = Subscriptions.load(path)
    except SubscriptionError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"ledgerflow listen: queue ledgerflow.listen.{subscriptions.name}, "
               f"{len(subscriptions.items)} subscription(s)")
    listen(subscriptions)
