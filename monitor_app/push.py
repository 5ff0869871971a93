"""Turns the reader's changes into the HTML fragments the browsers swap in.

The fragments are the very partial templates the pages render on first
load, marked for an out-of-band swap; structural changes (a pulse gains
rows, a server class appears) send a small JSON note instead, and each
browser then fetches the part again with its own filters and page."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from django.conf import settings
from django.template.loader import get_template, render_to_string
from django.utils.safestring import SafeString

from monitor_app.header import HeaderState
from monitor_app.hub import (
    ROLE_OPERATOR,
    TOPIC_HEADER,
    TOPIC_HEARTBEAT,
    TOPIC_LOGS,
    TOPIC_SERVERS,
    Hub,
    Render,
    pulse_topic,
)
from monitor_app.state import ActionRow, PulseRef, ServerRow, Summary

PARTIALS = "monitor/partials/"
#: How a row of *All actions* starts, and the same row in *Active actions*.


def refresh_note(target: str) -> str:
    return json.dumps({"refresh": target})


def header_html(header: HeaderState) -> str:
    return render_to_string(PARTIALS + "_status.html", {"header": header, "oob": True})


def server_rows_html(rows: Iterable[ServerRow], role: str, now: float | None = None) -> str:
    context = _server_context(role, now)
    return "".join(
        render_to_string(PARTIALS + "_server_row.html", {**context, "row": row}) for row in rows
    )


def heartbeat_rows_html(rows: Iterable[ServerRow], now: float | None = None) -> str:
    context = _server_context(None, now)
    return "".join(
        render_to_string(PARTIALS + "_heartbeat_row.html", {**context, "row": row}) for row in rows
    )


def _server_context(role: str | None, now: float | None) -> dict:
    return {
        "oob": True,
        "can_operate": role == ROLE_OPERATOR,
        "now": now if now is not None else time.time(),
        "stale_bound": settings.WEBMONITOR_STALE_SECONDS,
    }


#: Rendered viewer rows by (row, out-of-band, table): a row's HTML depends on
#: its fields alone, and a page shows 400 rows that mostly have not changed
#: since the last browser asked. The template's own output is kept (already
#: escaped, and marked safe by the engine), never edited afterwards. Bounded;
#: operator rows (their controls may use the page's context) are rendered
#: each time.
_ROW_CACHE: dict[tuple[ActionRow, bool, str], SafeString] = {}
ROW_CACHE_MAX = 20_000


def action_row_html(
    row: ActionRow, *, can_operate: bool, oob: bool, table: str = "all"
) -> SafeString:
    """One row of *All actions*, or with ``table="active"`` of *Active actions*."""
    template = get_template(PARTIALS + "_action_row.html")
    if can_operate:
        return template.render({"row": row, "table": table, "oob": oob, "can_operate": True})
    key = (row, oob, table)
    html = _ROW_CACHE.get(key)
    if html is None:
        if len(_ROW_CACHE) >= ROW_CACHE_MAX:
            _ROW_CACHE.clear()
        html = _ROW_CACHE[key] = template.render({"row": row, "table": table, "oob": oob})
    return html


def action_rows_html(
    rows: Iterable[ActionRow], *, current_phase: str, summary: Summary | None, role: str
) -> str:
    """Each row for the *All actions* table and, when it belongs to the
    current phase, for the *Active actions* table; then the summary."""
    can_operate = role == ROLE_OPERATOR
    parts = []
    for row in rows:
        parts.append(action_row_html(row, can_operate=can_operate, oob=True))
        if current_phase and row.phase == current_phase and row.state != "OFF":
            parts.append(action_row_html(row, can_operate=can_operate, oob=True, table="active"))
    if summary is not None:
        parts.append(
            render_to_string(PARTIALS + "_summary.html", {"summary": summary, "oob": True})
        )
    return "".join(parts)


def log_lines_html(lines: Iterable[str]) -> str:
    return render_to_string(PARTIALS + "_log_lines.html", {"lines": list(lines), "oob": True})


def header_change(header: HeaderState) -> tuple[str, Render]:
    """The header's change, to publish alone or with a batch of rows."""
    html = header_html(header)
    return TOPIC_HEADER, lambda role: html


async def servers_changed(hub: Hub, rows: list[ServerRow], now: float) -> None:
    await hub.publish(TOPIC_SERVERS, lambda role: server_rows_html(rows, role, now))
    html = heartbeat_rows_html(rows, now)
    await hub.publish(TOPIC_HEARTBEAT, lambda role: html)


async def servers_reshaped(hub: Hub) -> None:
    await hub.publish(TOPIC_SERVERS, lambda role: refresh_note("servers"))
    await hub.publish(TOPIC_HEARTBEAT, lambda role: refresh_note("heartbeat"))


def actions_change(
    pulse: PulseRef, rows: list[ActionRow], current_phase: str, summary: Summary
) -> tuple[str, Render]:
    """Changed rows of one pulse, with its summary, per role."""
    return pulse_topic(pulse), lambda role: action_rows_html(
        rows, current_phase=current_phase, summary=summary, role=role
    )


async def pulse_reshaped(hub: Hub, pulse: PulseRef) -> None:
    await hub.publish(pulse_topic(pulse), lambda role: refresh_note("actions"))


async def log_appended(hub: Hub, lines: list[str]) -> None:
    if lines:
        html = log_lines_html(lines)
        await hub.publish(TOPIC_LOGS, lambda role: html)


async def log_reset(hub: Hub) -> None:
    await hub.publish(TOPIC_LOGS, lambda role: refresh_note("logs"))
