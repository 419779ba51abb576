"""Pub/sub on the broker: a kombu topic exchange, a consumer for listeners, a dead-letter queue.

Apps publish JSON messages with a routing key (the topic, e.g. `payment.received`) to the
topic exchange; a listener binds its durable queue with the subscribed patterns (`*` one
word, `#` any number) and hands each message to a callback that returns None (done) or a
reason, in which case the message is re-published to the dead-letter queue with that
reason in its headers. Nothing is dropped silently: a message is acked only after it was
handled or dead-lettered, and requeued when the callback raises.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from kombu import Connection, Exchange, Queue
from kombu.mixins import ConsumerMixin

log = logging.getLogger("ledgerflow.listen")

DEFAULT_EXCHANGE = "ledgerflow.events"
DLQ_EXCHANGE = "ledgerflow.dead-letter"


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` zero or more words."""
    words = []
    for word in pattern.split("."):
        words.append({"*": r"[^.]+", "#": r".*"}.get(word, re.escape(word)))
    regex = r"\.".join(words).replace(r".*\.", r"(?:.*\.)?").replace(r"\..*", r"(?:\..*)?")
    return re.fullmatch(regex, routing_key) is not None


def publish(broker_url: str, topic: str, body: Any, *, exchange: str = DEFAULT_EXCHANGE,
            headers: dict[str, Any] | None = None) -> None:
    """Publish a JSON message to the topic exchange (declared on first use)."""
    with Connection(broker_url) as conn:
        producer = conn.Producer(serializer="json")
        producer.publish(body, exchange=Exchange(exchange, type="topic", durable=True), routing_key=topic,
                         declare=[Exchange(exchange, type="topic", durable=True)], headers=headers or {},
                         retry=True)


def dead_letter_queue(name: str) -> Queue:
    return Queue(f"ledgerflow.listen.{name}.dlq", Exchange(DLQ_EXCHANGE, type="direct", durable=True),
                 routing_key=name, durable=True)


class TopicListener(ConsumerMixin):
    """Consume `patterns` from the topic exchange into queue `ledgerflow.listen.<name>`."""

    def __init__(self, broker_url: str, name: str, patterns: Sequence[str],
                 handle: Callable[[str, Any, dict[str, Any]], str | None], *, exchange: str = DEFAULT_EXCHANGE) -> None:
        self.connection = Connection(broker_url)
        self.name = name
        self.handle = handle
        topic = Exchange(exchange, type="topic", durable=True)
        self.queues = [Queue(f"ledgerflow.listen.{name}", topic, routing_key=p, durable=True) for p in patterns]
        self.dlq = dead_letter_queue(name)

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        return [consumer_cls(queues=self.queues, callbacks=[self._on_message], accept=["json", "text/plain"],
                             prefetch_count=10)]

    def _on_message(self, body: Any, message: Any) -> None:
        routing_key = (message.delivery_info or {}).get("routing_key", "")
        try:
            reason = self.handle(routing_key, body, dict(message.headers or {}))
        except Exception:
            log.exception("listener %s: handling %s failed; the message is requeued", self.name, routing_key)
            message.requeue()
            return
        if reason is not None:
            self._dead_letter(routing_key, body, reason)
        message.ack()

    def _dead_letter(self, routing_key: str, body: Any, reason: str) -> None:
        log.warning("listener %s: dead-lettered a %s message: %s", self.name, routing_key, reason)
        producer = self.connection.Producer(serializer="json")
        producer.publish(body, exchange=self.dlq.exchange, routing_key=self.dlq.routing_key, declare=[self.dlq],
                         headers={"x-dead-letter-reason": reason, "x-original-routing-key": routing_key}, retry=True)
