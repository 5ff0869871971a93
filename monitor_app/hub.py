"""The process's fan-out point between the reader and the open WebSockets.

Each change is rendered once per topic and role and the same text goes to
every socket of that topic, so the cost of a change does not grow with the
number of browsers, and Redis is never asked anything per browser."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
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
        #: Set while this process's reader leads: sends changes onwards.
        self.relay: Callable[[str, dict[str, str]], Awaitable[None]] | None = None

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
        """Render once per role and send it to every local socket of the
        topic; with a relay, also to the other console processes (which
        may have sockets of either role, so both are rendered)."""
        relay = self.relay if is_relayed(topic) else None
        roles = ALL_ROLES if relay is not None else self.roles(topic)
        messages = {}
        for role in roles:
            message = render(role)
            if message:
                messages[role] = message
        if not messages:
            return
        await self.deliver(topic, messages)
        if relay is not None:
            await relay(topic, messages)

    async def deliver(self, topic: str, messages: dict[str, str]) -> None:
        """Send already rendered messages to this process's sockets."""
        by_role = self._subs.get(topic)
        if not by_role:
            return
        for role, subs in list(by_role.items()):
            message = messages.get(role)
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


ALL_ROLES = (ROLE_OPERATOR, ROLE_VIEWER)
#: Topics whose changes the reader relays to the other processes; the log
#: tail is not among them, since every process follows the file itself.
RELAYED = frozenset({TOPIC_HEADER, TOPIC_SERVERS, TOPIC_HEARTBEAT})


def is_relayed(topic: str) -> bool:
    return topic in RELAYED or topic.startswith(PULSE_TOPIC_PREFIX)


#: The one hub of this process.
hub = Hub()
