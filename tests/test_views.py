"""Every page, for each kind of user, on the recorded dispatcher state."""

from __future__ import annotations

import re

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


def test_actions_monitor_shows_the_recorded_pulse(viewer_client, load_snapshot):
    keys = load_snapshot("do_phase_STORE")
    html = viewer_client.get("/actions/").content.decode()
    for path in keys["ACTION_STATUS:DEMO:42"]["value"]:
        assert path in html
    assert "cat-failed" in html and "cat-success" in html and "cat-off" in html
    assert "Active actions" in html and "phase STORE" in html
    assert 'id="summary"' in html


def test_actions_filter_and_sort_are_in_the_url(viewer_client, load_snapshot):
    load_snapshot("do_phase_STORE")
    html = viewer_client.get(
        "/actions/?tree=DEMO&shot=42&server=CAMERA_SERVER&sort=-node"
    ).content.decode()
    assert "\\DEMO::TOP.CAMERA:CHECK_ACTION" in html
    assert "\\DEMO::TOP.DAQ.ADC1:INIT_ACTION" not in html
    table = html[html.index("All actions") :]
    assert table.index("CAMERA:STORE_ACTION") < table.index("CAMERA:ACQ_ACTION")
    html = viewer_client.get(
        "/actions/?tree=DEMO&shot=42&state=FAILED_BADLY&q=ADC4"
    ).content.decode()
    assert "\\DEMO::TOP.DAQ.ADC4:INIT_ACTION" in html  # unknown filter values are ignored
    html = viewer_client.get("/actions/?tree=DEMO&shot=42&q=NO_SUCH_NODE").content.decode()
    assert "No action of DEMO 42 matches the filter." in html
    assert (
        "matches the filter"
        not in viewer_client.get("/actions/?tree=DEMO&shot=42").content.decode()
    )


def test_pulse_selector_redirects_to_a_bookmarkable_url(viewer_client, redis_db):
    response = viewer_client.get("/actions/?pulse=DEMO:43")
    assert response.status_code == 302
    assert response["Location"] == "/actions/?tree=DEMO&shot=43"


def test_filtering_sorting_and_paging_go_on_following_the_dispatcher(
    viewer_client, load_snapshot, redis_db
):
    def sort_urls(html: str) -> list[str]:
        return re.findall(r'aria-sort="\w+"><a href="([^"]*)"', html)

    load_snapshot("show_log")
    html = viewer_client.get("/actions/?status=Success").content.decode()
    assert 'data-follow="1"' in html
    assert 'name="tree"' not in html.split('id="filter-form"')[1].split("</form>")[0]
    assert sort_urls(html) and all(
        "tree=" not in u and "status=Success" in u for u in sort_urls(html)
    )
    refresh = (
        re.search(r'id="actions-tables" hx-get="([^"]*)"', html).group(1).replace("&amp;", "&")
    )
    assert "tree=DEMO&shot=42" in refresh and refresh.endswith("&follow=1")
    refreshed = viewer_client.get(refresh, headers={"HX-Request": "true"}).content.decode()
    assert sort_urls(refreshed) and all("tree=" not in u for u in sort_urls(refreshed))
    pinned = viewer_client.get("/actions/?tree=DEMO&shot=42&status=Success").content.decode()
    assert 'data-follow="1"' not in pinned
    assert all("tree=DEMO&amp;shot=42" in u for u in sort_urls(pinned))


def test_a_pulse_without_actions_is_marked_so_in_the_selector(
    viewer_client, load_snapshot, redis_db
):
    load_snapshot("show_log")
    html = viewer_client.get("/actions/?tree=NOPE&shot=1").content.decode()
    assert '<option value="NOPE:1" selected>NOPE 1 (no actions)</option>' in html
    assert "No action of NOPE 1 in Redis" in html
    assert ">DEMO 42</option>" in html  # a pulse with actions is not marked


@pytest.mark.parametrize(
    "query",
    ["tree=DE:MO&shot=42", "tree=DEMO&shot=-1", "tree=DEMO&shot=99999999999999", "tree=%00&shot=x"],
)
def test_bad_pulse_in_the_url_is_a_message_not_an_error(viewer_client, redis_db, query):
    response = viewer_client.get("/actions/?" + query)
    assert response.status_code == 200
    assert "That is not a pulse" in response.content.decode()


def test_bad_data_in_redis_never_gives_a_500(viewer_client, redis_server, redis_db):
    import redis

    raw = redis.Redis.from_url(redis_server.url)
    raw.hset("ACTION_INFO:DEMO:1:DAQ", b"\\DEMO::<b>BAD\xff", b"\xfe\xff")
    raw.set("ACTION_STATUS:DEMO:1", "not a hash")
    raw.set("LAST_BUILD_TABLE", "{{{")
    raw.set("CURRENT_PHASE", "not a hash")
    raw.hset("ACTION_SERVER_ACTIVE:X", "1", b"\xff")
    raw.set("ACTION_SERVER_ACTIVE:Y", "string")
    raw.hset("ACTION_LOG:DEMO:1", "\\DEMO::L", b"<script>alert(1)</script>\xff")
    for url in PAGES + [
        "/actions/?tree=DEMO&shot=1",
        "/actions/log/?tree=DEMO&shot=1&path=%5CDEMO::L",
    ]:
        response = viewer_client.get(url)
        assert response.status_code == 200, url
        assert b"<script>alert" not in response.content
        assert b"<b>BAD" not in response.content


