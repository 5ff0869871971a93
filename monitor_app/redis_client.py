"""The only place Redis clients are made: one pool per process and kind,
every command bounded by a timeout, so a lost Redis never hangs a request."""

from __future__ import annotations

import asyncio
import weakref
from functools import lru_cache
from urllib.parse import urlsplit

import redis
import redis.asyncio as aredis
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff


def redis_location(url: str | None = None) -> str:
    """``HOST:PORT`` of the Redis being watched, without any password."""
    parts = urlsplit(url or settings.REDIS_URL)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 6379}"


def _options() -> dict:
    timeout = settings.REDIS_TIMEOUT
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 15,
        "decode_responses": False,
    }


@lru_cache(maxsize=4)
def _sync_pool(url: str) -> redis.ConnectionPool:
    return redis.ConnectionPool.from_url(url, **_options())


def sync_client() -> redis.Redis:
    """A client for views and commands; bytes in, bytes out (``text`` decodes)."""
    return redis.Redis(connection_pool=_sync_pool(settings.REDIS_URL))


# Async connections belong to the loop that made them: one pool per loop.
_async_pools: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, aredis.ConnectionPool]
] = weakref.WeakKeyDictionary()


def async_client() -> aredis.Redis:
    """A client for async code, from the running event loop's pool."""
    pools = _async_pools.setdefault(asyncio.get_running_loop(), {})
    url = settings.REDIS_URL
    pool = pools.get(url)
    if pool is None:
        pool = pools[url] = aredis.ConnectionPool.from_url(url, **_options(), **_ONE_RETRY)
    return aredis.Redis(connection_pool=pool)


# After a Redis restart every pooled async connection is dead and the pool
# does not always notice at checkout: without one retry on a new connection,
# the first request on each failed (a 503 page just after Redis came back).
# The async clients read, or write what is safe twice (the reader's stamps).
# Not on a timeout: a frozen Redis would make every read wait twice as long.
_ONE_RETRY = {"retry": AsyncRetry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))}


def async_pubsub_client() -> aredis.Redis:
    """A dedicated client for subscriptions: no read timeout, since a quiet
    channel is not a dead Redis (health checks find a dead one)."""
    options = _options()
    options["socket_timeout"] = None
    return aredis.Redis.from_url(settings.REDIS_URL, **options)


def text(value: bytes | str | None) -> str | None:
    """Decode what Redis holds without ever failing on bad bytes."""
    if value is None or isinstance(value, str):
        return value
    return value.decode("utf-8", errors="replace")


#: What "Redis is unreachable" looks like. A ``ResponseError`` (a key of the
#: wrong type, say) is bad data, not an outage, and is not in here.
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


def sync_pubsub_client() -> redis.Redis:
    """A client for a blocking subscriber: reads wait for messages, not for
    the command timeout; connecting is still bounded."""
    options = _options()
    options["socket_timeout"] = None
    options["socket_keepalive"] = True
    return redis.Redis.from_url(settings.REDIS_URL, **options)
