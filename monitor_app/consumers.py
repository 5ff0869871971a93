"""The one WebSocket of a browser tab. It carries every stream that tab
needs (header, and the tab's own topic), so a tab holds one connection."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from urllib.parse import parse_qs

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError

from monitor_app import protocol as p
from monitor_app import push
from monitor_app.hub import (
    ROLE_OPERATOR,
    ROLE_VIEWER,
    TOPIC_HEADER,
    TOPIC_HEARTBEAT,
    TOPIC_LOGS,
    TOPIC_SERVERS,
    hub,
    pulse_topic,
    topic_pulse,
)
from monitor_app.login_watch import login_holds
from monitor_app.models import OPERATE_PERMISSION
from monitor_app.redis_client import REDIS_ERRORS
from monitor_app.relay import watched_note
from monitor_app.startup import ensure_started
from monitor_app.state import PulseRef

log = logging.getLogger(__name__)

PAGE_TOPICS = {
    "servers": TOPIC_SERVERS,
    "heartbeat": TOPIC_HEARTBEAT,
    "logs": TOPIC_LOGS,
}


def topics_for(query: dict[str, list[str]]) -> set[str]:
    """The topics a page asks for in its WebSocket URL; bad names are dropped."""
    page = (query.get("page") or [""])[0]
    topics = {TOPIC_HEADER}
    if page in PAGE_TOPICS:
        topics.add(PAGE_TOPICS[page])
    elif page == "actions":
        tree = (query.get("tree") or [""])[0]
        shot = (query.get("shot") or [""])[0]
        ref = p.parse_key(p.action_status_key(tree, shot))
        if ref is not None:
            topics.add(pulse_topic(PulseRef(ref.tree, ref.shot)))
    return topics


async def watched_note_quietly(pulses) -> None:
    """Ask the leading reader (another process) to poll these pulses too."""
    try:
        await watched_note(pulses)
    except REDIS_ERRORS:
        pass  # the page shows the outage; the note is repeated later


#: The close code of a socket without a login, or whose login ended (app.js
#: then opens the login page).
CLOSE_LOGGED_OUT = 4401


def session_group(session_key: str) -> str:
    """The channel-layer group of one login's sockets; the key itself is a
    secret and stays out of Redis."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def end_session_sockets(sender: object, request: object, user: object, **kwargs: object) -> None:
    """``user_logged_out``: the login's other tabs, in any console process,
    stop getting live data (they were authorised once, at connect)."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    layer = get_channel_layer()
    if not key or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(session_group(key), {"type": "session.ended"})
    except (*REDIS_ERRORS, RuntimeError) as exc:
        log.warning("could not close the sockets of a login that ended: %s", exc)


#: Where ``ServerSend`` keeps the server's own ``send`` in the scope.
SERVER_SEND = "webmonitor.server_send"


class ServerSend:
    """ASGI middleware, outermost on the WebSocket stack: keeps the server's
    ``send`` in the scope. A push is most of what the console does, to 200
    sockets per change, and the session middleware's wrapper around every
    send (which only ever acts on HTTP responses) cost a quarter of it."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        return await self.app({**scope, SERVER_SEND: send}, receive, send)


class MonitorConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self._send_frame = self.scope.get(SERVER_SEND) or self.base_send
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_LOGGED_OUT)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        role = ROLE_OPERATOR if await user.ahas_perm(OPERATE_PERMISSION) else ROLE_VIEWER
        await self.accept()
        await self._join_session()
        self._login_watch = self._watch_login(user.pk)
        self.topics = topics_for(query)
        hub.add(self, self.topics, role)
        reader = ensure_started()
        pulses = {ref for t in self.topics if (ref := topic_pulse(t)) is not None}
        if reader is not None and reader.leading:
            if reader.header is not None:
                await self.push(push.header_html(reader.header))
            if pulses:
                reader.wake()
        elif pulses:
            await watched_note_quietly(pulses)

    async def disconnect(self, code: int) -> None:
        hub.remove(self)
        watch = getattr(self, "_login_watch", None)
        if watch is not None:
            watch.cancel()
        group = getattr(self, "_session_group", None)
        if group is not None:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except REDIS_ERRORS:
                pass  # the membership expires by itself

    async def _join_session(self) -> None:
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if not key or self.channel_layer is None:
            return
        group = session_group(key)
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except REDIS_ERRORS as exc:  # the socket works; a logout elsewhere will not close it
            log.warning("socket not tied to its login: %s", exc)
            return
        self._session_group = group

    def _watch_login(self, user_pk: object) -> asyncio.Task | None:
        """A logout is told at once (``session_ended``); an expiry, a deleted
        session or a deactivated user is found by looking again now and then."""
        every = settings.WEBMONITOR_LOGIN_CHECK_SECONDS
        if every <= 0:
            return None
        key = getattr(self.scope.get("session"), "session_key", None)

        async def watch() -> None:
            # The first look is spread over the interval, so sockets opened
            # together (a restart, the benchmark) are not checked together.
            await asyncio.sleep(random.uniform(every / 2, every))
            while True:
                try:
                    holds = await login_holds(key, user_pk)
                except DatabaseError as exc:  # not proof the login ended
                    log.warning("could not check a socket's login: %s", exc)
                    holds = True
                if not holds:
                    await self.close(code=CLOSE_LOGGED_OUT)
                    return
                await asyncio.sleep(every)

        return asyncio.get_running_loop().create_task(watch())

    async def session_ended(self, event: dict) -> None:
        await self.close(code=CLOSE_LOGGED_OUT)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen; what they send is ignored."""

    async def push(self, message: str) -> None:
        await self._send_frame({"type": "websocket.send", "text": message})
