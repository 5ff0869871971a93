"""Shaping rows for the pages: the filter, sort and page of the Actions
Monitor as the URL gives them. Unknown or bad values are ignored, never an
error: a bookmarked URL from an older pulse must still open."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator

from monitor_app import protocol as p
from monitor_app.state import ActionRow, PulseRef, active_rows

PAGE_SIZE = 200
ACTIVE_LIMIT = 200
TEXT_MAX = 200

SORT_KEYS = {  # attrgetter: in C, the sort of 20,000 rows takes half the time
    "server": attrgetter("server", "path"),
    "node": attrgetter("path"),
    "state": attrgetter("state", "path"),
    "status": attrgetter("status", "path"),
    "phase": attrgetter("phase", "path"),
    "duration": lambda r: (r.duration or 0.0, r.path),
}
#: Sort keys whose value may be missing: such rows go last, either way.
MAY_BE_BLANK = {"duration": lambda r: r.duration is None}
DEFAULT_SORT = "server"
STATE_CHOICES = sorted(p.STATES) + [p.UNKNOWN]
STATUS_CHOICES = sorted(p.STATUSES) + [p.UNKNOWN]


@dataclass(frozen=True, slots=True)
class ActionQuery:
    """The Actions Monitor's view of a pulse, all of it in the URL."""

    server: str = ""
    state: str = ""
    status: str = ""
    phase: str = ""
    text: str = ""
    sort: str = DEFAULT_SORT
    descending: bool = False
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ActionQuery:
        def name(key: str) -> str:
            value = (params.get(key) or "").strip()
            return value if p.NAME_RE.fullmatch(value) else ""

        state = params.get("state") or ""
        status = params.get("status") or ""
        sort = params.get("sort") or DEFAULT_SORT
        descending = sort.startswith("-")
        sort = sort.lstrip("-")
        try:
            page = max(1, int(params.get("page") or 1))
        except ValueError:
            page = 1
        return cls(
            server=name("server"),
            state=state if state in STATE_CHOICES else "",
            status=status if status in STATUS_CHOICES else "",
            phase=name("phase"),
            text=(params.get("q") or "").strip()[:TEXT_MAX],
            sort=sort if sort in SORT_KEYS else DEFAULT_SORT,
            descending=descending and sort in SORT_KEYS,
            page=page,
        )

    @property
    def filtered(self) -> bool:
        return bool(self.server or self.state or self.status or self.phase or self.text)

    def matches(self, row: ActionRow) -> bool:
        return (
            (not self.server or row.server == self.server)
            and (not self.state or row.state == self.state)
            and (not self.status or row.status == self.status)
            and (not self.phase or row.phase == self.phase)
            and (not self.text or self.text.lower() in row.path.lower())
        )

    def apply(self, rows: Iterable[ActionRow]) -> list[ActionRow]:
        chosen = [r for r in rows if self.matches(r)] if self.filtered else list(rows)
        blank = MAY_BE_BLANK.get(self.sort)
        tail = []
        if blank is not None:
            tail = [r for r in chosen if blank(r)]
            chosen = [r for r in chosen if not blank(r)]
        chosen.sort(key=SORT_KEYS[self.sort], reverse=self.descending)
        tail.sort(key=SORT_KEYS[DEFAULT_SORT])
        return chosen + tail

    def params(self, pulse: PulseRef | None, **changes) -> dict[str, str]:
        values = {
            "tree": pulse.tree if pulse else "",
            "shot": pulse.shot if pulse else "",
            "server": self.server,
            "state": self.state,
            "status": self.status,
            "phase": self.phase,
            "q": self.text,
            "sort": ("-" if self.descending else "") + self.sort,
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}

    def url(self, pulse: PulseRef | None, **changes) -> str:
        return "?" + urlencode(self.params(pulse, **changes))

    def sort_links(self, pulse: PulseRef | None) -> dict[str, dict[str, str]]:
        """For each column: the URL that sorts by it (again: the other way)
        and the arrow to show now."""
        links = {}
        for key in SORT_KEYS:
            again = key == self.sort and not self.descending
            arrow = ""
            if key == self.sort:
                arrow = "▼" if self.descending else "▲"
            links[key] = {
                "url": self.url(pulse, sort=("-" if again else "") + key, page=1),
                "arrow": arrow,
                "aria": "descending"
                if key == self.sort and self.descending
                else "ascending"
                if key == self.sort
                else "none",
            }
        return links


@dataclass(slots=True)
class ActionTables:
    active: list[ActionRow]
    active_total: int
    page: Page
    matched: int
    choices: dict[str, list[str]] = field(default_factory=dict)


def action_tables(
    rows: Mapping[str, ActionRow], query: ActionQuery, current_phase: str
) -> ActionTables:
    everything = list(rows.values())
    matched = query.apply(everything)
    active = active_rows(
        (r for r in everything if query.matches(r)) if query.filtered else everything,
        current_phase,
    )
    page = Paginator(matched, PAGE_SIZE, allow_empty_first_page=True).get_page(query.page)
    return ActionTables(
        active=active[:ACTIVE_LIMIT],
        active_total=len(active),
        page=page,
        matched=len(matched),
        choices={
            "server": sorted({r.server for r in everything}),
            "phase": sorted({r.phase for r in everything if r.phase}),
            "state": STATE_CHOICES,
            "status": STATUS_CHOICES,
        },
    )
