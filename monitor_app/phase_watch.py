"""Waiting for a phase to be really over.

The dispatcher's END_PHASE means only "nothing pending right now": it comes
early (dependents still to run), repeatedly, or never (tables not built). So
the watcher follows ``DISPATCH_MONITOR_PUBSUB`` to print each action as it
starts and ends, and decides "over" from the actions' states in Redis: no
action of the phase dispatched or doing, and quiet for a moment (the next
sequence number starts a moment after a DONE). It subscribes *before* the
command is sent, so no message is missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from monitor_app import protocol as p
from monitor_app.redis_client import REDIS_ERRORS, sync_client, text
from monitor_app.services import RedisUnreachable, pulse_rows, unreachable_error
from monitor_app.state import PHASE_NONE, PHASE_OVER, ActionRow, phase_progress

#: Statuses that mean the action did not succeed.
FAILED_STATUSES = frozenset(
    {
        p.STATUS_FAILURE,
        p.STATUS_ABORTED,
        p.STATUS_NOT_EXECUTED,
        p.STATUS_CRASHED,
        p.STATUS_UNKNOWN_ERROR,
        p.UNKNOWN,
    }
)

POLL_SECONDS = 0.5


@dataclass(slots=True)
class PhaseOutcome:
    """How a watched phase ended."""

    over: bool
    timed_out: bool
    rows: list[ActionRow] = field(default_factory=list)
    end_phase_seen: int = 0

    @property
    def failed(self) -> list[ActionRow]:
        """Actions that ran and did not succeed, or could not run (server off)."""
        return [
            r
            for r in self.rows
            if r.state != p.STATE_OFF
            and (r.status in FAILED_STATUSES or r.state == p.STATE_SERVER_OFF)
        ]

    @property
    def not_run(self) -> list[ActionRow]:
        """Actions still waiting: dependents whose condition never held."""
        return [r for r in self.rows if r.state == p.STATE_NOT_DISPATCHED]

    @property
    def succeeded(self) -> list[ActionRow]:
        return [r for r in self.rows if r.status == p.STATUS_SUCCESS]


Message = p.Doing | p.Done | p.EndPhase


class PhaseWatch:
    """Use as a context manager around sending the command:

    ``with PhaseWatch(tree=..., shot=..., phase=...) as watch:``
    ``    services.phase_do(...); outcome = watch.wait(timeout=..., on_message=...)``
    """

    def __init__(self, *, tree: str, shot: int | str, phase: str, settle: float = 1.5):
        self.tree = tree
        self.shot = str(shot)
        self.phase = phase.upper()
        self.settle = settle
        self._client: redis.Redis | None = None
        self._pubsub = None

    def __enter__(self) -> PhaseWatch:
        self._client = sync_client()
        try:
            self._pubsub = self._client.pubsub(ignore_subscribe_messages=False)
            self._pubsub.subscribe(p.MONITOR_PUBSUB)
            # Wait for the confirmation: only then is no message missed.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                msg = self._pubsub.get_message(timeout=0.5)
                if msg and msg.get("type") == "subscribe":
                    break
        except REDIS_ERRORS as exc:
            self.close()
            raise unreachable_error(exc) from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except REDIS_ERRORS:
                pass
            self._pubsub = None

    def _rows(self) -> list[ActionRow]:
        rows = pulse_rows(tree=self.tree, shot=self.shot, client=self._client)
        return [r for r in rows.values() if r.phase.upper() == self.phase]

    def wait(
        self,
        *,
        timeout: float | None = None,
        on_message: Callable[[Message], None] | None = None,
    ) -> PhaseOutcome:
        """Block until the phase is over or ``timeout`` seconds pass."""
        if self._pubsub is None:
            raise RuntimeError("PhaseWatch.wait outside its with block")
        deadline = None if not timeout else time.monotonic() + timeout
        started = False
        ends = 0
        last_activity: float | None = None
        next_poll = 0.0
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return PhaseOutcome(False, True, self._rows(), ends)
            wait_for = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - now)
            try:
                msg = self._pubsub.get_message(timeout=max(wait_for, 0.01))
            except REDIS_ERRORS as exc:
                raise unreachable_error(exc) from exc
            parsed = self._parse(msg)
            if parsed is not None:
                if isinstance(parsed, p.EndPhase):
                    ends += 1
                    next_poll = 0.0  # look now
                else:
                    last_activity = time.time()
                started = True
                if on_message is not None:
                    on_message(parsed)
            if started and time.monotonic() >= next_poll:
                rows = self._rows()
                progress = phase_progress(rows, self.phase, time.time(), last_activity)
                if progress in (PHASE_OVER, PHASE_NONE) and self._settled(last_activity):
                    return PhaseOutcome(True, False, rows, ends)
                next_poll = time.monotonic() + POLL_SECONDS

    def _settled(self, last_activity: float | None) -> bool:
        return last_activity is None or time.time() - last_activity >= self.settle

    def _parse(self, msg: dict | None) -> Message | None:
        if not msg or msg.get("type") != "message":
            return None
        parsed = p.parse_monitor_message(text(msg.get("data")) or "")
        if parsed is None or (parsed.tree, parsed.shot) != (self.tree, self.shot):
            return None
        return parsed


__all__ = ["PhaseOutcome", "PhaseWatch", "RedisUnreachable", "FAILED_STATUSES"]
