"""An open socket's login: it holds until the session ends in any way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from monitor_app.login_watch import login_holds

pytestmark = pytest.mark.django_db(transaction=True)


def _session_key(user) -> str:
    client = Client()
    client.force_login(user)
    return client.session.session_key


async def test_a_live_login_holds(viewer):
    key = await sync_to_async(_session_key)(viewer)
    assert await login_holds(key, viewer.pk)


async def test_no_session_key_holds_nothing(viewer):
    assert not await login_holds(None, viewer.pk)
    assert not await login_holds("", viewer.pk)


@pytest.mark.parametrize(
    "end",
    ["expired", "deleted", "deactivated", "password changed", "another user"],
)
async def test_an_ended_login_no_longer_holds(viewer, operator, end):
    key = await sync_to_async(_session_key)(viewer)

    def finish() -> object:
        if end == "expired":
            Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(1))
        elif end == "deleted":
            Session.objects.filter(pk=key).delete()
        elif end == "deactivated":
            viewer.is_active = False
            viewer.save()
        elif end == "password changed":
            viewer.set_password("another-pw-987654")
            viewer.save()
        return operator.pk if end == "another user" else viewer.pk

    user_pk = await sync_to_async(finish)()
    assert not await login_holds(key, user_pk)
