"""System checks: a wrong setting is reported clearly at start, not as a
traceback on the first page view."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

REDIS_SCHEMES = {"redis", "rediss", "unix"}


@register()
def check_redis_url(app_configs=None, **kwargs) -> list[Error]:
    url = settings.REDIS_URL
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        return [Error(f"REDIS_URL {url!r} is not a URL: {exc}", id="monitor_app.E001")]
    if parts.scheme not in REDIS_SCHEMES:
        return [
            Error(
                f"REDIS_URL must start with redis://, rediss:// or unix://, not {url!r}",
                id="monitor_app.E001",
            )
        ]
    if parts.scheme != "unix" and not parts.hostname:
        return [Error(f"REDIS_URL {url!r} names no host", id="monitor_app.E001")]
    del port
    return []


@register()
def check_intervals(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for name in ("WEBMONITOR_POLL_INTERVAL", "WEBMONITOR_STALE_SECONDS"):
        if getattr(settings, name) <= 0:
            errors.append(Error(f"{name} must be greater than 0", id="monitor_app.E002"))
    return errors
