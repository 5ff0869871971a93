"""Every page, for each kind of user, on the recorded dispatcher state."""

from __future__ import annotations

import pytest

PAGES = ["/servers/", "/actions/", "/logs/", "/heartbeat/", "/actions/log/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES + ["/"])
def test_anonymous_users_are_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", PAGES)
def test_viewer_sees_every_page(viewer_client, load_snapshot, url):
    load_snapshot("do_phase_INIT")
    response = viewer_client.get(url)
    assert response.status_code == 200


def test_root_goes_to_servers(viewer_client, redis_db):
    response = viewer_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/servers/"


def test_server_monitor_lists_every_class_and_id(viewer_client, load_snapshot):
    load_snapshot("do_phase_INIT")
    html = viewer_client.get("/servers/").content.decode()
    for ident in ("TIMING_SERVER", "DAQ_SERVER", "CAMERA_SERVER", "ANALYSIS_SERVER"):
        assert ident in html
    assert html.count("DAQ_SERVER") >= 2  # ids 1 and 2
