"""Fixtures for the command tests: every write a command makes, seen by
Redis MONITOR and parsed argument by argument; the pub/sub log in a
temporary file; the actors."""

from __future__ import annotations

import re
import sys
import threading
import uuid

import pytest
import redis

from monitor_app.services import Actor
from tests.redis_server import free_port

#: Commands that change nothing: left out of what a test compares.
READS = {
    "PING",
    "ECHO",
    "GET",
    "HGET",
    "HGETALL",
    "HMGET",
    "SCAN",
    "LRANGE",
    "LLEN",
    "TYPE",
    "CLIENT",
    "SELECT",
    "INFO",
    "HELLO",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "PSUBSCRIBE",
    "PUNSUBSCRIBE",
    "EXISTS",
    "COMMAND",
    "MONITOR",
    # A script's own commands appear in MONITOR beside it, writes included;
    # the call itself (the console's servers read) is not a write.
    "EVALSHA",
    "EVAL",
    "SCRIPT",
    "RESET",
}

_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}


def _unescape(arg: str) -> str:
    """Undo Redis' quoting of MONITOR arguments (``sdscatrepr``)."""
    out, i = [], 0
    while i < len(arg):
        ch = arg[i]
        if ch == "\\" and i + 1 < len(arg):
            nxt = arg[i + 1]
            if nxt == "x" and i + 3 < len(arg):
                out.append(chr(int(arg[i + 2 : i + 4], 16)))
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class RedisMonitor:
    """Records every command Redis receives until ``stop``."""

    def __init__(self, url: str):
        self.url = url
        self.marker = f"end-of-test-{uuid.uuid4().hex}"
        self.start_marker = f"start-{uuid.uuid4().hex}"
        self.commands: list[list[str]] = []
        self._client = redis.Redis.from_url(url)
        self._monitor = self._client.monitor()
        self._monitor.__enter__()  # MONITOR sent and acknowledged
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        conn = self._monitor.connection
        while True:
            try:
                line = conn.read_response()
            except (redis.ConnectionError, OSError, ValueError):
                return
            if isinstance(line, bytes):
                line = line.decode("utf-8", errors="replace")
            _, _, rest = line.partition("] ")
            args = [_unescape(a) for a in _ARG.findall(rest)]
            if args[:2] == ["ECHO", self.marker]:
                return
            if args[:2] == ["ECHO", self.start_marker]:
                self.commands.clear()
                continue
            if args:
                args[0] = args[0].upper()
                self.commands.append(args)

    def start(self) -> None:
        """Forget what was recorded so far (the test's own setup)."""
        redis.Redis.from_url(self.url).echo(self.start_marker)

    def stop(self) -> list[list[str]]:
        redis.Redis.from_url(self.url).echo(self.marker)
        self._thread.join(timeout=5)
        try:
            self._monitor.__exit__(None, None, None)
        except Exception:  # noqa: BLE001,S110 - a closed monitor connection
            pass
        return self.writes

    @property
    def writes(self) -> list[list[str]]:
        return [c for c in self.commands if c[0] not in READS]


@pytest.fixture
def monitor(redis_db, redis_server):
    """Start recording; ``monitor.stop()`` returns the writes seen."""
    mon = RedisMonitor(redis_server.url)
    yield mon
    if mon._thread.is_alive():
        mon.stop()


@pytest.fixture
def pubsub_log(settings, tmp_path):
    """The pub/sub log file of this test."""
    path = tmp_path / "redis_pubsub.log"
    settings.WEBMONITOR_PUBSUB_LOG = path
    return path


@pytest.fixture
def shell_actor() -> Actor:
    return Actor(username="shelluser", source="shell")


@pytest.fixture
def web_actor(operator) -> Actor:
    return Actor.web(operator)


@pytest.fixture
def redis_down(settings):
    """Point the console at a port where nothing listens."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_TIMEOUT = 0.5
    return settings.REDIS_URL


SITE_SCRIPT = """
import sys, time, pathlib
args = sys.argv[1:]
marker = pathlib.Path(sys.argv[0]).with_name("ran.txt")
marker.write_text(repr(args))
print("site command args:", " ".join(args))
print("to stderr", file=sys.stderr)
mode = pathlib.Path(sys.argv[0]).with_name("mode.txt")
mode = mode.read_text().strip() if mode.exists() else "ok"
if mode == "fail":
    sys.exit(3)
if mode == "slow":
    time.sleep(30)
if mode.startswith("together:"):  # exit 0 only once N runs have started at once
    started = pathlib.Path(sys.argv[0]).with_name("started-" + args[-2])
    started.touch()
    deadline = time.monotonic() + 4
    while len(list(started.parent.glob("started-*"))) < int(mode.partition(":")[2]):
        if time.monotonic() > deadline:
            sys.exit(4)
        time.sleep(0.02)
"""


@pytest.fixture
def site_command(settings, tmp_path):
    """A tiny Python script as the site command; ``ran.txt`` records its
    arguments, ``mode.txt`` (ok / fail / slow) chooses what it does."""
    script = tmp_path / "server_command.py"
    script.write_text(SITE_SCRIPT)
    settings.WEBMONITOR_SERVER_COMMAND = [sys.executable, str(script), "$(id);x"]
    settings.WEBMONITOR_SERVER_COMMAND_TIMEOUT = 5.0

    class Site:
        ran = tmp_path / "ran.txt"
        mode = tmp_path / "mode.txt"

    return Site
