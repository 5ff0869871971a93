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


Render = Callable[[str], str | None]
"""Renders a change for a role; ``None`` or ``""``: nothing for that role."""


class Subscriber(Protocol):
    async def push(self, message: str) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._subs: dict[str, dict[str, set[Subscriber]]] = defaultdict(lambda: defaultdict(set))
        self._topics_of: dict[Subscriber, tuple[str, set[str]]] = {}
        self.messages_sent = 0
        #: Set while this process's reader leads: sends changes onwards.
        self.relay: Callable[[dict[str, dict[str, str]]], Awaitable[None]] | None = None

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

    async def publish(self, topic: str, render: Render) -> None:
        await self.publish_many([(topic, render)])

    async def publish_many(self, changes: Iterable[tuple[str, Render]]) -> None:
        """Render each topic's change once per role and send them to every
        local socket, a socket of several of the topics getting them in one
        message; with a relay, also to the other console processes (which
        may have sockets of either role, so both are rendered)."""
        rendered: dict[str, dict[str, str]] = {}
        relayed: dict[str, dict[str, str]] = {}
        for topic, render in changes:
            relay = self.relay is not None and is_relayed(topic)
            messages = {}
            for role in ALL_ROLES if relay else self.roles(topic):
                message = render(role)
                if message:
                    messages[role] = message
            if messages:
                rendered[topic] = messages
                if relay:
                    relayed[topic] = messages
        if rendered:
            await self.deliver_many(rendered)
        if relayed and self.relay is not None:
            await self.relay(relayed)

    async def deliver_many(self, rendered: dict[str, dict[str, str]]) -> None:
        """Send already rendered messages (by topic, then role) to this
        process's sockets: one message per socket, whatever the number of
        its topics among them. The cost of a change is mostly the sends
        (about 0.1 ms a frame through the server's stack), so a batch of
        rows and the header it moved go out as one frame, not two."""
        frames: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        done: set[Subscriber] = set()
        for topic in rendered:
            for role, subs in list(self._subs.get(topic, {}).items()):
                for sub in list(subs):
                    if sub in done:
                        continue
                    done.add(sub)
                    own = self._topics_of.get(sub, (role, set()))[1]
                    key = (role, tuple(t for t in rendered if t in own and role in rendered[t]))
                    messages = frames.get(key)
                    if messages is None:
                        messages = frames[key] = joined(rendered[t][role] for t in key[1])
                    # One after the other, not gathered: a push hands the text to
                    # the server's transport and does not wait, and 200 tasks per
                    # change cost more than the sends themselves.
                    for message in messages:
                        try:
                            await sub.push(message)
                        except Exception as exc:  # noqa: BLE001 - one dead socket must not stop the rest
                            log.debug("a WebSocket push failed: %s", exc)
                        self.messages_sent += 1


def joined(messages: Iterable[str]) -> list[str]:
    """The frames for these messages: HTML fragments (out-of-band swaps)
    concatenate into one; a JSON note stays a frame of its own."""
    frames: list[str] = []
    html: list[str] = []
    for message in messages:
        if message.startswith("{"):
            frames.append(message)
        else:
            html.append(message)
    if html:
        frames.insert(0, "".join(html))
    return frames


ALL_ROLES = (ROLE_OPERATOR, ROLE_VIEWER)
#: Topics whose changes the reader relays to the other processes; the log
#: tail is not among them, since every process follows the file itself.
RELAYED = frozenset({TOPIC_HEADER, TOPIC_SERVERS, TOPIC_HEARTBEAT})


def is_relayed(topic: str) -> bool:
    return topic in RELAYED or topic.startswith(PULSE_TOPIC_PREFIX)


#: The one hub of this process.
hub = Hub()
