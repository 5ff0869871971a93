"""Keeps a plant moving for the demo: create pulse, build tables, every
phase, next shot, sent as a client sends them (DISPATCH_DEFAULT, then the
pub/sub commands), so the console sees exactly what an operator would cause.

A shot interrupted by a Redis restart or by the dispatcher going away (it
quit, or its process is being restarted) is given up, and the cycle goes on
with a fresh shot once a dispatcher listens again: the interrupted one
would never end.
"""

from __future__ import annotations

import logging
import threading
import time

from monitor_app import protocol as p
from monitor_app.redis_client import REDIS_ERRORS, sync_client, text
from monitor_app.simulator.plant import Plant, Tree
from monitor_app.simulator.runtime import Backoff, RedisRestarts, SimConfig

log = logging.getLogger("monitor_app.simulator.cycle")

PAUSE_S = 2.0  # between two steps, before time scaling
PHASE_CAP_S = 120.0  # longest wait for one phase, before time scaling
LISTENER_WAIT_S = 60.0  # longest wait for a dispatcher to listen (real seconds)
LISTENER_POLL_S = 0.2


class ShotLost(Exception):
    """The shot cannot finish: Redis restarted or the dispatcher went away."""


class Cycle:
    def __init__(
        self, plant: Plant, config: SimConfig, tree: str | None = None, first_shot: int = 0
    ) -> None:
        self.plant = plant
        self.config = config
        self.tree: Tree = plant.trees[tree] if tree else next(iter(plant.trees.values()))
        self.first_shot = first_shot
        self.stop_event = threading.Event()
        self.restarts = RedisRestarts("cycle")
        self._started: int | None = None  # the last shot whose create pulse went out
        #: A shot was given up: its sequence may still run in the dispatcher,
        #: which would refuse the next shot's first phase.
        self._abandoned = False

    def run(self) -> None:
        backoff = Backoff("cycle")
        shot = self.first_shot or None
        while not self.stop_event.is_set():
            try:
                if shot is None:
                    shot = self._next_shot()
                self._one_shot(shot)
                backoff.ok()
            except ShotLost as exc:
                backoff.ok()  # it was Redis that told
                self._abandoned = True
                log.warning("cycle: shot %s lost (%s); going on with a fresh shot", shot, exc)
            except REDIS_ERRORS as exc:
                self._abandoned = True
                self.stop_event.wait(backoff.failed(exc))
            if shot is not None and shot == self._started:
                shot += 1  # never reuse a shot that may have started

    def _check(self, client) -> None:
        """Give the shot up when it can no longer end."""
        if self.restarts.check(client):
            raise ShotLost("Redis restarted")

    @staticmethod
    def _listeners(client) -> int:
        # NUMSUB counts channel subscribers only: the console's and the
        # recorder's pattern subscriptions are not dispatchers.
        return int(client.pubsub_numsub(p.DISPATCHER_COMMANDS)[0][1])

    def _send(self, client, message: str) -> None:
        """Publish a command once a dispatcher listens (just started, or
        resubscribing after a Redis restart), so that it is not lost."""
        self._check(client)
        deadline = time.monotonic() + LISTENER_WAIT_S
        waited = False
        while not self.stop_event.is_set() and self._listeners(client) < 1:
            if time.monotonic() > deadline:
                log.warning("cycle: no dispatcher listens; sending %s anyway", message)
                break
            waited = True
            self.stop_event.wait(LISTENER_POLL_S)
        if waited:
            self._check(client)
        client.publish(p.DISPATCHER_COMMANDS, message)

    def _pause(self, factor: float = 1.0) -> bool:
        return self.stop_event.wait(self.config.seconds(PAUSE_S * factor))

    def _next_shot(self) -> int:
        value = text(sync_client().hget(p.DISPATCH_DEFAULT, p.DISPATCH_DEFAULT_SHOT))
        return int(value) + 1 if value and value.isdigit() else 1001

    def _one_shot(self, shot: int) -> None:
        client = sync_client()
        name = self.tree.name
        log.info("cycle: shot %s of %s", shot, name)
        client.hset(
            p.DISPATCH_DEFAULT,
            mapping={p.DISPATCH_DEFAULT_TREE: name, p.DISPATCH_DEFAULT_SHOT: shot},
        )
        if self._abandoned:
            log.info("cycle: aborting what is left of the shot given up")
            self._send(client, p.dispatcher_command_message(p.CMD_ABORT))
            self._abandoned = False
        self._send(client, p.create_pulse_message(name, shot))
        self._started = shot
        if self._pause(0.5):
            return
        self._send(client, p.build_tables_message(name, shot))
        if self._pause():
            return
        for phase in self.tree.phases():
            self._send(client, p.do_phase_message(name, shot, phase))
            if not self._wait_phase(shot, phase) and not self.stop_event.is_set():
                # What an operator does with a stuck sequence (a completion
                # lost while Redis was away): without it the dispatcher
                # refuses every later phase as "already in progress".
                log.info("cycle: aborting the sequence of %s %s %s", name, shot, phase)
                self._send(client, p.dispatcher_command_message(p.CMD_ABORT))
            if self._pause():
                return
        self._pause(2)

    def _wait_phase(self, shot: int, phase: str) -> bool:
        """Wait for END_PHASE and then for quiet (nothing dispatched or
        doing in the phase), aborting the actions the plant marks
        ``cycle_abort_after`` once they ran that long; whether END_PHASE came."""
        client = sync_client()
        name = self.tree.name
        actions = [a for a in self.tree.actions if a.on and a.phase == phase]
        to_abort = {a.path: a for a in actions if a.cycle_abort_after is not None}
        started: dict[str, float] = {}
        aborted: set[str] = set()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(p.MONITOR_PUBSUB)
        ended = False
        quiet_since: float | None = None
        deadline = time.monotonic() + self.config.seconds(PHASE_CAP_S)
        try:
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                message = pubsub.get_message(timeout=self.config.seconds(0.5))
                self._check(client)
                if self._listeners(client) < 1:
                    raise ShotLost("the dispatcher went away")
                if message and message["type"] == "message":
                    parsed = p.parse_monitor_message(text(message["data"]) or "")
                    if isinstance(parsed, p.EndPhase) and parsed.shot == str(shot):
                        ended = True
                states = self._states(shot, {a.server for a in actions})
                busy = [
                    a.path
                    for a in actions
                    if states.get(a.path) in (p.STATE_DISPATCHED, p.STATE_DOING)
                ]
                now = time.monotonic()
                for path in busy:
                    if path in to_abort and path not in aborted:
                        since = started.setdefault(path, now)
                        if now - since >= self.config.seconds(to_abort[path].cycle_abort_after):
                            ident = to_abort[path].server
                            client.publish(p.server_channel(ident), p.abort_message(path))
                            aborted.add(path)
                if ended and not busy:
                    quiet_since = quiet_since or now
                    if now - quiet_since >= self.config.seconds(1.0):
                        return True
                else:
                    quiet_since = None
            if not ended:
                log.info("cycle: %s %s %s did not end in time; going on", name, shot, phase)
        finally:
            pubsub.close()
        return ended

    def _states(self, shot: int, idents: set[str]) -> dict[str, str]:
        client = sync_client()
        states: dict[str, str] = {}
        for ident in idents:
            for field, value in client.hgetall(
                p.action_info_key(self.tree.name, shot, ident)
            ).items():
                states[text(field) or ""] = text(value) or ""
        return states
