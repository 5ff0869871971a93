"""Writes every pub/sub message of the dispatcher system to the log file,
heartbeats left out, for the Log Viewer and for the record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import redis

from monitor_app import protocol as p
from monitor_app.pubsub_log import append_line, rotate_if_needed
from monitor_app.redis_client import REDIS_ERRORS, text

log = logging.getLogger(__name__)

BACKOFF_MAX = 5.0


class PubsubRecorder:
    def __init__(
        self,
        client_factory: Callable[[], redis.Redis],
        path: Path,
        *,
        max_bytes: int,
        backups: int,
    ) -> None:
        self.client_factory = client_factory
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.running = True
        self.recorded = 0

    def stop(self, *_args) -> None:
        self.running = False

    def record(self, channel: str, data: str) -> bool:
        """Append one message; heartbeats are left out. True if written."""
        if p.is_heartbeat(channel, data):
            return False
        append_line(channel, data, self.path)
        self.recorded += 1
        rotate_if_needed(self.path, self.max_bytes, self.backups)
        return True

    def run(self, *, once: bool = False) -> None:
        """Subscribe and write until stopped; reconnect with backoff."""
        backoff = 0.5
        while self.running:
            try:
                self._session(once=once)
                backoff = 0.5
                if once:
                    return
            except REDIS_ERRORS as exc:
                log.warning("Redis unreachable (%s); retrying in %.1f s", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _session(self, *, once: bool) -> None:
        client = self.client_factory()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.psubscribe(*p.CHANNEL_PATTERNS)
            log.info("recording %s to %s", ", ".join(p.CHANNEL_PATTERNS), self.path)
            while self.running:
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    if once:
                        return
                    continue
                if message["type"] in ("pmessage", "message"):
                    self.record(text(message["channel"]), text(message["data"]))
        finally:
            pubsub.close()
