"""Clients after a Redis restart: the pooled connections are dead, and the
first request on each must not fail because of it."""

from __future__ import annotations

from monitor_app import services
from monitor_app.redis_client import async_client, sync_client


async def test_async_reads_survive_a_redis_restart(private_redis):
    client = async_client()
    assert await client.ping()
    private_redis.stop()
    private_redis.start()
    assert await client.set("K", "1") and await client.get("K") == b"1"


def test_a_command_after_a_redis_restart_is_not_refused(private_redis, db):
    client = sync_client()
    assert client.ping()
    private_redis.stop()
    private_redis.start()
    result = services.pending_print(actor=services.Actor.shell())
    assert result.ok
