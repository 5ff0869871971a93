"""What the header of every page says: which Redis, whether it answers, the
current pulse and phase and whether that phase runs, and the watchdog alarm."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from monitor_app.state import PHASE_NONE, ActionRow, PulseRef, ServerRow, phase_progress


@dataclass(frozen=True, slots=True)
class HeaderState:
    redis_location: str
    redis_ok: bool
    redis_error: str = ""
    pulse: PulseRef | None = None
    phase: str = ""
    progress: str = PHASE_NONE
    watchdog_stopped: bool = False
    seconds_without_heartbeat: int = 0

    @property
    def tree(self) -> str:
        return self.pulse.tree if self.pulse else ""

    @property
    def shot(self) -> str:
        return self.pulse.shot if self.pulse else ""


def watchdog_stopped(
    *,
    servers: Iterable[ServerRow],
    tables_built: bool,
    last_heartbeat: float | None,
    watching_since: float,
    now: float,
) -> tuple[bool, int]:
    """Servers are ON, tables were built, yet no HEARTBEAT for too long: the
    dispatcher's watchdog thread has died (PROTOCOL.md)."""
    if not tables_built or not any(s.is_on for s in servers):
        return False, 0
    since = max(last_heartbeat or 0.0, watching_since)
    quiet = now - since
    if quiet <= settings.WEBMONITOR_WATCHDOG_SECONDS:
        return False, 0
    return True, int(quiet)


def header_state(
    *,
    location: str,
    redis_ok: bool,
    redis_error: str = "",
    pulse: PulseRef | None,
    phase: str,
    rows: Iterable[ActionRow],
    last_activity: float | None,
    servers: Iterable[ServerRow],
    last_heartbeat: float | None,
    watching_since: float,
    tables_built: bool,
    now: float,
) -> HeaderState:
    servers = list(servers)
    stopped, quiet = watchdog_stopped(
        servers=servers,
        tables_built=tables_built,
        last_heartbeat=last_heartbeat,
        watching_since=watching_since,
        now=now,
    )
    return HeaderState(
        redis_location=location,
        redis_ok=redis_ok,
        redis_error=redis_error,
        pulse=pulse,
        phase=phase,
        progress=phase_progress(rows, phase, now, last_activity),
        watchdog_stopped=stopped,
        seconds_without_heartbeat=quiet,
    )
