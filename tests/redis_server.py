"""A private redis-server for the tests, on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import redis

from monitor_app.localproc import free_port, redis_server_argv


@dataclass
class RedisServer:
    """A Redis the tests own: started here, or named by TEST_REDIS_URL."""

    url: str
    kind: str  # "redis-server", "external" or "fakeredis"
    process: subprocess.Popen | None = None
    port: int = 0
    workdir: str = ""
    _fake: object = field(default=None, repr=False)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def stop(self) -> None:
        """Stop it (for outage tests); ``start`` brings it back on the same port."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def start(self) -> None:
        if self.kind != "redis-server" or self.process is not None:
            return
        self.process = subprocess.Popen(
            redis_server_argv(
                shutil.which("redis-server") or "redis-server", self.port, self.workdir
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_redis(self.url)

    def shutdown(self) -> None:
        self.stop()
        if self._fake is not None:
            self._fake.shutdown()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def wait_for_redis(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_test_redis() -> RedisServer:
    external = os.environ.get("TEST_REDIS_URL")
    if external:
        wait_for_redis(external)
        return RedisServer(url=external, kind="external")
    if shutil.which("redis-server"):
        return start_private_redis()
    if os.environ.get("CI"):
        raise RuntimeError("CI must test against a real redis-server: none is installed")
    return _start_fakeredis()


def start_private_redis() -> RedisServer:
    """A redis-server of our own, which a test may stop and start again."""
    port = free_port()
    server = RedisServer(
        url=f"redis://127.0.0.1:{port}/0",
        kind="redis-server",
        port=port,
        workdir=tempfile.mkdtemp(prefix="webmonitor-redis-"),
    )
    server.start()
    return server


def _start_fakeredis() -> RedisServer:
    import threading

    from fakeredis import TcpFakeServer

    port = free_port()
    fake = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    url = f"redis://127.0.0.1:{port}/0"
    wait_for_redis(url)
    return RedisServer(url=url, kind="fakeredis", port=port, _fake=fake)
