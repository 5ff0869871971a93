"""Small formatting helpers; the rows themselves are shaped in Python."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django import template
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
def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    return f"{minutes} min {secs:02d} s"
