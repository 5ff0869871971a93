"""Fixtures for the simulator tests: a running simulation on the test Redis,
a recorder of every pub/sub message and of sampled key changes (the way the
recorded transcript was made), and small client helpers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from monitor_app import protocol as p
from monitor_app.simulator.plant import Plant, load_plant
from monitor_app.simulator.runner import Simulation, default_servers
from monitor_app.simulator.runtime import SimConfig

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_PLANT = FIXTURES / "demo_tree.json"
#: Ten times faster than real time: the 20 s action takes 2 s.
SCALE = 0.1
WAIT = 15.0  # upper bound for any single wait: a hang fails, it never blocks


def wait_until(predicate: Callable[[], object], timeout: float = WAIT, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


class Recorder:
    """``PSUBSCRIBE *`` plus a sampler of every key (ACTION_LOG left out, as
    in the transcript), in background threads."""

    def __init__(self, url: str, sample_every: float) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.messages: list[tuple[str, str]] = []
        self.changes: list[tuple[str, str, str | None, object]] = []  # key, type, field, new
        self.sample_every = sample_every
        self._stop = threading.Event()
        self._pubsub = self.client.pubsub()
        self._pubsub.psubscribe("*")
        wait_until(lambda: self._pubsub.get_message(timeout=0.1), what="psubscribe")
        self._last: dict[str, tuple[str, object]] = {}
        self.samples = 0
        self._threads = [
            threading.Thread(target=self._listen, daemon=True),
            threading.Thread(target=self._sample, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.05)
            if message and message["type"] == "pmessage":
                self.messages.append((message["channel"], message["data"]))

    def snapshot(self) -> dict[str, tuple[str, object]]:
        keys = sorted(self.client.scan_iter(count=1000))
        pipe = self.client.pipeline()
        for key in keys:
            pipe.type(key)
        types = pipe.execute()
        pipe = self.client.pipeline()
        for key, kind in zip(keys, types, strict=True):
            if kind == "hash":
                pipe.hgetall(key)
            elif kind == "list":
                pipe.lrange(key, 0, -1)
            else:
                pipe.get(key)
        values = pipe.execute()
        return {k: (t, v) for k, t, v in zip(keys, types, values, strict=True)}

    def _sample(self) -> None:
        while not self._stop.wait(self.sample_every):
            try:
                current = self.snapshot()
            except redis.RedisError:
                continue
            for key, (kind, value) in current.items():
                if key.startswith(p.ACTION_LOG + ":"):
                    continue
                old = self._last.get(key)
                if kind == "hash":
                    before = old[1] if old and old[0] == "hash" else {}
                    for field, new in value.items():
                        if before.get(field) != new:
                            self.changes.append((key, kind, field, new))
                elif old is None or old[1] != value:
                    self.changes.append((key, kind, None, value))
            self._last = current
            self.samples += 1

    def settle(self) -> None:
        """Wait for a sample taken wholly after this call, as the recording
        took a snapshot at the end of each step: a value that a step leaves
        is then seen however briefly the next step lets it last."""
        start = self.samples
        wait_until(lambda: self.samples >= start + 2, what="a fresh sample")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self._pubsub.close()

    def count(self, channel: str, predicate: Callable[[str], bool] = lambda d: True) -> int:
        return sum(1 for c, d in list(self.messages) if c == channel and predicate(d))

    def monitor(self, prefix: str) -> int:
        return self.count(p.MONITOR_PUBSUB, lambda d: d.startswith(prefix))


@pytest.fixture
def fixture_plant() -> Plant:
    return load_plant(FIXTURE_PLANT)


def simulations(default_plant: Plant):
    """Start simulations (of ``default_plant`` unless told); yields the
    starter, then stops every one it started."""
    started: list[Simulation] = []

    def start(
        plant: Plant | None = None, faults: tuple[str, ...] = (), **kwargs: object
    ) -> Simulation:
        plant = plant or default_plant
        kwargs.setdefault("servers", default_servers(plant))
        sim = Simulation(plant, SimConfig(SCALE, frozenset(faults)), **kwargs)
        started.append(sim)
        sim.start()
        assert sim.wait_ready(), "simulation did not subscribe"
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def simulate(redis_db, fixture_plant):
    """Start simulations on the test Redis; all are stopped afterwards."""
    yield from simulations(fixture_plant)


@pytest.fixture
def recorder(redis_server, redis_db):
    rec = Recorder(redis_server.url, sample_every=0.2 * SCALE)
    yield rec
    rec.stop()


def command(client: redis.Redis, message: str) -> None:
    client.publish(p.DISPATCHER_COMMANDS, message)


def start_pulse(client: redis.Redis, tree: str = "DEMO", shot: int = 42) -> None:
    """create pulse and build tables, as the command-line tool sends them."""
    client.hset(p.DISPATCH_DEFAULT, mapping={"TREE": tree, "SHOT": shot})
    command(client, p.create_pulse_message(tree, shot))
    wait_until(lambda: client.hget(p.DISPATCH_INFO, p.DISPATCH_INFO_SHOT) == str(shot))
    command(client, p.build_tables_message(tree, shot))
    wait_until(
        lambda: p.parse_last_build_table(client.get(p.LAST_BUILD_TABLE)) == (tree, str(shot))
    )


def state(client: redis.Redis, path: str, ident: str, shot: int = 42) -> str | None:
    return client.hget(p.action_info_key("DEMO", shot, ident), path)


def status(client: redis.Redis, path: str, shot: int = 42) -> str | None:
    return client.hget(p.action_status_key("DEMO", shot), path)
