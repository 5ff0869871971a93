"""The console's picture of the dispatcher: plain rows built from what Redis
returned. Pure functions only, so the page views (sync) and the reader
(async) build exactly the same rows from the same hashes."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from monitor_app import protocol as p
from monitor_app.redis_client import text

Hash = Mapping[str, str]


def decode_hash(raw: object) -> dict[str, str]:
    """A hash as Redis returned it (bytes, or an error for a wrong type) made
    into text; anything that is not a hash reads as empty."""
    if not isinstance(raw, dict):
        return {}
    return {text(k): text(v) for k, v in raw.items()}


def dom_id(prefix: str, *parts: str) -> str:
    """A stable HTML id for a row: names hold ``\\``, ``:`` and ``.``."""
    digest = hashlib.blake2s("\x1f".join(parts).encode(), digest_size=8).hexdigest()
    return f"{prefix}-{digest}"


@dataclass(frozen=True, slots=True)
class PulseRef:
    tree: str
    shot: str

    @property
    def key(self) -> str:
        return f"{self.tree}:{self.shot}"

    @property
    def shot_number(self) -> int:
        return int(self.shot)

    def __str__(self) -> str:
        return f"{self.tree} {self.shot}"


@dataclass(frozen=True, slots=True)
class ServerRow:
    ident: str
    server_id: str
    active: str  # ON, OFF or unknown
    ip: str
    doing: str
    heartbeat: str
    queued: int = 0
    heartbeat_seen: float | None = None
    heartbeat_advanced: float | None = None

    @property
    def dom_id(self) -> str:
        return dom_id("srv", self.ident, self.server_id)

    @property
    def is_on(self) -> bool:
        return self.active == p.SERVER_ON

    @property
    def key(self) -> str:
        return f"{self.ident}:{self.server_id}"

    def is_stale(self, now: float, bound: float) -> bool:
        """ON, yet its heartbeat counter has not moved for longer than ``bound``."""
        return (
            self.is_on
            and self.heartbeat_advanced is not None
            and now - self.heartbeat_advanced > bound
        )


def server_rows(
    ident: str,
    active: Hash,
    ip: Hash,
    doing: Hash,
    heartbeat: Hash,
    queued: int = 0,
    seen: Hash | None = None,
    advanced: Hash | None = None,
) -> list[ServerRow]:
    """One row per server id of a class, ids taken from ``ACTION_SERVER_ACTIVE``."""
    seen = seen or {}
    advanced = advanced or {}
    rows = []
    for server_id in sorted(active, key=_id_order):
        value = active[server_id]
        rows.append(
            ServerRow(
                ident=ident,
                server_id=server_id,
                active=value if value in (p.SERVER_ON, p.SERVER_OFF) else p.UNKNOWN,
                ip=ip.get(server_id, ""),
                doing=doing.get(server_id, ""),
                heartbeat=heartbeat.get(server_id, ""),
                queued=queued,
                heartbeat_seen=_float(seen.get(f"{ident}:{server_id}")),
                heartbeat_advanced=_advanced_time(advanced.get(f"{ident}:{server_id}")),
            )
        )
    return rows


def sort_servers(rows: Iterable[ServerRow]) -> list[ServerRow]:
    """ON first, then by class name and id."""
    return sorted(rows, key=lambda r: (not r.is_on, r.ident, _id_order(r.server_id)))


def _id_order(server_id: str) -> tuple[int, str]:
    return (int(server_id), "") if server_id.isdigit() else (2**63, server_id)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _advanced_time(value: str | None) -> float | None:
    if not value:
        return None
    return _float(value.rpartition(" ")[2])


@dataclass(frozen=True, slots=True)
class ActionRow:
    tree: str
    shot: str
    server: str
    path: str
    state: str  # a known state or "unknown"
    status: str  # a known status or "unknown"
    phase: str
    raw_state: str = ""
    raw_status: str = ""
    doing_at: float | None = None
    done_at: float | None = None
    queued: bool = False

    @property
    def dom_id(self) -> str:
        return dom_id("act", self.tree, self.shot, self.path)

    @property
    def category(self) -> str:
        return p.action_category(self.state, self.status)

    @property
    def duration(self) -> float | None:
        """Seconds from DOING to DONE as the console saw them; while running,
        ``None`` (the template shows the start instead)."""
        if self.doing_at is None or self.done_at is None or self.done_at < self.doing_at:
            return None
        return self.done_at - self.doing_at

    @property
    def is_running(self) -> bool:
        return self.state in (p.STATE_DISPATCHED, p.STATE_DOING)

    @property
    def is_off(self) -> bool:
        return self.state in (p.STATE_OFF, p.STATE_SERVER_OFF)


def action_rows(
    tree: str,
    shot: str,
    info_by_ident: Mapping[str, Hash],
    status: Hash,
    phase: Hash,
    server: Hash,
    doing_at: Hash | None = None,
    done_at: Hash | None = None,
    queued_paths: Iterable[str] = (),
) -> dict[str, ActionRow]:
    """Every action of a pulse: the paths of every hash, so an action known
    only to one of them still shows (with what is missing as unknown)."""
    state_of: dict[str, str] = {}
    ident_of: dict[str, str] = {}
    for ident, states in info_by_ident.items():
        for path, state in states.items():
            state_of[path] = state
            ident_of[path] = ident
    doing_at = doing_at or {}
    done_at = done_at or {}
    queued = set(queued_paths)
    paths = set(state_of) | set(status) | set(phase) | set(server)
    return {
        path: action_row(
            tree,
            shot,
            path,
            raw_state=state_of.get(path, ""),
            ident=ident_of.get(path, ""),
            raw_status=status.get(path, ""),
            phase=phase.get(path, ""),
            server=server.get(path, ""),
            doing_at=doing_at.get(path),
            done_at=done_at.get(path),
            queued=path in queued,
        )
        for path in paths
    }


def action_row(
    tree: str,
    shot: str,
    path: str,
    *,
    raw_state: str,
    ident: str,
    raw_status: str,
    phase: str,
    server: str,
    doing_at: str | None,
    done_at: str | None,
    queued: bool,
) -> ActionRow:
    """One action from its fields in each hash (``ident``: the class whose
    ``ACTION_INFO`` hash holds it); shared by full and incremental reads."""
    return ActionRow(
        tree=tree,
        shot=shot,
        server=server or ident or p.UNKNOWN,
        path=path,
        state=p.known_state(raw_state),
        status=p.known_status(raw_status),
        phase=phase,
        raw_state=raw_state,
        raw_status=raw_status,
        doing_at=_float(doing_at),
        done_at=_float(done_at),
        queued=queued,
    )


@dataclass(slots=True)
class Summary:
    """The counts of PROTOCOL.md, each counted from the actual rows."""

    total: int = 0
    active: int = 0
    waiting: int = 0
    dispatched: int = 0
    doing: int = 0
    done: int = 0
    success: int = 0
    failed: int = 0
    aborted: int = 0
    crashed: int = 0
    not_executed: int = 0
    off: int = 0
    server_off: int = 0
    unknown: int = 0
    queued: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SUMMARY_FIELDS}


SUMMARY_FIELDS = (
    "total",
    "active",
    "waiting",
    "dispatched",
    "doing",
    "done",
    "success",
    "failed",
    "aborted",
    "crashed",
    "not_executed",
    "off",
    "server_off",
    "unknown",
    "queued",
)


def summary_fields(row: ActionRow) -> tuple[str, ...]:
    """The counters one action adds to, from its own state and status."""
    return _summary_fields(row.state, row.status, row.queued)


@lru_cache(maxsize=512)
def _summary_fields(state: str, status: str, queued: bool) -> tuple[str, ...]:
    if state == p.STATE_OFF:
        return ("total", "off")
    if state == p.STATE_SERVER_OFF:
        return ("total", "server_off")
    fields = ["total", "active"]
    if queued:
        fields.append("queued")
    by_state = _STATE_FIELD.get(state)
    if by_state:
        fields.append(by_state)
    by_status = _STATUS_FIELD.get(status)
    if by_status:
        fields.append(by_status)
    if state == p.UNKNOWN or status in (p.UNKNOWN, p.STATUS_UNKNOWN_ERROR):
        fields.append("unknown")
    return tuple(fields)


_STATE_FIELD = {
    p.STATE_NOT_DISPATCHED: "waiting",
    p.STATE_DISPATCHED: "dispatched",
    p.STATE_DOING: "doing",
    p.STATE_DONE: "done",
}
_STATUS_FIELD = {
    p.STATUS_SUCCESS: "success",
    p.STATUS_FAILURE: "failed",
    p.STATUS_ABORTED: "aborted",
    p.STATUS_CRASHED: "crashed",
    p.STATUS_NOT_EXECUTED: "not_executed",
}


def summarize(rows: Iterable[ActionRow]) -> Summary:
    """Counted per kind of row, not per row: a 20,000-row pulse has a dozen kinds."""
    s = Summary()
    kinds = Counter((r.state, r.status, r.queued) for r in rows)
    for kind, n in kinds.items():
        for name in _summary_fields(*kind):
            setattr(s, name, getattr(s, name) + n)
    return s


def summary_update(summary: Summary, old: ActionRow | None, new: ActionRow | None) -> None:
    """Move one action's contribution from its old row to its new one."""
    if old is not None:
        for name in summary_fields(old):
            setattr(summary, name, getattr(summary, name) - 1)
    if new is not None:
        for name in summary_fields(new):
            setattr(summary, name, getattr(summary, name) + 1)


