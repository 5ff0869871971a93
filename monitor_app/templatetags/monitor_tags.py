"""Small formatting helpers; the rows themselves are shaped in Python."""

from __future__ import annotations

import shlex
import time
from functools import lru_cache
from urllib.parse import urlencode

from django import template
from django.urls import get_script_prefix, reverse
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def timestamp(context, value: float | None):
    """A clock time the browser turns into "N s ago"; a dash when unknown."""
    if not value:
        return "—"
    clock = time.strftime("%H:%M:%S", time.localtime(value))
    return format_html('<time data-ts="{}" title="{}">{}</time>', f"{value:.3f}", clock, clock)


@register.filter
def stale(row, bound: float) -> bool:
    return row.is_stale(time.time(), float(bound))


@register.filter
def log_query(row) -> str:
    return urlencode({"tree": row.tree, "shot": row.shot, "path": row.path})


@register.filter
def log_url(row) -> str:
    """The URL of a row's log: a page shows 400 rows, so ``{% url %}`` and
    the query are computed once per row, and the route once per prefix."""
    return f"{_log_base(get_script_prefix())}?{log_query(row)}"


@lru_cache(maxsize=8)
def _log_base(prefix: str) -> str:
    return reverse("monitor:action_log")


@register.filter
def argument_text(value: object, key: str = "") -> str:
    """A recorded argument as an operator reads it: a command line as a
    shell would show it, other lists (action paths) one after the other,
    never as Python's repr (which doubles every backslash of a path)."""
    if isinstance(value, list):
        items = [str(x) for x in value]
        return shlex.join(items) if key == "argv" else ", ".join(items)
    return str(value)


@register.filter
def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    return f"{minutes} min {secs:02d} s"


@register.simple_tag(takes_context=True)
def action_row(context, row, table: str):
    """A row of an actions table, through the render cache for viewers."""
    from monitor_app.push import action_row_html

    # The row template's own output: escaped by it, safe as the engine made it.
    return action_row_html(
        row,
        can_operate=bool(context.get("can_operate")),
        oob=bool(context.get("oob")),
        table=table,
    )
