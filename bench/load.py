"""The plant's side of the benchmark: actions going DOING then DONE the way
servers report them (hash writes, then the message), and silent changes
(SERVER_OFF, servers turning OFF) that only a poll can see. Every change is
an ``Event`` with its send time, so clients can say when it reached them."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import redis.asyncio as aredis

from bench.pulse import BenchPulse
from monitor_app import protocol as p
from monitor_app.simulator.plant import Action

TICK = 0.01


@dataclass(slots=True)
class Event:
    """One change written to Redis; ``latencies`` gets one entry per client."""

    ident: int
    dom: str
    state: str
    sent: float
    silent: bool
    latencies: list[float] = field(default_factory=list)


class Load:
    """Drives ``rate`` actions a second through DOING→DONE for ``seconds``,
    and a silent change every ``silent_every`` seconds on average."""

    def __init__(
        self,
        client: aredis.Redis,
        pulse: BenchPulse,
        *,
        rate: float = 100.0,
        silent_every: float = 0.25,
        server_off_every: float = 5.0,
        seed: int = 7,
    ) -> None:
        self.client = client
        self.pulse = pulse
        self.rate = rate
        self.silent_every = silent_every
        self.server_off_every = server_off_every
        self.rng = random.Random(seed)
        runnable = pulse.runnable(pulse.phase)
        self.rng.shuffle(runnable)
        self.pool = runnable
        # Silent changes touch actions of another phase, so they never race
        # an announced change of the same row.
        others = [a for a in pulse.actions if a.on and a.phase != pulse.phase]
        self.silent_pool = self.rng.sample(others, min(len(others), 400))
        self.silent_off: list[Action] = []
        self.next_index = 0
        self.running: set[str] = set()
        self.done_heap: list[tuple[float, int, Action]] = []
        self.commands: Counter[str] = Counter()
        self.current: dict[tuple[str, str], Event] = {}
        self.events: list[Event] = []
        self.servers_off: list[str] = []
        self._seq = 0
        self._tie = itertools.count()

    def lookup(self, dom: str, state: str) -> Event | None:
        """The latest change that set this row to this state."""
        return self.current.get((dom, state))

    def _event(self, action: Action, state: str, sent: float, silent: bool) -> None:
        self._seq += 1
        event = Event(self._seq, self.pulse.dom(action.path), state, sent, silent)
        self.current[(event.dom, state)] = event
        self.events.append(event)

    async def run(self, seconds: float) -> None:
        started = time.time()
        ends = started + seconds
        starts_done = 0
        next_silent = started + self.silent_every / 2
        next_server = started + self.server_off_every / 2
        while True:
            now = time.time()
            if now >= ends and not self.done_heap:
                break
            pipe = self.client.pipeline(transaction=False)
            pending: list[tuple[Action, str, bool]] = []
            if now < ends:
                due = int((now - started) * self.rate) - starts_done
                for _ in range(max(0, due)):
                    action = self._next_action()
                    if action is None:
                        break
                    starts_done += 1
                    self._doing(pipe, action)
                    pending.append((action, p.STATE_DOING, False))
                    heapq.heappush(
                        self.done_heap,
                        (now + self.rng.uniform(0.2, 1.5), next(self._tie), action),
                    )
            while self.done_heap and self.done_heap[0][0] <= now:
                _, _, action = heapq.heappop(self.done_heap)
                self._done(pipe, action)
                pending.append((action, p.STATE_DONE, False))
            if now < ends and now >= next_silent:
                # At random times: a fixed cadence locks to the poll's, and
                # the figure then depends on where the two started.
                next_silent += self.rng.uniform(0.5, 1.5) * self.silent_every
                change = self._silent(pipe)
                if change is not None:
                    pending.append(change)
            if now < ends and now >= next_server:
                next_server += self.server_off_every
                self._server_toggle(pipe)
            if pipe.command_stack:
                sent = time.time()
                for action, state, silent in pending:
                    self._event(action, state, sent, silent)
                await pipe.execute()
            await asyncio.sleep(TICK)

    def _next_action(self) -> Action | None:
        for _ in range(len(self.pool)):
            action = self.pool[self.next_index % len(self.pool)]
            self.next_index += 1
            if action.path not in self.running:
                self.running.add(action.path)
                return action
        return None

    def _count(self, *names: str) -> None:
        self.commands.update(names)

    def _doing(self, pipe, action: Action) -> None:
        t, s = self.pulse.tree, self.pulse.shot
        pipe.hset(p.action_info_key(t, s, action.server), action.path, p.STATE_DOING)
        pipe.hset(p.action_status_key(t, s), action.path, p.STATUS_RUNNING)
        pipe.publish(
            p.MONITOR_PUBSUB, p.doing_message(t, s, action.server, "1", action.path, action.nid)
        )
        self._count("hset", "hset", "publish")

    def _done(self, pipe, action: Action) -> None:
        t, s = self.pulse.tree, self.pulse.shot
        status = p.STATUS_FAILURE if action.result == "failure" else p.STATUS_SUCCESS
        pipe.hset(p.action_info_key(t, s, action.server), action.path, p.STATE_DONE)
        pipe.hset(p.action_status_key(t, s), action.path, status)
        pipe.publish(
            p.MONITOR_PUBSUB,
            p.done_message(t, s, action.server, "1", action.path, action.nid, status),
        )
        self._count("hset", "hset", "publish")
        self.running.discard(action.path)

    def _silent(self, pipe) -> tuple[Action, str, bool] | None:
        """Mark an action SERVER_OFF, or put an earlier one back, without a word."""
        t, s = self.pulse.tree, self.pulse.shot
        if self.silent_off and (len(self.silent_off) > 20 or self.rng.random() < 0.4):
            action = self.silent_off.pop(0)
            state, status = p.STATE_NOT_DISPATCHED, p.STATUS_BUILT
            self.silent_pool.append(action)
        elif self.silent_pool:
            action = self.silent_pool.pop(0)
            state, status = p.STATE_SERVER_OFF, p.STATUS_NOT_EXECUTED
            self.silent_off.append(action)
        else:
            return None
        pipe.hset(p.action_info_key(t, s, action.server), action.path, state)
        pipe.hset(p.action_status_key(t, s), action.path, status)
        self._count("hset", "hset")
        return action, state, True

    def _server_toggle(self, pipe) -> None:
        """A server class goes OFF (its heartbeat stopped); the last one comes back."""
        if self.servers_off:
            ident = self.servers_off.pop()
            pipe.hset(p.server_active_key(ident), "1", p.SERVER_ON)
        else:
            ident = self.rng.choice(sorted(self.pulse.live_ids))
            self.servers_off.append(ident)
            pipe.hset(p.server_active_key(ident), "1", p.SERVER_OFF)
        self._count("hset")

    def stop_tracking(self) -> None:
        """No more arrivals count: later copies of a row are not this run's."""
        self.current.clear()

    async def restore(self) -> None:
        """Leave the plant as found, so the next point starts from the same state."""
        t, s = self.pulse.tree, self.pulse.shot
        pipe = self.client.pipeline(transaction=False)
        for ident in self.servers_off:
            pipe.hset(p.server_active_key(ident), "1", p.SERVER_ON)
            self._count("hset")
        self.servers_off.clear()
        for action in self.silent_off:
            pipe.hset(p.action_info_key(t, s, action.server), action.path, p.STATE_NOT_DISPATCHED)
            pipe.hset(p.action_status_key(t, s), action.path, p.STATUS_BUILT)
            self._count("hset", "hset")
            self.silent_pool.append(action)
        self.silent_off.clear()
        if pipe.command_stack:
            await pipe.execute()
