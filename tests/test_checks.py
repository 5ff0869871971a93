"""Configuration errors are reported clearly by ``manage.py check``."""

from __future__ import annotations

import pytest

from monitor_app.checks import check_intervals, check_redis_url


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/0", "rediss://:secret@redis.example.org:6380/2", "unix:///tmp/r.sock"],
)
def test_good_redis_urls(settings, url):
    settings.REDIS_URL = url
    assert check_redis_url() == []


@pytest.mark.parametrize("url", ["http://x", "127.0.0.1:6379", "redis://host:notaport", "redis://"])
def test_bad_redis_urls(settings, url):
    settings.REDIS_URL = url
    (error,) = check_redis_url()
    assert error.id == "monitor_app.E001" and url in error.msg


def test_intervals_must_be_positive(settings):
    settings.WEBMONITOR_POLL_INTERVAL = 0
    assert [e.id for e in check_intervals()] == ["monitor_app.E002"]


def test_redis_location_hides_the_password(settings):
    from monitor_app.redis_client import redis_location

    assert redis_location("rediss://user:secret@db.example.org:6380/1") == "db.example.org:6380"
    assert "secret" not in redis_location("redis://:secret@localhost")