def test_redis_down_pages_render_with_a_banner(viewer_client, settings, redis_db):
    from tests.redis_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    for url in PAGES:
        response = viewer_client.get(url)
        assert response.status_code == 200
        assert "unreachable — retrying" in response.content.decode()


def test_action_log_view_copy_and_download(viewer_client, redis_db):
    path = "\\DEMO::TOP.CAMERA:CHECK_ACTION"
    redis_db.hset("ACTION_LOG:DEMO:42", path, "line one\n<i>two</i>\n")
    response = viewer_client.get("/actions/log/", {"tree": "DEMO", "shot": "42", "path": path})
    html = response.content.decode()
    assert "&lt;i&gt;two&lt;/i&gt;" in html and 'data-copy="log-text"' in html
    response = viewer_client.get(
        "/actions/log/", {"tree": "DEMO", "shot": "42", "path": path, "download": "1"}
    )
    assert response["Content-Type"].startswith("text/plain")
    assert "attachment" in response["Content-Disposition"]
    assert response.content == b"line one\n<i>two</i>\n"
    response = viewer_client.get(
        "/actions/log/", {"tree": "DEMO", "shot": "42", "path": "\\DEMO::NOPE"}
    )
    assert "has no log" in response.content.decode()


def test_htmx_requests_get_only_the_fragment(viewer_client, load_snapshot):
    load_snapshot("do_phase_STORE")
    html = viewer_client.get("/actions/", HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<section id="actions-tables"')
    html = viewer_client.get("/servers/", HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<section id="servers-table"')


def test_log_viewer_tail_and_notes(operator_client, viewer_client, settings, redis_db, tmp_path):
    settings.WEBMONITOR_PUBSUB_LOG = log = tmp_path / "redis_pubsub.log"
    log.write_text("".join(f"2026-12-03 10:00:00 - CH | line {i}\n" for i in range(300)))
    html = viewer_client.get("/logs/").content.decode()
    assert "line 299" in html and "line 100" in html and "line 99<" not in html
    assert "log-note-form" not in html  # viewers see no form
    assert viewer_client.post("/logs/note/", {"message": "hi"}).status_code == 403
    response = operator_client.post("/logs/note/", {"message": "  "})
    assert response.status_code == 400 and "field-error" in response.content.decode()
    response = operator_client.post("/logs/note/", {"message": "check <camera> cooling"})
    assert response.status_code == 302
    last = log.read_text().splitlines()[-1]
    assert last.endswith("WEBMONITOR_MESSAGE | otto: check <camera> cooling")


def test_login_and_logout(client, viewer, redis_db):
    response = client.post("/accounts/login/", {"username": "vera", "password": "pw-vera"})
    assert response.status_code == 302
    assert client.get("/servers/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/servers/").status_code == 302


def test_there_is_no_password_reset_by_mail(client, viewer, redis_db):
    assert client.get("/accounts/password_reset/").status_code == 404
    client.force_login(viewer)
    assert client.get("/accounts/password_reset/").status_code == 404
    assert client.get("/accounts/password_change/").status_code == 200


def test_a_user_changes_their_own_password(client, viewer, redis_db):
    client.force_login(viewer)
    page = client.get("/accounts/password_change/").content.decode()
    assert "Change your password" in page and 'href="/accounts/password_change/"' in page
    new = "another-Secret-4711"
    response = client.post(
        "/accounts/password_change/",
        {"old_password": "pw-vera", "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302 and response["Location"].endswith("/done/")
    assert "Your password is changed." in client.get(response["Location"]).content.decode()
    client.logout()
    assert client.login(username="vera", password=new)
    wrong = client.post("/accounts/password_change/", {"old_password": "nope"}).content.decode()
    assert 'class="field-error"' in wrong


def test_the_login_page_tells_a_logged_in_user_who_they_are(client, viewer, redis_db):
    assert "You are logged in as" not in client.get("/accounts/login/").content.decode()
    client.force_login(viewer)
    page = client.get("/accounts/login/").content.decode()
    assert "You are logged in as <strong>vera</strong>" in page
    assert 'href="/servers/"' in page


def test_csrf_is_enforced(viewer, operator, redis_db):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert strict.post("/logs/note/", {"message": "x"}).status_code == 403


def test_pages_carry_a_content_security_policy(viewer_client, redis_db):
    policy = viewer_client.get("/servers/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_duration_sort_puts_blank_durations_last(viewer_client, load_snapshot, redis_db):
    load_snapshot("do_phase_STORE")
    redis_db.hset("WEBMONITOR:DOING_AT:DEMO:42", "\\DEMO::TOP.CAMERA:STORE_ACTION", "100")
    redis_db.hset("WEBMONITOR:DONE_AT:DEMO:42", "\\DEMO::TOP.CAMERA:STORE_ACTION", "103")
    redis_db.hset("WEBMONITOR:DOING_AT:DEMO:42", "\\DEMO::TOP.DAQ.ADC1:STORE_ACTION", "100")
    redis_db.hset("WEBMONITOR:DONE_AT:DEMO:42", "\\DEMO::TOP.DAQ.ADC1:STORE_ACTION", "101")
    for sort in ("duration", "-duration"):
        html = viewer_client.get(f"/actions/?tree=DEMO&shot=42&sort={sort}").content.decode()
        table = html[html.index("All actions") :]
        first, second = table.index("CAMERA:STORE_ACTION"), table.index("ADC1:STORE_ACTION")
        assert (first > second) if sort == "duration" else (first < second)
        assert table.index("ADC1:STORE_ACTION") < table.index("TIMING:INIT_ACTION")


def test_control_characters_in_a_log_path_are_refused(viewer_client, redis_db):
    response = viewer_client.get("/actions/log/?tree=DEMO&shot=42&path=%00x")
    assert response.status_code == 200
    assert b"\x00" not in response.content and b"not an action path" in response.content


def test_header_during_an_outage_says_the_phase_is_unknown():
    """What was running when Redis went away may have ended since: the
    header keeps the last pulse as 'last seen' and claims no progress."""
    from monitor_app.header import HeaderState
    from monitor_app.push import header_html
    from monitor_app.state import PulseRef

    seen = dict(pulse=PulseRef("DEMO", "42"), phase="STORE", progress="running")
    live = header_html(HeaderState("127.0.0.1:6379", True, **seen))
    assert "DEMO 42" in live and "running" in live and "last seen" not in live
    down = header_html(HeaderState("127.0.0.1:6379", False, "refused", **seen))
    assert "DEMO 42 <small>(last seen)</small>" in down and "STORE" in down
    assert "running" not in down and "progress-unknown" in down


def test_a_command_address_opened_as_a_page_says_what_it_is(operator_client, redis_db):
    response = operator_client.get("/commands/phase/do/")
    assert response.status_code == 405 and response["Allow"] == "POST"
    html = response.content.decode()
    assert "Not a page (405)" in html and 'href="/actions/"' in html
    assert redis_db.dbsize() == 0  # nothing was sent


def test_an_unknown_address_gets_the_console_s_404_page(viewer_client):
    response = viewer_client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "No such page (404)" in html and 'href="/servers/"' in html
    assert "ws-connect" not in html  # an error page opens no live socket


def test_the_500_page_renders_without_a_request_context():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Console error (500)" in html and "Log out" not in html


def test_an_htmx_request_without_a_login_sends_the_browser_to_the_login_page(client, db):
    """Not the login page swapped into a table or a command's answer."""
    page = "http://testserver/actions/?tree=DEMO&shot=42"
    for response in (
        client.get("/actions/", headers={"HX-Request": "true", "HX-Current-URL": page}),
        client.post("/commands/phase/do/", {"phase": "INIT"}, headers={"HX-Request": "true"}),
    ):
        assert response.status_code == 200 and "Log in" not in response.content.decode()
        assert response["HX-Redirect"].startswith("/accounts/login/?next=/")
    assert client.get("/actions/")["Location"].startswith("/accounts/login/")  # plain: as before
    first = client.get("/actions/", headers={"HX-Request": "true", "HX-Current-URL": page})
    assert first["HX-Redirect"] == "/accounts/login/?next=/actions/%3Ftree%3DDEMO%26shot%3D42"


def test_a_stale_csrf_token_is_answered_in_the_console_s_words(operator, redis_db):
    """A tab loaded before its login changed posts an out-of-date token."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    answer = client.post("/commands/tables/build/", {}, headers={"HX-Request": "true"})
    text = answer.content.decode()
    assert answer.status_code == 403 and "<html" not in text
    assert "Reload the page and try again" in text and 'data-result-kind="refused"' in text
    page = client.post("/commands/tables/build/", {})
    assert page.status_code == 403 and "the form is out of date (403)" in page.content.decode()
    assert redis_db.dbsize() == 0


def test_pages_outside_the_tabs_do_not_guess_the_role(operator_client):
    """They lack the tabs' context: an operator was labelled 'viewer' there."""
    for url in ("/no/such/page/", "/accounts/login/"):
        html = operator_client.get(url).content.decode()
        assert "otto</span>" in html and "viewer" not in html, url
        assert "ws-connect" not in html, url  # no live header there, so no socket
        assert 'id="ws-state"' not in html, url  # nor an "offline" mark that looks like a fault
    assert "otto · operator" in operator_client.get("/logs/").content.decode()
