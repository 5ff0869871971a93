"""Starts the process's reader and log tail inside the server's event loop,
on the first connection of any kind, so that plain ``daphne`` is a complete
console; a separate ``run_reader`` worker can replace it (setting
``WEBMONITOR_READER_AUTOSTART=0``)."""

from __future__ import annotations

import asyncio
import logging
import sys

from django.conf import settings

from monitor_app.hub import hub
from monitor_app.logtail import LogTail
from monitor_app.reader import Reader
from monitor_app.relay import Follower

log = logging.getLogger(__name__)

_reader: Reader | None = None
_tasks: list[asyncio.Task] = []


def current_reader() -> Reader | None:
    """The reader of this process, when it runs here and leads."""
    if _reader is None or not _reader.leading or not _tasks or all(t.done() for t in _tasks):
        return None
    return _reader


def ensure_started() -> Reader | None:
    """Start, once per process (and event loop): the log tail; the reader,
    unless a ``run_reader`` worker does the reading; and the listener for a
    leader in another process, when readers are shared."""
    global _reader
    loop = asyncio.get_running_loop()
    if _tasks and not all(t.done() for t in _tasks) and _tasks[0].get_loop() is loop:
        return _reader
    share = settings.WEBMONITOR_READER_SHARED
    tail = LogTail(hub, settings.WEBMONITOR_PUBSUB_LOG)
    _tasks[:] = [loop.create_task(tail.run(), name="webmonitor-logtail")]
    _reader = None
    if settings.WEBMONITOR_READER_AUTOSTART:
        _reader = Reader(hub, elect=share)
        _tasks.append(loop.create_task(_reader.run(), name="webmonitor-reader"))
        log.info("console reader started (poll every %.1f s)", _reader.poll_interval)
    if share or not settings.WEBMONITOR_READER_AUTOSTART:
        _tasks.append(loop.create_task(Follower(hub).run(), name="webmonitor-follower"))
    return _reader


async def stop() -> None:
    for task in _tasks:
        task.cancel()
    if _tasks:
        await asyncio.wait(_tasks, timeout=3.0)
    _tasks.clear()


def start_with_server() -> None:
    """Under daphne, start with the server rather than with the first request,
    so that no DOING or HEARTBEAT before the first visitor is missed."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None:
        # callLater: "when running" callbacks come before the asyncio loop runs.
        reactor.callWhenRunning(reactor.callLater, 0, _start_in_loop)


def _start_in_loop() -> None:
    try:
        ensure_started()
    except RuntimeError:  # no asyncio loop under this reactor: first request starts it
        log.debug("reader left to start with the first request")


class StartReader:
    """ASGI middleware: make sure the reader runs, then pass the call on."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            ensure_started()
        return await self.app(scope, receive, send)
