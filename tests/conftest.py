"""Shared fixtures: a real Redis, users of each role, recorded dispatcher state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from monitor_app.recording import snapshot_write
from tests.redis_server import RedisServer, start_test_redis

pytest_plugins = ["tests.cmd_fixtures", "tests.sim_fixtures"]

FIXTURES = Path(__file__).parent / "fixtures"
TRANSCRIPT = FIXTURES / "upstream_transcript.jsonl"


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    server = start_test_redis()
    django_settings.REDIS_URL = server.url
    yield server
    server.shutdown()


@pytest.fixture
def private_redis(redis_server: RedisServer):
    """A Redis of this test's own, to stop and start (outage tests); the
    settings point at it for the test's length."""
    import shutil

    from tests.redis_server import start_private_redis

    if not shutil.which("redis-server"):
        pytest.skip("outage tests need a redis-server binary")
    server = start_private_redis()
    django_settings.REDIS_URL = server.url
    yield server
    server.shutdown()
    django_settings.REDIS_URL = redis_server.url


@pytest.fixture
def redis_db(redis_server: RedisServer):
    """A decoded client on an empty database of the test Redis."""
    redis_server.start()  # a test may have stopped it
    django_settings.REDIS_URL = redis_server.url
    client = redis_server.client()
    client.flushdb()
    yield client
    try:
        client.flushdb()
    except Exception:  # noqa: BLE001,S110 - the test may have left Redis down
        pass


@pytest.fixture(scope="session")
def transcript() -> list[dict]:
    with TRANSCRIPT.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def load_snapshot(redis_db, transcript):
    """Write the recorded keys after a named step into Redis."""

    def load(step: str) -> dict:
        snapshot = next(r for r in transcript if r["kind"] == "snapshot" and r["step"] == step)
        snapshot_write(redis_db, snapshot["keys"])
        return snapshot["keys"]

    return load


def _make_user(django_user_model, username: str, operator: bool):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username=username, password="pw-" + username)
    if operator:
        user.groups.add(Group.objects.get(name="operators"))
    else:
        user.groups.add(Group.objects.get(name="viewers"))
    return user


@pytest.fixture
def viewer(db, django_user_model):
    return _make_user(django_user_model, "vera", operator=False)


@pytest.fixture
def operator(db, django_user_model):
    return _make_user(django_user_model, "otto", operator=True)


@pytest.fixture
def viewer_client(viewer):
    from django.test import Client

    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def operator_client(operator):
    from django.test import Client

    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture(scope="module")
def live_console(redis_server):
    """daphne serving the console on a free port, against the test Redis;
    stopped after its module, so its reader writes nothing into other tests."""
    from tests.browser import start_console

    console = start_console(redis_server.url)
    yield console
    console.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Playwright (never a downloaded one).
    Module-scoped: Playwright's sync API holds an event loop while it runs,
    which the asyncio tests of other modules must not find."""
    import os

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            raise RuntimeError("CI must run the browser tests: /usr/bin/chromium is missing")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, which Django
    # would take for async code calling the ORM.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    yield page
    context.close()