STATE_STAGE = {
    p.STATE_NOT_DISPATCHED: 0,
    p.STATE_DISPATCHED: 1,
    p.STATE_DOING: 2,
    p.STATE_DONE: 3,
}


PHASE_IDLE = "idle"  # nothing of the phase has started
PHASE_RUNNING = "running"
PHASE_OVER = "over"
PHASE_NONE = "none"  # no phase selected or no action in it

#: After the last DOING/DONE seen, how long quiet must last before "over":
#: the dispatcher starts the next sequence number a moment after a DONE.
PHASE_SETTLE_SECONDS = 1.5


def phase_progress(
    rows: Iterable[ActionRow], phase: str, now: float, last_activity: float | None
) -> str:
    """Whether ``phase`` is running or over, judged from the actions' states
    (END_PHASE comes early and repeatedly, or not at all)."""
    if not phase:
        return PHASE_NONE
    if isinstance(rows, PhaseTally):
        return rows.progress(phase, now, last_activity)
    of_phase = [r for r in rows if r.phase == phase and not r.is_off]
    if not of_phase:
        return PHASE_NONE
    if any(r.is_running or r.queued for r in of_phase):
        return PHASE_RUNNING
    if all(r.state == p.STATE_NOT_DISPATCHED for r in of_phase):
        return PHASE_IDLE
    if last_activity is not None and now - last_activity < PHASE_SETTLE_SECONDS:
        return PHASE_RUNNING
    return PHASE_OVER


