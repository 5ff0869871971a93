"""What every simulated process shares: the time scale, the opt-in fault
injections, and Redis access that survives a Redis restart (retry with
backoff, logged once per outage) instead of dying on the first error."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import redis

from monitor_app.redis_client import REDIS_ERRORS, sync_client, text

log = logging.getLogger("monitor_app.simulator")

#: Upstream crashes the simulator can reproduce on request (off by default).
FAULTS: dict[str, str] = {
    "watchdog-dies": "the dispatcher's watchdog thread dies when a server id appears that "
    "it has not seen before: heartbeats stop and crashes go unnoticed",
    "nested-vanish": "actions with nested conditions (A AND (B OR C)) vanish from every hash "
    "at build_tables",
    "send-timeouts": "work items carry each action's timeout (the genuine dispatcher always "
    "sends 0, so timeouts never fire)",
}

# Periods of the genuine system, in seconds before time scaling.
ON_REFRESH_S = 1.0
WATCHDOG_S = 5.0
ABORT_POLL_S = 0.5


@dataclass(frozen=True)
class SimConfig:
    """``time_scale`` multiplies every simulated duration and period (0.1 runs
    ten times faster), so tests keep the real ratios but not the real waits."""

    time_scale: float = 1.0
    faults: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time scale must be > 0")
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")

    def seconds(self, value: float) -> float:
        return value * self.time_scale

    def has(self, fault: str) -> bool:
        return fault in self.faults


def log_date() -> str:
    """The date in the genuine server's log lines (its zone is written as a
    literal ``CET``, whatever the clock)."""
    return datetime.now().strftime("%a %b %d %H:%M:%S CET %Y")


class Backoff:
    """Wait times after Redis errors: 0.2 s doubling to 5 s; one log line when
    Redis goes away and one when it is back, not one per retry."""

    def __init__(self, label: str, first: float = 0.2, cap: float = 5.0) -> None:
        self.label = label
        self.first = first
        self.cap = cap
        self.delay = 0.0
        self.down = False

    def failed(self, exc: BaseException) -> float:
        if not self.down:
            log.warning("%s: Redis unreachable (%s); reconnecting", self.label, exc)
            self.down = True
        self.delay = min(self.cap, self.delay * 2 if self.delay else self.first)
        return self.delay

    def ok(self) -> None:
        if self.down:
            log.warning("%s: Redis reachable again", self.label)
        self.down = False
        self.delay = 0.0


class RedisRestarts:
    """Tells a restarted Redis from a merely lost connection, by the server's
    ``run_id``: a restart may have emptied Redis (no persistence), so what a
    process keeps about Redis (a running sequence, heartbeat counters sent,
    queued work) is void. A Redis without INFO (fakeredis) never "restarts"."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._run_id: str | None = None
        self._lock = threading.Lock()

    def check(self, client: redis.Redis | None = None) -> bool:
        """``True`` once per restart, for the first caller that notices it."""
        try:
            info = (client or sync_client()).info("server")
        except redis.ResponseError:
            return False
        run_id = text(info.get("run_id")) if isinstance(info, dict) else None
        if not run_id:
            return False
        with self._lock:
            before, self._run_id = self._run_id, run_id
        if before is not None and before != run_id:
            log.warning(
                "%s: Redis restarted (run_id %s, was %s)", self.label, run_id[:8], before[:8]
            )
            return True
        return False


def retrying(stop: threading.Event, label: str, func: Callable[[], object]) -> object:
    """Run ``func`` until it gets through to Redis or ``stop`` is set."""
    backoff = Backoff(label)
    while not stop.is_set():
        try:
            result = func()
        except REDIS_ERRORS as exc:
            stop.wait(backoff.failed(exc))
            continue
        backoff.ok()
        return result
    return None


def subscription_loop(
    channels: Iterable[str],
    handler: Callable[[str, str], None],
    stop: threading.Event,
    label: str,
    on_subscribed: Callable[[], None] | None = None,
    poll: float = 0.2,
) -> None:
    """Deliver every message of ``channels`` to ``handler(channel, data)``
    until ``stop``; resubscribe after a lost connection. ``on_subscribed``
    runs once the subscription is confirmed (after each reconnect too), so a
    server can then pop work queued while nobody listened."""
    channels = list(channels)
    backoff = Backoff(label)
    while not stop.is_set():
        pubsub = None
        try:
            pubsub = sync_client().pubsub()
            pubsub.subscribe(*channels)
            confirmed = 0
            for _ in range(50):  # bounded wait for the confirmations
                message = pubsub.get_message(timeout=0.1)
                if message and message["type"] == "subscribe":
                    confirmed += 1
                    if confirmed == len(channels):
                        break
            backoff.ok()
            if on_subscribed is not None:
                on_subscribed()
            while not stop.is_set():
                message = pubsub.get_message(timeout=poll)
                if not message or message["type"] != "message":
                    continue
                try:
                    handler(text(message["channel"]) or "", text(message["data"]) or "")
                except REDIS_ERRORS:
                    raise
                except Exception:
                    log.exception("%s: error handling %r", label, message.get("data"))
        except REDIS_ERRORS as exc:
            stop.wait(backoff.failed(exc))
        finally:
            if pubsub is not None:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001,S110 - the connection is gone anyway
                    pass


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
