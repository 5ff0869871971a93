"""Sharing one reader between several console processes.

Every web process would otherwise run its own reader, and Redis load would
grow with the number of processes. Instead the processes elect one leader
through a Redis lock; the leader reads Redis and sends each rendered change
once through the channel layer to the group of the other processes, whose
hubs hand it to their sockets. A leader that dies stops renewing the lock
and another process takes over within ``LOCK_SECONDS``. Followers note the
pulses their users look at in a sorted set, so the leader polls those too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid

from channels.layers import get_channel_layer

from monitor_app import console_keys as ck
from monitor_app.aio import honour_cancel
from monitor_app.hub import Hub
from monitor_app.redis_client import REDIS_ERRORS, async_client, text
from monitor_app.state import PulseRef

log = logging.getLogger(__name__)

GROUP = "webmonitor-events"
LOCK_SECONDS = 5.0
WATCH_SECONDS = 30.0
RETRY_SECONDS = 2.0

#: This process, as named in the lock and on relayed events.
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


async def lock_acquire(client=None, identity: str = PROCESS_ID) -> bool:
    """Take the leader's lock, or keep it when it is already ours."""
    client = client or async_client()
    ms = int(LOCK_SECONDS * 1000)
    if await client.set(ck.reader_lock_key(), identity, nx=True, px=ms):
        return True
    return bool(await client.eval(_RENEW, 1, ck.reader_lock_key(), identity, ms))


async def lock_release(client=None, identity: str = PROCESS_ID) -> None:
    client = client or async_client()
    current = await client.get(ck.reader_lock_key())
    if text(current) == identity:
        await client.delete(ck.reader_lock_key())


def relay_sender(identity: str = PROCESS_ID):
    """The leader's side: one group message per batch of changes, whatever
    the number of processes and sockets."""

    async def send(rendered: dict[str, dict[str, str]]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        # A batch's topics travel together, as the local sockets get them.
        event = {"type": "relay.event", "origin": identity, "rendered": rendered}
        try:
            await layer.group_send(GROUP, event)
        except REDIS_ERRORS as exc:
            log.debug("relay send failed: %s", exc)

    return send


async def watched_note(pulses: set[PulseRef], client=None) -> None:
    """Tell the leader which pulses this process's users look at."""
    if not pulses:
        return
    client = client or async_client()
    expires = time.time() + WATCH_SECONDS
    await client.zadd(ck.watched_pulses_key(), {p.key: expires for p in pulses})


async def watched_get(client=None) -> set[PulseRef]:
    """Pulses any process's users look at now (expired notes are dropped)."""
    client = client or async_client()
    key = ck.watched_pulses_key()
    now = time.time()
    pipe = client.pipeline(transaction=False)
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.zrange(key, 0, -1)
    _, names = await pipe.execute()
    pulses = set()
    for name in names:
        tree, _, shot = text(name).partition(":")
        if tree and shot.isdigit():
            pulses.add(PulseRef(tree, shot))
    return pulses


class Follower:
    """A process that does not lead: receives the leader's changes."""

    def __init__(self, hub: Hub, identity: str = PROCESS_ID) -> None:
        self.hub = hub
        self.identity = identity
        self.channel: str | None = None
        self.received = 0

    async def run(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        backoff = 0.5
        while True:
            try:
                await self._listen(layer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis gone: try again
                log.debug("relay listener: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _listen(self, layer) -> None:
        self.channel = await layer.new_channel()
        await layer.group_add(GROUP, self.channel)
        noted = 0.0
        # One receive at a time, kept across the periodic notes (cancelling a
        # receive may drop its message; ``wait_for`` may lose a cancellation).
        receiving: asyncio.Future | None = None
        try:
            while True:
                honour_cancel()
                if time.monotonic() - noted > WATCH_SECONDS / 3:
                    await layer.group_add(GROUP, self.channel)
                    await watched_note(self.hub.watched_pulses())
                    noted = time.monotonic()
                if receiving is None:
                    receiving = asyncio.ensure_future(layer.receive(self.channel))
                done, _ = await asyncio.wait({receiving}, timeout=WATCH_SECONDS / 3)
                if not done:
                    continue
                message, receiving = receiving.result(), None
                if message.get("origin") == self.identity:
                    continue
                self.received += 1
                rendered = message.get("rendered")
                if isinstance(rendered, dict):
                    await self.hub.deliver_many(rendered)
        finally:
            if receiving is not None:
                receiving.cancel()

    async def leave(self) -> None:
        layer = get_channel_layer()
        if layer is not None and self.channel:
            try:
                await layer.group_discard(GROUP, self.channel)
            except Exception:  # noqa: BLE001,S110 - leaving a dead Redis
                pass
