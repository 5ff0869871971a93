"""Shared fixtures: a real Redis, users of each role, recorded dispatcher state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.redis_server import RedisServer, start_test_redis

FIXTURES = Path(__file__).parent / "fixtures"
TRANSCRIPT = FIXTURES / "upstream_transcript.jsonl"


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    server = start_test_redis()
    django_settings.REDIS_URL = server.url
    yield server
    server.shutdown()


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
        write_keys(redis_db, snapshot["keys"])
        return snapshot["keys"]

    return load


def write_keys(client, keys: dict) -> None:
    pipe = client.pipeline()
    for name, entry in keys.items():
        pipe.delete(name)
        value = entry["value"]
        if entry["type"] == "hash" and value:
            pipe.hset(name, mapping=value)
        elif entry["type"] == "list" and value:
            pipe.rpush(name, *value)
        elif entry["type"] == "string":
            pipe.set(name, value)
    pipe.execute()


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
