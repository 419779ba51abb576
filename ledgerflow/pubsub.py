"""Pub/sub for apps and the `ledgerflow listen` process: topics that raise workflow events.

Publishing, from any app::

    from ledgerflow.pubsub import publish_event
    publish_event("payment.received", {"order_id": "A-1001", "amount": 255.0})

Listening, by subscriptions in a YAML file (`ledgerflow listen --subscriptions subs.yaml`)::

    name: orders                    # the listener's queue is ledgerflow.listen.orders
    exchange: ledgerflow.events     # optional
    subscriptions:
      - topic: payment.received     # AMQP topic pattern: * one word, # any number
        event: payment_received     # the workflow event to raise
        instance_id: order_id       # dotted path in the message to the instance ID
        data: payment               # optional dotted path to the event data (default: whole message)

A message that names no instance, an instance that does not exist, or that is not a JSON
object goes to the dead-letter queue `ledgerflow.listen.<name>.dlq` with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from brokers import pubsub
from ledgerflow import errors
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager

_MISSING = object()


class SubscriptionError(ValueError):
    pass


@dataclass(frozen=True)
class Subscription:
    topic: str
    event: str
    instance_id: str
    data: str | None = None


@dataclass(frozen=True)
class Subscriptions:
    name: str
    exchange: str
    items: tuple[Subscription, ...]

    @classmethod
    def load(cls, path: str | Path) -> Subscriptions:
        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SubscriptionError(f"Cannot read subscriptions from {path}: {exc}") from exc
        items = []
        for i, raw in enumerate(doc.get("subscriptions") or []):
            missing = [k for k in ("topic", "event", "instance_id") if not raw.get(k)]
            if missing:
                raise SubscriptionError(f"{path}: subscription #{i} lacks {', '.join(missing)}.")
            items.append(Subscription(str(raw["topic"]), str(raw["event"]), str(raw["instance_id"]),
                                      raw.get("data")))
        if not items:
            raise SubscriptionError(f"{path}: no subscriptions; add a 'subscriptions:' list.")
        return cls(str(doc.get("name") or "default"), str(doc.get("exchange") or pubsub.DEFAULT_EXCHANGE), tuple(items))


def publish_event(topic: str, data: Any, *, broker_url: str | None = None,
                  exchange: str = pubsub.DEFAULT_EXCHANGE) -> None:
    """Publish `data` (JSON-serializable) on `topic` for listeners to turn into workflow events."""
    json.dumps(data)  # fail here, clearly, rather than in the broker client
    pubsub.publish(broker_url or Settings.from_env().broker_url, topic, data, exchange=exchange)


def _path(body: Any, dotted: str) -> Any:
    value = body
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


class EventRaiser:
    """Turns one message into workflow events; returns a dead-letter reason or None."""

    def __init__(self, subscriptions: Subscriptions, manager: WorkflowManager) -> None:
        self.subscriptions = subscriptions
        self.manager = manager

    def __call__(self, routing_key: str, body: Any, headers: dict[str, Any]) -> str | None:
        if isinstance(body, (bytes, str)):
            try:
                body = json.loads(body)
            except ValueError:
                return "malformed: the message is not JSON"
        if not isinstance(body, dict):
            return f"malformed: expected a JSON object, got {type(body).__name__}"
        matched = [s for s in self.subscriptions.items if pubsub.topic_matches(s.topic, routing_key)]
        if not matched:
            return f"no subscription matches topic '{routing_key}'"
        for sub in matched:
            instance_id = _path(body, sub.instance_id)
            if instance_id is _MISSING or not isinstance(instance_id, str) or not instance_id:
                return f"no instance ID at '{sub.instance_id}' in the {routing_key} message"
            data = body if sub.data is None else _path(body, sub.data)
            if data is _MISSING:
                return f"no event data at '{sub.data}' in the {routing_key} message"
            try:
                self.manager.raise_event(instance_id, sub.event, data)
            except errors.InstanceNotFoundError:
                return f"workflow instance '{instance_id}' does not exist (event '{sub.event}' from {routing_key})"
        return None


def listen(subscriptions: Subscriptions, settings: Settings | None = None) -> None:
    """Run the listener until interrupted."""
    settings = settings or Settings.from_env()
    raiser = EventRaiser(subscriptions, WorkflowManager(settings))
    listener = pubsub.TopicListener(settings.broker_url, subscriptions.name,
                                    sorted({s.topic for s in subscriptions.items}), raiser,
                                    exchange=subscriptions.exchange)
    listener.run()
