"""The WebSocket: refused without a login, live with one."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from monitor_app import startup
from webmonitor.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")


@database_sync_to_async
def session_cookie(username: str, operator: bool) -> bytes:
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user = User.objects.create_user(username=username, password="pw-12345678")
    user.groups.add(Group.objects.get(name="operators" if operator else "viewers"))
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def connect(path: str, cookie: bytes | None = None, origin=ORIGIN):
    headers = [origin]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected


async def test_anonymous_socket_is_refused(redis_db):
    communicator, connected = await connect("/ws/monitor/?page=servers")
    assert not connected
    await communicator.disconnect()


async def test_foreign_origin_is_refused(redis_db):
    cookie = await session_cookie("vera", operator=False)
    communicator, connected = await connect(
        "/ws/monitor/?page=servers", cookie, origin=(b"origin", b"http://evil.example")
    )
    assert not connected
    await communicator.disconnect()


@pytest.fixture
async def live_reader(redis_db, settings):
    settings.WEBMONITOR_READER_AUTOSTART = True
    settings.WEBMONITOR_POLL_INTERVAL = 0.2
    yield
    await startup.stop()


async def receive_until(communicator, needle: str, timeout: float = 5.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = []
    while loop.time() < deadline:
        try:
            message = await communicator.receive_from(timeout=max(0.05, deadline - loop.time()))
        except TimeoutError:
            break
        seen.append(message)
        if needle in message:
            return message
    raise AssertionError(f"{needle!r} not received; got {seen!r}")


async def test_viewer_gets_live_action_rows(live_reader, redis_db, load_snapshot):
    load_snapshot("do_phase_STORE")
    cookie = await session_cookie("vera", operator=False)
    communicator, connected = await connect("/ws/monitor/?page=actions&tree=DEMO&shot=42", cookie)
    assert connected
    await receive_until(communicator, 'id="wm-status"')  # the header comes first
    await asyncio.sleep(0.5)  # let the reader take the pulse in
    path = "\\DEMO::TOP.DAQ.ADC1:STORE_ACTION"
    redis_db.hset("ACTION_INFO:DEMO:42:DAQ_SERVER", path, "DOING")
    redis_db.publish("DISPATCH_MONITOR_PUBSUB", f"DOING+DEMO+42+DAQ_SERVER+1+{path}+17")
    message = await receive_until(communicator, "ADC1:STORE_ACTION")
    assert "cat-busy" in message and "DOING" in message
    assert 'hx-swap-oob="true"' in message
    assert 'id="summary"' in message
    await communicator.disconnect()


async def test_server_going_off_silently_reaches_the_socket(live_reader, redis_db, load_snapshot):
    load_snapshot("do_phase_INIT")
    cookie = await session_cookie("otto", operator=True)
    communicator, connected = await connect("/ws/monitor/?page=servers", cookie)
    assert connected
    await asyncio.sleep(0.5)
    redis_db.hset("ACTION_SERVER_ACTIVE:CAMERA_SERVER", "1", "OFF")
    message = await receive_until(communicator, "CAMERA_SERVER")
    assert "srv-off" in message
    await communicator.disconnect()


async def test_paths_are_escaped_in_pushed_rows(live_reader, redis_db):
    evil = "\\DEMO::TOP.<script>alert(1)</script>"
    redis_db.hset("ACTION_INFO:DEMO:5:DAQ", evil, "NOT_DISPATCHED")
    redis_db.hset("ACTION_STATUS:DEMO:5", evil, "none")
    redis_db.set("LAST_BUILD_TABLE", '{"tree": "DEMO", "shot": "5"}')
    cookie = await session_cookie("vera", operator=False)
    communicator, connected = await connect("/ws/monitor/?page=actions&tree=DEMO&shot=5", cookie)
    assert connected
    await asyncio.sleep(0.5)
    redis_db.hset("ACTION_INFO:DEMO:5:DAQ", evil, "DOING")
    redis_db.publish("DISPATCH_MONITOR_PUBSUB", f"DOING+DEMO+5+DAQ+1+{evil}+3")
    message = await receive_until(communicator, "alert(1)")
    assert "<script>" not in message and "&lt;script&gt;" in message
    await communicator.disconnect()


async def close_code(communicator) -> int:
    """The code the socket is closed with (header pushes may come first)."""
    while True:
        message = await communicator.receive_output(timeout=3)
        if message["type"] == "websocket.close":
            return message["code"]


async def assert_stays_open(communicator, quiet: float) -> None:
    """Whatever comes until the socket has been quiet for ``quiet`` s is no close."""
    outputs = []
    while not await communicator.receive_nothing(timeout=quiet):
        outputs.append(await communicator.receive_output())
    assert all(o["type"] != "websocket.close" for o in outputs), outputs


async def test_a_logout_closes_the_login_s_other_sockets(redis_db):
    """Authorised once, at connect: a tab left open after its login ended in
    another tab must stop receiving live data."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    @database_sync_to_async
    def logged_in() -> Client:
        user = User.objects.create_user(username="vera", password="pw-12345678")
        user.groups.add(Group.objects.get(name="viewers"))
        client = Client()
        client.force_login(user)
        return client

    client = await logged_in()
    name = settings.SESSION_COOKIE_NAME
    cookie = f"{name}={client.cookies[name].value}".encode()
    communicator, connected = await connect("/ws/monitor/?page=servers", cookie)
    assert connected
    other = await session_cookie("otto", operator=True)
    bystander, connected = await connect("/ws/monitor/?page=servers", other)
    assert connected
    await database_sync_to_async(client.post)("/accounts/logout/")
    assert await close_code(communicator) == 4401
    await assert_stays_open(bystander, quiet=0.3)  # the other login's socket
    await bystander.disconnect()
    await communicator.disconnect()


async def test_a_login_that_expires_closes_its_sockets(redis_db, settings):
    """No logout tells of an expiry: the socket looks at its login again."""
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    settings.WEBMONITOR_LOGIN_CHECK_SECONDS = 0.2
    cookie = await session_cookie("vera", operator=False)
    other = await session_cookie("otto", operator=True)
    communicator, connected = await connect("/ws/monitor/?page=servers", cookie)
    assert connected
    bystander, connected = await connect("/ws/monitor/?page=servers", other)
    assert connected
    key = cookie.decode().partition("=")[2]
    await database_sync_to_async(Session.objects.filter(pk=key).update)(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert await close_code(communicator) == 4401
    await assert_stays_open(bystander, quiet=0.6)  # the unexpired login's, over several checks
    await bystander.disconnect()
    await communicator.disconnect()
