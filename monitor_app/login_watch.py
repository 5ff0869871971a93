"""Whether the login behind an open WebSocket still holds. A socket is
authorised once, at connect, and a control-room tab stays open for days:
a session that expires, is deleted, or whose user is deactivated or changes
password must stop getting live data as a page load would stop it."""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import auth


def _login_holds(session_key: str, user_pk: object) -> bool:
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # auth.get_user loads the session afresh (an expired or deleted one is
    # empty) and checks the user is active and the password hash unchanged.
    current = auth.get_user(SimpleNamespace(session=store))
    return current.is_authenticated and str(current.pk) == str(user_pk)


async def login_holds(session_key: str | None, user_pk: object) -> bool:
    """True while the session exists, is unexpired and still logs in the
    same active user; a socket with no session key holds no login."""
    if not session_key:
        return False
    return await sync_to_async(_login_holds, thread_sensitive=True)(session_key, user_pk)