def active_rows(rows: Iterable[ActionRow], current_phase: str) -> list[ActionRow]:
    """PROTOCOL.md's *active actions*: of the current phase and not ``OFF``;
    failed and aborted first."""
    chosen = [
        r for r in rows if current_phase and r.phase == current_phase and r.state != p.STATE_OFF
    ]
    return sorted(chosen, key=lambda r: (r.category != p.CATEGORY_FAILED, r.server, r.path))


class PhaseTally:
    """Per phase, how many of its switched-on actions run (or wait in a dead
    server's queue), wait undispatched, or are anything else: the reader
    judges the header's phase progress after every batch of changes, and
    walking 20,000 rows each time cost more than rendering the batch."""

    __slots__ = ("counts",)

    def __init__(self, rows: Iterable[ActionRow] = ()) -> None:
        self.counts: Counter[tuple[str, str]] = Counter(
            kind for row in rows if (kind := _tally_kind(row)) is not None
        )

    def move(self, old: ActionRow | None, new: ActionRow | None) -> None:
        """One action changed from ``old`` to ``new`` (either may be absent)."""
        before = _tally_kind(old) if old is not None else None
        after = _tally_kind(new) if new is not None else None
        if before != after:
            if before is not None:
                self.counts[before] -= 1
            if after is not None:
                self.counts[after] += 1

    def progress(self, phase: str, now: float, last_activity: float | None) -> str:
        """``phase_progress`` of the rows tallied, by the same rules."""
        running = self.counts[(phase, "running")]
        waiting = self.counts[(phase, "waiting")]
        if running + waiting + self.counts[(phase, "other")] <= 0:
            return PHASE_NONE
        if running > 0:
            return PHASE_RUNNING
        if self.counts[(phase, "other")] <= 0:
            return PHASE_IDLE
        if last_activity is not None and now - last_activity < PHASE_SETTLE_SECONDS:
            return PHASE_RUNNING
        return PHASE_OVER


def _tally_kind(row: ActionRow) -> tuple[str, str] | None:
    if row.is_off:
        return None
    if row.is_running or row.queued:
        return (row.phase, "running")
    if row.state == p.STATE_NOT_DISPATCHED:
        return (row.phase, "waiting")
    return (row.phase, "other")
