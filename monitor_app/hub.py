"""The process's fan-out point between the reader and the open WebSockets.

Each change is rendered once per topic and role and the same text goes to
every socket of that topic, so the cost of a change does not grow with the
number of browsers, and Redis is never asked anything per browser."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Protocol

from monitor_app.state import PulseRef

log = logging.getLogger(__name__)

TOPIC_HEADER = "header"
TOPIC_SERVERS = "servers"
TOPIC_HEARTBEAT = "heartbeat"
TOPIC_LOGS = "logs"
PULSE_TOPIC_PREFIX = "pulse:"

ROLE_OPERATOR = "operator"
ROLE_VIEWER = "viewer"


def pulse_topic(pulse: PulseRef) -> str:
    return PULSE_TOPIC_PREFIX + pulse.key


def topic_pulse(topic: str) -> PulseRef | None:
    if not topic.startswith(PULSE_TOPIC_PREFIX):
        return None
    tree, _, shot = topic[len(PULSE_TOPIC_PREFIX) :].partition(":")
    return PulseRef(tree, shot) if tree and shot else None


class Subscriber(Protocol):
    async def push(self, message: str) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._subs: dict[str, dict[str, set[Subscriber]]] = defaultdict(lambda: defaultdict(set))
        self._topics_of: dict[Subscriber, tuple[str, set[str]]] = {}
        self.messages_sent = 0

    def add(self, subscriber: Subscriber, topics: Iterable[str], role: str) -> None:
        topics = set(topics)
        self._topics_of[subscriber] = (role, topics)
        for topic in topics:
            self._subs[topic][role].add(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        role, topics = self._topics_of.pop(subscriber, (None, set()))
        for topic in topics:
            by_role = self._subs.get(topic)
            if not by_role:
                continue
            by_role[role].discard(subscriber)
            if not by_role[role]:
                del by_role[role]
            if not by_role:
                del self._subs[topic]

    def roles(self, topic: str) -> list[str]:
        return [role for role, subs in self._subs.get(topic, {}).items() if subs]

    def has(self, topic: str) -> bool:
        return bool(self.roles(topic))

    def watched_pulses(self) -> set[PulseRef]:
        return {ref for topic in self._subs if (ref := topic_pulse(topic)) is not None}

    @property
    def subscriber_count(self) -> int:
        return len(self._topics_of)

    async def publish(self, topic: str, render: Callable[[str], str | None]) -> None:
        """Render once per role present on the topic and send it to all."""
        by_role = self._subs.get(topic)
        if not by_role:
            return
        for role, subs in list(by_role.items()):
            message = render(role)
            if not message:
                continue
            # One after the other, not gathered: a push hands the text to the
            # server's transport and does not wait, and 200 tasks per change
            # cost more than the sends themselves.
            for sub in list(subs):
                try:
                    await sub.push(message)
                except Exception as exc:  # noqa: BLE001 - one dead socket must not stop the rest
                    log.debug("a WebSocket push failed: %s", exc)
                self.messages_sent += 1


#: The one hub of this process.
hub = Hub()
