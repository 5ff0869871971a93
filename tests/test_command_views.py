"""The operator controls in the browser, against a real Redis: every command
endpoint for anonymous users, viewers and operators (the exact Redis writes
seen with MONITOR, the answer, the audit record), bad input, CSRF, the Do
Phase confirmation, the controls shown only to operators, the Server log,
the Audit page, and escaping."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from monitor_app import protocol as p
from monitor_app import push
from monitor_app import services as s
from monitor_app.hub import ROLE_OPERATOR, ROLE_VIEWER
from monitor_app.models import CommandRecord
from monitor_app.state import ActionRow

pytest_plugins = ["tests.cmd_fixtures"]
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pubsub_log")]

HX = {"HTTP_HX_REQUEST": "true"}
ADC1_INIT = "\\DEMO::TOP.DAQ.ADC1:INIT_ACTION"
TIMING_INIT = "\\DEMO::TOP.TIMING:INIT_ACTION"
CAMERA_ACQ = "\\DEMO::TOP.CAMERA:ACQ_ACTION"
EVIL_PATH = "\\DEMO::TOP.<script>alert(1)</script>:ACT"

PULSE = {"tree": "demo", "shot": "42"}
ACTION = {"tree": "DEMO", "shot": "42", "path": ADC1_INIT}
SERVER = {"ident": "DAQ_SERVER", "server_id": "2"}

#: Every command endpoint with a valid request for it.
ENDPOINTS = [
    ("/commands/pulse/create/", PULSE),
    ("/commands/tables/build/", PULSE),
    ("/commands/phase/do/", {**PULSE, "phase": "INIT", "confirm": "1"}),
    ("/commands/sequence/abort/", {}),
    ("/commands/dispatcher/", {"text": "abort_pending"}),
    ("/commands/actions/dispatch/", ACTION),
    ("/commands/actions/abort/", ACTION),
    ("/commands/servers/start/", SERVER),
    ("/commands/servers/stop/", SERVER),
    ("/commands/servers/restart/", SERVER),
    ("/commands/servers/quit/", SERVER),
    ("/commands/servers/kill/", SERVER),
    ("/commands/servers/all/start/", {}),
    ("/commands/servers/all/kill/", {}),
]
URLS = [url for url, _ in ENDPOINTS]
#: The name each endpoint's command has in the audit record.
AUDITED_AS = dict(
    zip(
        URLS,
        ["create_pulse", "build_tables", "do_phase", "abort", "dispatcher_command"]
        + ["dispatch_action", "abort_action"]
        + [f"server_{verb}" for verb in ("start", "stop", "restart", "quit", "kill")]
        + ["servers_all_start", "servers_all_kill"],
        strict=True,
    )
)


def body(response) -> str:
    return html.unescape(response.content.decode())


def records() -> list[CommandRecord]:
    return list(CommandRecord.objects.order_by("id"))


def hidden_fields(text: str) -> dict[str, str]:
    """The fields "Run anyway" re-posts (the CSRF token aside)."""
    found = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', text))
    found.pop("csrfmiddlewaretoken", None)
    return found


def field_error(response, name: str) -> str:
    """The message the dispatcher bar shows next to one of its fields."""
    match = re.search(rf'<span id="bar-err-{name}"[^>]*>(.*?)</span>', response.content.decode())
    assert match, f"no error slot for {name}"
    return html.unescape(match.group(1))


@pytest.fixture
def plant(load_snapshot, site_command):
    """The recorded plant after INIT (tables built, GHOST_SERVER OFF) and a
    site command that only records its arguments."""
    load_snapshot("do_phase_INIT")
    return site_command


# --- who may send -------------------------------------------------------------------


@pytest.mark.parametrize(("url", "data"), ENDPOINTS)
def test_anonymous_is_sent_to_login_and_nothing_is_sent(client, plant, monitor, url, data):
    monitor.start()
    response = client.post(url, data)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert monitor.stop() == []
    assert records() == []


@pytest.mark.parametrize(("url", "data"), ENDPOINTS)
def test_viewer_gets_403_and_nothing_is_sent(viewer_client, plant, monitor, url, data):
    monitor.start()
    response = viewer_client.post(url, data, **HX)
    assert response.status_code == 403
    assert "Only operators may send commands" in body(response)
    assert monitor.stop() == []
    assert not plant.ran.exists()  # the site command did not run either
    # ...but the attempt is on the record, with what was posted
    (record,) = records()
    assert (record.username, record.ok, record.result) == ("vera", False, "denied: not an operator")
    assert record.arguments == data and "csrfmiddlewaretoken" not in record.arguments
    assert record.command == AUDITED_AS[url]
    posted = (data["tree"].upper(), data["shot"]) if "shot" in data else ("", "")
    assert (record.tree, record.shot) == posted


def test_an_attempt_keeps_each_path_once(viewer_client, plant):
    """Every row is in both tables of the page: a bulk POST names it twice."""
    other = "\\DEMO::TOP.TIMING:INIT_ACTION"
    data = {**PULSE, "path": [ADC1_INIT, other, ADC1_INIT, other]}
    viewer_client.post("/commands/actions/abort/", data, **HX)
    (record,) = records()
    assert record.arguments["path"] == [ADC1_INIT, other]


def test_the_audit_shows_paths_as_they_are_and_no_bad_pulse(viewer_client, operator_client, plant):
    other = "\\DEMO::TOP.TIMING:INIT_ACTION"
    viewer_client.post("/commands/actions/abort/", {**PULSE, "path": [ADC1_INIT, other]}, **HX)
    operator_client.post("/commands/pulse/create/", {"tree": "$(id)", "shot": "42"}, **HX)
    html = body(viewer_client.get("/audit/"))
    assert f"path=<code>{ADC1_INIT}, {other}</code>" in html  # not a list's repr
    refused = CommandRecord.objects.get(command="create_pulse")
    assert (refused.tree, refused.shot) == ("", "") and refused.arguments["tree"] == "$(id)"


def test_an_attempt_keeps_only_the_command_s_own_fields(operator_client, plant):
    """The bar posts all its inputs; Create Pulse takes no phase."""
    data = {"tree": "$(id)", "shot": "42", "phase": "PULSE_ON", "text": "abort"}
    operator_client.post("/commands/pulse/create/", data, **HX)
    (record,) = records()
    assert record.arguments == {"tree": "$(id)", "shot": "42"}


def test_a_denied_attempt_keeps_its_pulse_and_reason(viewer_client, plant):
    viewer_client.post("/commands/phase/do/", {**PULSE, "phase": "INIT", "reason": "forged"}, **HX)
    (record,) = records()
    assert (record.tree, record.shot, record.reason) == ("DEMO", "42", "forged")
    assert "reason" not in record.arguments
    assert len(_audit_rows(viewer_client.get("/audit/?tree=DEMO&shot=42"))) == 1


@pytest.mark.parametrize("url", URLS)
def test_get_is_not_a_command(operator_client, plant, monitor, url):
    monitor.start()
    assert operator_client.get(url).status_code == 405
    assert monitor.stop() == []
    assert records() == []


@pytest.mark.parametrize(("url", "data"), ENDPOINTS)
def test_csrf_is_enforced(operator, plant, monitor, url, data):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    monitor.start()
    response = browser.post(url, data, **HX)
    assert response.status_code == 403
    assert monitor.stop() == []
    assert records() == []


def test_csrf_token_from_the_page_is_accepted(operator, plant, monitor):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    page = browser.get("/actions/").content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    response = browser.post("/commands/sequence/abort/", {}, HTTP_X_CSRFTOKEN=token, **HX)
    assert response.status_code == 200


def test_unknown_server_verb_is_404(operator_client, plant, monitor):
    monitor.start()
    assert operator_client.post("/commands/servers/heartbeat/", SERVER).status_code == 404
    assert operator_client.post("/commands/servers/all/quit/", {}).status_code == 404
    assert monitor.stop() == []


# --- what an operator's command sends -----------------------------------------------

TX = [["MULTI"], ["EXEC"]]


def _tx(*ops: list[str]) -> list[list[str]]:
    return [TX[0], *ops, TX[1]]


@pytest.mark.parametrize(
    ("url", "data", "writes", "command"),
    [
        (
            "/commands/pulse/create/",
            {"tree": "demo", "shot": "43"},
            _tx(
                ["HSET", "DISPATCH_DEFAULT", "TREE", "DEMO", "SHOT", "43"],
                ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "create_pulse:DEMO:43"],
            ),
            "create_pulse",
        ),
        (
            "/commands/tables/build/",
            {"tree": "demo", "shot": "42"},
            _tx(["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "build_tables:DEMO:42"]),
            "build_tables",
        ),
        (
            "/commands/phase/do/",
            {"tree": "DEMO", "shot": "42", "phase": "pulse_on"},  # no warnings: sent at once
            _tx(["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_phase:DEMO:42:PULSE_ON"]),
            "do_phase",
        ),
        (
            "/commands/sequence/abort/",
            {"tree": "DEMO", "shot": "42", "phase": "INIT"},  # the bar's other fields: ignored
            _tx(["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "abort"]),
            "abort",
        ),
        (
            "/commands/dispatcher/",
            {"text": "ABORT_PENDING"},
            _tx(["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "abort_pending"]),
            "abort_pending",
        ),
        (
            "/commands/dispatcher/",
            {"text": "do_sequence:demo:42:pulse_on:10:20"},
            _tx(["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_sequence:DEMO:42:PULSE_ON:10:20"]),
            "do_sequence",
        ),
        (
            "/commands/actions/dispatch/",
            ACTION,
            _tx(
                ["LPUSH", "ACTION_SERVER_TODO:DAQ_SERVER", f"DEMO+42+{ADC1_INIT}+0+0+0"],
                ["PUBLISH", "ACTION_SERVER_PUBSUB:DAQ_SERVER", "DO"],
            ),
            "dispatch_action",
        ),
        (
            "/commands/servers/stop/",
            SERVER,
            _tx(["PUBLISH", "ACTION_SERVER_PUBSUB:DAQ_SERVER", "STOP+2"]),
            "server_stop",
        ),
        (
            "/commands/servers/restart/",
            SERVER,
            _tx(["PUBLISH", "ACTION_SERVER_PUBSUB:DAQ_SERVER", "RESTART+2"]),
            "server_restart",
        ),
        (
            "/commands/servers/quit/",
            {"ident": "TIMING_SERVER"},  # the id defaults to 1
            _tx(["PUBLISH", "ACTION_SERVER_PUBSUB:TIMING_SERVER", "QUIT+1"]),
            "server_quit",
        ),
    ],
)
def test_operator_command_sends_exactly_the_protocol(
    operator_client, plant, monitor, url, data, writes, command
):
    monitor.start()
    response = operator_client.post(url, data, **HX)
    assert response.status_code == 200, body(response)
    assert monitor.stop() == writes
    text = body(response)
    assert 'data-result-kind="ok"' in text
    for op in writes[1:-1]:  # the answer shows what was sent
        assert f"<code>{' '.join(op)}</code>" in text
    (record,) = records()
    assert (record.username, record.source, record.command, record.ok) == (
        "otto",
        "web",
        command,
        True,
    )


def test_abort_of_a_running_action_sends_the_stored_path(operator_client, load_snapshot, monitor):
    load_snapshot("do_phase_PULSE_ON")  # the long camera action is DOING
    monitor.start()
    response = operator_client.post(
        "/commands/actions/abort/",
        {"tree": "DEMO", "shot": "42", "path": CAMERA_ACQ},
        HTTP_HX_PROMPT="camera stuck",
        **HX,
    )
    assert response.status_code == 200
    assert monitor.stop() == _tx(
        ["PUBLISH", "ACTION_SERVER_PUBSUB:CAMERA_SERVER", f"ABORT+{CAMERA_ACQ}"]
    )
    (record,) = records()
    assert record.command == "abort_action" and record.reason == "camera stuck"


def test_reason_as_a_form_field_wins_over_the_prompt_header(operator_client, plant):
    operator_client.post(
        "/commands/sequence/abort/", {"reason": "from the form"}, HTTP_HX_PROMPT="header", **HX
    )
    assert records()[0].reason == "from the form"


def test_bulk_dispatch_sends_each_and_reports_each(operator_client, plant, monitor):
    monitor.start()
    response = operator_client.post(
        "/commands/actions/dispatch/",
        {"tree": "DEMO", "shot": "42", "path": [ADC1_INIT, TIMING_INIT, ADC1_INIT]},
        **HX,
    )
    assert response.status_code == 200
    writes = monitor.stop()
    assert [w[1] for w in writes if w[0] == "LPUSH"] == [
        "ACTION_SERVER_TODO:DAQ_SERVER",
        "ACTION_SERVER_TODO:TIMING_SERVER",
    ]  # the duplicate path is sent once
    text = body(response)
    assert f"{ADC1_INIT} dispatched to DAQ_SERVER." in text
    assert f"{TIMING_INIT} dispatched to TIMING_SERVER." in text
    assert [r.command for r in records()] == ["dispatch_action", "dispatch_action"]


def test_bulk_with_a_refused_path_sends_the_others(operator_client, load_snapshot, monitor):
    load_snapshot("do_phase_PULSE_ON")
    monitor.start()
    response = operator_client.post(
        "/commands/actions/abort/",
        {"tree": "DEMO", "shot": "42", "path": [CAMERA_ACQ, ADC1_INIT]},
        **HX,
    )
    assert response.status_code == 200
    assert 'data-result-kind="partial"' in response.content.decode()
    assert monitor.stop() == _tx(
        ["PUBLISH", "ACTION_SERVER_PUBSUB:CAMERA_SERVER", f"ABORT+{CAMERA_ACQ}"]
    )
    assert "is not running" in body(response)
    assert [r.ok for r in records()] == [True, False]


def test_bulk_with_every_path_refused_is_400(operator_client, plant, monitor):
    monitor.start()
    response = operator_client.post(
        "/commands/actions/abort/", {"tree": "DEMO", "shot": "42", "path": [ADC1_INIT]}, **HX
    )
    assert response.status_code == 400
    assert "Not sent:" in body(response) and "is not running" in body(response)
    assert monitor.stop() == []


def test_start_and_kill_run_the_site_command(operator_client, plant, monitor):
    monitor.start()
    response = operator_client.post(
        "/commands/servers/start/", {"ident": "GHOST_SERVER"}, HTTP_HX_PROMPT="bring it back", **HX
    )
    assert response.status_code == 200
    assert plant.ran.read_text() == repr(["$(id);x", "GHOST_SERVER", "START"])
    text = body(response)
    assert "site command args: $(id);x GHOST_SERVER START" in text
    assert "exit status 0" in text
    plant.mode.write_text("fail")
    response = operator_client.post("/commands/servers/kill/", {"ident": "DAQ_SERVER"}, **HX)
    assert response.status_code == 200  # it ran; it failed
    assert 'data-result-kind="failed"' in response.content.decode()
    assert "exit status 3" in body(response)
    assert monitor.stop() == []  # nothing in Redis does this
    assert [(r.command, r.ok, r.reason) for r in records()] == [
        ("server_start", True, "bring it back"),
        ("server_kill", False, ""),
    ]


def test_start_all_starts_only_the_off_classes(operator_client, plant, monitor):
    monitor.start()
    response = operator_client.post("/commands/servers/all/start/", {}, **HX)
    assert response.status_code == 200
    assert plant.ran.read_text() == repr(["$(id);x", "GHOST_SERVER", "START"])
    assert [r.arguments["ident"] for r in records()] == ["GHOST_SERVER"]
    assert monitor.stop() == []


def test_kill_all_kills_every_on_class(operator_client, plant):
    response = operator_client.post(
        "/commands/servers/all/kill/", {}, HTTP_HX_PROMPT="end of day", **HX
    )
    assert response.status_code == 200
    assert [(r.arguments["ident"], r.reason) for r in records()] == [
        ("ANALYSIS_SERVER", "end of day"),
        ("CAMERA_SERVER", "end of day"),
        ("DAQ_SERVER", "end of day"),
        ("TIMING_SERVER", "end of day"),
    ]


def test_kill_all_runs_the_site_commands_side_by_side(operator_client, plant, settings):
    """Each run waits for all four to have started: one after the other,
    the first would wait in vain and fail."""
    settings.WEBMONITOR_SERVER_COMMAND_PARALLEL = 4
    plant.mode.write_text("together:4")
    response = operator_client.post("/commands/servers/all/kill/", {}, **HX)
    assert response.status_code == 200
    assert [(r.arguments["ident"], r.ok) for r in records()] == [
        ("ANALYSIS_SERVER", True),
        ("CAMERA_SERVER", True),
        ("DAQ_SERVER", True),
        ("TIMING_SERVER", True),
    ]


def test_kill_all_with_no_site_command_runs_nothing(operator_client, plant, settings):
    settings.WEBMONITOR_SERVER_COMMAND = []
    response = operator_client.post("/commands/servers/all/kill/", {}, **HX)
    assert response.status_code == 400
    assert "No site command" in body(response)
    assert not plant.ran.exists()
    assert len(records()) == 4 and all(r.refused for r in records())


def test_start_all_with_nothing_off_is_refused(operator_client, plant, redis_db):
    redis_db.hset("ACTION_SERVER_ACTIVE:GHOST_SERVER", "1", "ON")
    response = operator_client.post("/commands/servers/all/start/", {}, **HX)
    assert response.status_code == 400
    assert "No server class is OFF" in body(response)
    assert not plant.ran.exists()


# --- Do Phase asks first ----------------------------------------------------------------


def test_do_phase_with_an_off_server_asks_and_run_anyway_sends(operator_client, plant, monitor):
    monitor.start()
    response = operator_client.post(
        "/commands/phase/do/", {"tree": "demo", "shot": "42", "phase": "init"}, **HX
    )
    assert response.status_code == 200
    text = body(response)
    assert 'data-result-kind="confirm"' in text
    assert "GHOST_SERVER is OFF" in text
    assert "<td>GHOST_SERVER</td><td>OFF</td>" in text  # listed in the table
    assert "Run anyway" in text
    hidden = hidden_fields(text)
    assert hidden == {"tree": "DEMO", "shot": "42", "phase": "INIT", "confirm": "1"}
    assert monitor.writes == []  # a question: nothing sent, nothing recorded
    assert records() == []
    response = operator_client.post("/commands/phase/do/", hidden, **HX)
    assert response.status_code == 200
    assert monitor.stop() == _tx(["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_phase:DEMO:42:INIT"])
    assert "GHOST_SERVER" in body(response)  # the warning stays in the answer
    assert records()[0].ok


def test_do_phase_warns_when_tables_are_not_built(operator_client, plant, redis_db, monitor):
    redis_db.set(p.LAST_BUILD_TABLE, '{"tree": "DEMO", "shot": "41"}')
    monitor.start()
    response = operator_client.post(
        "/commands/phase/do/", {"tree": "DEMO", "shot": "42", "phase": "PULSE_ON"}, **HX
    )
    assert "have not been built" in body(response) and "Run anyway" in body(response)
    assert monitor.stop() == []


def test_free_text_do_phase_asks_too_and_resends_the_parsed_command(
    operator_client, plant, monitor
):
    monitor.start()
    response = operator_client.post(
        "/commands/dispatcher/", {"text": "do_phase:demo:42:init"}, HTTP_HX_PROMPT="why", **HX
    )
    text = body(response)
    assert 'data-result-kind="confirm"' in text
    hidden = hidden_fields(text)
    assert hidden == {"text": "do_phase:DEMO:42:INIT", "reason": "why", "confirm": "1"}
    operator_client.post("/commands/dispatcher/", hidden, **HX)
    assert monitor.stop() == _tx(["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_phase:DEMO:42:INIT"])


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "data", "field_name", "message"),
    [
        ("/commands/pulse/create/", {"tree": "$(id)", "shot": "42"}, "tree", "is not a tree name"),
        ("/commands/pulse/create/", {"tree": "DEMO", "shot": "-1"}, "shot", "not a shot number"),
        ("/commands/pulse/create/", {"tree": "DEMO", "shot": "2147483648"}, "shot", "out of range"),
        ("/commands/pulse/create/", {"tree": "", "shot": "42"}, "tree", "Enter a tree."),
        ("/commands/tables/build/", {"tree": "DE:MO", "shot": "42"}, "tree", "not a tree name"),
        ("/commands/tables/build/", {"tree": "DEMO", "shot": "4２"}, "shot", "not a shot"),
        (
            "/commands/phase/do/",
            {"tree": "DEMO", "shot": "42", "phase": "INIT; rm -rf /"},
            "phase",
            "only letters, digits and _",
        ),
        (
            "/commands/phase/do/",
            {"tree": "DEMO", "shot": "42", "phase": ""},
            "phase",
            "Enter a phase.",
        ),
        ("/commands/dispatcher/", {"text": "rm -rf /"}, "text", "Unknown dispatcher command"),
        ("/commands/dispatcher/", {"text": "do_phase:DEMO:42"}, "text", "takes 3 argument"),
        ("/commands/dispatcher/", {"text": "create_pulse:../../etc:1"}, "text", "not a tree"),
    ],
)
def test_bad_input_in_the_bar_is_400_next_to_the_field(
    operator_client, plant, monitor, url, data, field_name, message
):
    monitor.start()
    response = operator_client.post(url, data, **HX)
    assert response.status_code == 400
    assert message in field_error(response, field_name)
    assert 'data-result-kind="refused"' in response.content.decode()
    for other in {"tree", "shot", "phase", "text"} - {field_name}:
        assert field_error(response, other) == ""  # stale messages are cleared
    assert monitor.stop() == []
    (record,) = records()  # the attempt is audited, as posted
    assert (record.username, record.ok, record.arguments) == ("otto", False, data)
    assert message in record.result


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/commands/pulse/create/", {"tree": "DEMO", "shot": "43"}),
        ("/commands/dispatcher/", {"text": "abort_pending"}),
        ("/commands/sequence/abort/", {}),
    ],
)
def test_a_check_only_post_of_good_input_sends_nothing(operator_client, plant, monitor, url, data):
    monitor.start()
    response = operator_client.post(url, data, headers={"WM-Check-Only": "1"}, **HX)
    assert response.status_code == 204 and response.content == b""
    assert set(response["WM-Checked"].split(",")) >= set(data)  # the fields found good
    assert monitor.stop() == []
    assert records() == []  # nothing was tried yet: the question comes next


def test_the_check_of_quit_carries_its_own_question(operator_client, plant):
    check = {"headers": {"WM-Check-Only": "1"}, **HX}
    response = operator_client.post("/commands/dispatcher/", {"text": "quit"}, **check)
    assert response.status_code == 204
    assert response["WM-Question"].startswith("Quit the dispatcher? It exits")
    response = operator_client.post("/commands/dispatcher/", {"text": "abort"}, **check)
    assert response.status_code == 204 and "WM-Question" not in response


def test_a_check_only_post_of_bad_input_is_the_refusal(operator_client, viewer_client, plant):
    check = {"headers": {"WM-Check-Only": "1"}, **HX}
    response = operator_client.post("/commands/pulse/create/", {"tree": "1X", "shot": "1"}, **check)
    assert response.status_code == 400 and "not a tree name" in field_error(response, "tree")
    (record,) = records()
    assert record.refused and record.arguments == {"tree": "1X", "shot": "1"}
    response = viewer_client.post("/commands/pulse/create/", {"tree": "DEMO", "shot": "1"}, **check)
    assert response.status_code == 403


def test_every_bad_field_is_reported_at_once(operator_client, plant):
    response = operator_client.post("/commands/pulse/create/", {"tree": "1X", "shot": "x"}, **HX)
    assert field_error(response, "tree") and field_error(response, "shot")


def test_a_refusal_of_the_service_goes_next_to_its_field(operator_client, plant, monitor):
    monitor.start()
    response = operator_client.post(
        "/commands/actions/dispatch/",
        {"tree": "DEMO", "shot": "42", "path": "DEMO::TOP.DAQ.ADC1:INIT_ACTION"},
        **HX,
    )
    assert response.status_code == 400
    assert f"Did you mean {ADC1_INIT}?" in body(response)
    assert monitor.stop() == []


@pytest.mark.parametrize(
    ("url", "data", "message"),
    [
        ("/commands/actions/dispatch/", {"tree": "DEMO", "shot": "42"}, "Select at least one"),
        (
            "/commands/actions/dispatch/",
            {"tree": "DEMO", "shot": "42", "path": "\\DEMO::A+B"},
            "may not contain +",
        ),
        ("/commands/actions/abort/", {"tree": "DEMO", "shot": "0", "path": ADC1_INIT}, "range"),
        ("/commands/servers/quit/", {"ident": "DAQ_SERVER", "server_id": "1;id"}, "server id"),
        ("/commands/servers/start/", {"ident": "../../bin/sh"}, "only letters"),
        ("/commands/sequence/abort/", {"reason": "x" * 501}, "at most 500 characters"),
    ],
)
def test_bad_input_of_rows_is_400_with_the_message(
    operator_client, plant, monitor, url, data, message
):
    monitor.start()
    response = operator_client.post(url, data, **HX)
    assert response.status_code == 400
    assert message in body(response)
    assert monitor.stop() == []
    assert not plant.ran.exists()
    (record,) = records()
    assert (record.username, record.ok) == ("otto", False) and message in record.result


def test_redis_down_is_503_with_a_clear_message(operator_client, plant, redis_down):
    response = operator_client.post("/commands/sequence/abort/", {}, **HX)
    assert response.status_code == 503
    assert "cannot be reached" in body(response) and "nothing was sent" in body(response)
    response = operator_client.post("/commands/servers/all/kill/", {}, **HX)
    assert response.status_code == 503


def test_without_htmx_the_answer_is_a_page(operator_client, plant):
    response = operator_client.post(
        "/commands/tables/build/", PULSE, HTTP_REFERER="http://evil.example/phish"
    )
    assert response.status_code == 200
    text = body(response)
    assert "<h1>Build Tables</h1>" in text and 'aria-live="polite"' in text
    assert 'href="/actions/">← Back' in text  # a foreign referer is not followed
    assert 'id="bar-err-' not in text
    response = operator_client.post("/commands/tables/build/", {"tree": "", "shot": ""})
    assert response.status_code == 400 and "Tree: Enter a tree." in body(response)


# --- the controls on the pages ----------------------------------------------------------


def test_viewer_sees_no_control(viewer_client, plant):
    actions = viewer_client.get("/actions/").content.decode()
    servers = viewer_client.get("/servers/").content.decode()
    for page in (actions, servers):
        assert "/commands/" not in page
        assert 'id="command-result"' not in page
    assert 'id="dispatcher-bar"' not in actions and "data-select-action" not in actions
    assert "Start all" not in servers
    assert "Server log" in servers  # a read, for everyone
    assert 'href="/audit/"' in actions


def test_operator_sees_the_dispatcher_bar_prefilled(operator_client, plant):
    page = operator_client.get("/actions/?tree=DEMO&shot=42").content.decode()
    assert 'id="dispatcher-bar"' in page
    assert 'id="bar-tree" name="tree" value="DEMO"' in page
    assert 'id="bar-shot" name="shot" value="42"' in page
    assert 'name="phase" list="bar-phases" value="INIT"' in page  # the current phase
    datalist = page[page.index('<datalist id="bar-phases">') :]
    datalist = datalist[: datalist.index("</datalist>")]
    assert re.findall(r'value="(\w+)"', datalist) == ["INIT", "PULSE_ON", "STORE"]
    for label in ("Create Pulse", "Build Tables", "Do Phase", "Abort Sequence", "Send"):
        assert f">{label}</button>" in page
    assert 'id="command-result" class="command-result" role="status" aria-live="polite"' in page
    assert 'id="bulk-actions"' in page and "Dispatch selected" in page and "Abort selected" in page
    assert page.count('form="bulk-actions" name="path"') >= 23


def _controls(page: str, path: str) -> str:
    """The controls cell of the first row of ``path``."""
    start = page.index(f'name="path" value="{html.escape(path)}"')
    return page[start : page.index("</form>", start)]


def test_row_buttons_are_enabled_only_where_they_make_sense(operator_client, load_snapshot):
    load_snapshot("do_phase_PULSE_ON")
    page = operator_client.get("/actions/").content.decode()
    running = _controls(page, CAMERA_ACQ)
    assert re.search(r'data-command="dispatch"\s+disabled', running)
    assert not re.search(r'data-command="abort"\s+disabled', running)
    assert "hx-prompt=" in running and "hx-confirm=" in running
    done = _controls(page, ADC1_INIT)
    assert not re.search(r'data-command="dispatch"\s+disabled', done)
    assert re.search(r'data-command="abort"\s+disabled', done)
    off = _controls(page, "\\DEMO::TOP.DAQ.ADC4:INIT_ACTION")  # switched off in the tree
    assert re.search(r'data-command="dispatch"\s+disabled', off)


def test_server_buttons(operator_client, plant):
    page = operator_client.get("/servers/").content.decode()
    assert "Start all OFF classes" in page and "Kill all ON classes" in page
    ghost = page[page.index('name="ident" value="GHOST_SERVER"') :]
    ghost = ghost[: ghost.index("</form>")]
    assert not re.search(r'data-command="start"\s+disabled', ghost)
    assert re.search(r'data-command="quit"\s+disabled', ghost)
    daq = page[page.index('name="ident" value="DAQ_SERVER"') :]
    daq = daq[: daq.index("</form>")]
    assert re.search(r'data-command="start"\s+disabled', daq)
    for verb in ("stop", "restart", "quit", "kill"):
        assert f'hx-post="/commands/servers/{verb}/"' in daq
    assert daq.count("hx-prompt=") == 4  # every destructive one asks for a reason


def test_pushed_rows_carry_controls_only_for_operators():
    row = ActionRow(
        tree="DEMO", shot="42", server="DAQ_SERVER", path=ADC1_INIT, state="DONE",
        status="Success", phase="INIT",
    )  # fmt: skip
    operator = push.action_rows_html([row], current_phase="", summary=None, role=ROLE_OPERATOR)
    viewer = push.action_rows_html([row], current_phase="", summary=None, role=ROLE_VIEWER)
    assert 'hx-post="/commands/actions/dispatch/"' in operator
    assert "csrfmiddlewaretoken" not in operator  # the body's hx-headers carries the token
    assert "/commands/" not in viewer


# --- escaping ---------------------------------------------------------------------------


def test_a_path_with_script_is_escaped_everywhere(operator_client, plant, redis_db, monitor):
    redis_db.hset("ACTION_INFO:DEMO:42:DAQ_SERVER", EVIL_PATH, "DONE")
    redis_db.hset("ACTION_STATUS:DEMO:42", EVIL_PATH, "Failure")
    redis_db.hset("ACTION_PHASE_INFO:DEMO:42", EVIL_PATH, "INIT")
    redis_db.hset("ACTION_SERVER_INFO:DEMO:42", EVIL_PATH, "DAQ_SERVER")
    page = operator_client.get("/actions/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert 'value="\\DEMO::TOP.&lt;script&gt;alert(1)&lt;/script&gt;:ACT"' in page
    monitor.start()
    response = operator_client.post(
        "/commands/actions/dispatch/", {"tree": "DEMO", "shot": "42", "path": EVIL_PATH}, **HX
    )
    assert response.status_code == 200  # an action of the pulse: sent as stored
    assert monitor.stop()[1] == [
        "LPUSH",
        "ACTION_SERVER_TODO:DAQ_SERVER",
        f"DEMO+42+{EVIL_PATH}+0+0+0",
    ]
    answer = response.content.decode()
    assert "<script>" not in answer and "&lt;script&gt;alert(1)&lt;/script&gt;" in answer
    audit = operator_client.get("/audit/").content.decode()
    assert "<script>" not in audit and "&lt;script&gt;" in audit


def test_refused_input_is_escaped_in_the_answer(operator_client, plant):
    response = operator_client.post(
        "/commands/dispatcher/", {"text": "<img src=x onerror=alert(1)>"}, **HX
    )
    assert response.status_code == 400
    assert "<img" not in response.content.decode()


# --- Server log -------------------------------------------------------------------------


def test_server_log_shows_the_class_logs_and_the_last_site_output(
    viewer_client, operator, load_snapshot, site_command
):
    load_snapshot("show_log")
    s.server_kill(ident="DAQ_SERVER", actor=s.Actor.web(operator), reason="hung")
    response = viewer_client.get("/servers/log/?ident=DAQ_SERVER", **HX)
    assert response.status_code == 200
    text = body(response)
    assert "Server log of <code>DAQ_SERVER</code>" in text
    assert "server_kill by otto (web)" in text and "reason: hung" in text
    assert "site command args: $(id);x DAQ_SERVER KILL" in text
    assert "\\DEMO::TOP.DAQ.ADC1:STORE_ACTION" in text and "a + in the log" in text
    assert "TIMING:INIT_ACTION" not in text  # another class
    page = viewer_client.get("/servers/log/?ident=DAQ_SERVER")
    assert page.status_code == 200 and "<title>Server log" in page.content.decode()  # no htmx


def test_server_log_of_a_class_never_started(viewer_client, load_snapshot):
    load_snapshot("show_log")
    text = body(viewer_client.get("/servers/log/?ident=GHOST_SERVER", **HX))
    assert "No Start or Kill of GHOST_SERVER is on record." in text
    assert "\\DEMO::TOP.GHOST:INIT_ACTION" in text and "No log" in text


def test_server_log_says_when_no_server_of_the_class_registered(viewer_client, load_snapshot):
    load_snapshot("show_log")
    text = body(viewer_client.get("/servers/log/?ident=NOPE_SERVER", **HX))
    assert "No server of class <code>NOPE_SERVER</code> has registered in Redis." in text
    text = body(viewer_client.get("/servers/log/?ident=DAQ_SERVER", **HX))
    assert "has registered in Redis" not in text


@pytest.mark.parametrize("ident", ["", "../../etc", "<script>", "A:B"])
def test_server_log_refuses_a_bad_class(viewer_client, redis_db, ident):
    response = viewer_client.get("/servers/log/", {"ident": ident}, **HX)
    assert response.status_code == 400
    assert "<script>" not in response.content.decode()


def test_server_log_needs_login(client, db):
    assert client.get("/servers/log/?ident=DAQ_SERVER").status_code == 302


# --- Audit ------------------------------------------------------------------------------


@pytest.fixture
def history(plant, operator, django_user_model):
    from django.contrib.auth.models import Group

    other = django_user_model.objects.create_user(username="olga", password="pw")
    other.groups.add(Group.objects.get(name="operators"))
    otto, olga = s.Actor.web(operator), s.Actor.web(other)
    s.pulse_create(tree="DEMO", shot=43, actor=otto)
    s.tables_build(tree="DEMO", shot=43, actor=olga)
    s.sequence_abort(actor=olga, reason="<b>stuck</b>")
    with pytest.raises(s.CommandRefused):
        s.action_abort(tree="DEMO", shot=42, path=ADC1_INIT, actor=otto)
    s.server_quit(ident="DAQ_SERVER", server_id="2", actor=s.Actor.shell())


def _audit_rows(response) -> list[str]:
    table = response.content.decode()
    return re.findall(r"<td><code>(\w+)</code></td>", table)


def test_audit_lists_every_command_newest_first(viewer_client, history):
    response = viewer_client.get("/audit/")
    assert response.status_code == 200
    assert _audit_rows(response) == [
        "server_quit",
        "abort_action",
        "abort",
        "build_tables",
        "create_pulse",
    ]
    text = response.content.decode()
    assert "&lt;b&gt;stuck&lt;/b&gt;" in text and "<b>stuck</b>" not in text
    assert 'aria-current="page">Audit</a>' in text


def test_audit_tells_refused_and_denied_from_failed(viewer_client, operator_client, history):
    viewer_client.post("/commands/sequence/abort/", {"reason": "forged"}, **HX)
    operator_client.post("/commands/pulse/create/", {"tree": "$(id)", "shot": "1"}, **HX)
    CommandRecord.objects.create(username="otto", command="server_start", result="exit 1")
    html = viewer_client.get("/audit/").content.decode()
    outcomes = re.findall(r'<span class="badge [\w-]+"(?: title="[^"]*")?>(\w+)</span>', html)
    assert list(zip(_audit_rows(viewer_client.get("/audit/")), outcomes, strict=True)) == [
        ("server_start", "failed"),
        ("create_pulse", "refused"),
        ("abort", "denied"),
        ("server_quit", "ok"),
        ("abort_action", "refused"),
        ("abort", "ok"),
        ("build_tables", "ok"),
        ("create_pulse", "ok"),
    ]
    assert html.count('title="nothing was sent"') == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user=olga", ["abort", "build_tables"]),
        ("command=create_pulse", ["create_pulse"]),
        ("tree=demo&shot=43", ["build_tables", "create_pulse"]),
        ("tree=DEMO&shot=043", ["build_tables", "create_pulse"]),
        ("tree=DEMO&shot=42", ["abort_action"]),
        ("outcome=failed", ["abort_action"]),
        ("user=otto&outcome=ok", ["create_pulse"]),
        ("user=nobody", []),
        ("shot=<script>", ["server_quit", "abort_action", "abort", "build_tables", "create_pulse"]),
    ],
)
def test_audit_filters(viewer_client, history, query, expected):
    response = viewer_client.get("/audit/?" + query)
    assert response.status_code == 200
    assert _audit_rows(response) == expected
    assert "<script>" not in response.content.decode()


def test_audit_filters_show_what_they_filter_on(viewer_client, history):
    html = viewer_client.get("/audit/?user=nobody&command=<b>x").content.decode()
    assert "<option selected>nobody</option>" in html  # not "any" over an empty list
    assert "<option selected>&lt;b&gt;x</option>" in html


def test_audit_is_paginated(viewer_client, plant, operator):
    actor = s.Actor.web(operator)
    for _ in range(55):
        s.sequence_abort(actor=actor)
    first = viewer_client.get("/audit/?command=abort")
    assert len(_audit_rows(first)) == 50 and "Page 1 of 2" in first.content.decode()
    assert 'href="?command=abort&amp;page=2"' in first.content.decode()
    second = viewer_client.get("/audit/?command=abort&page=2")
    assert len(_audit_rows(second)) == 5
    assert len(_audit_rows(viewer_client.get("/audit/?page=999"))) == 5  # the last page


def test_audit_needs_the_view_permission(django_user_model, client, db):
    nobody = django_user_model.objects.create_user(username="nobody", password="pw")
    client.force_login(nobody)
    assert client.get("/audit/").status_code == 403
    assert 'href="/audit/"' not in client.get("/logs/").content.decode()


def test_audit_says_which_filters_it_could_not_use(operator_client, history):
    html = operator_client.get("/audit/?shot=abc&outcome=x&user=olga").content.decode()
    assert "not understood" in html and "outcome" in html
    # next to the field, with what was typed kept in it
    assert 'data-for="a-shot">a shot is a whole number, e.g. 42</span>' in html
    assert 'name="shot" value="abc"' in html
    assert re.findall(r"<td><code>(\w+)</code></td>", html) == ["abort", "build_tables"]
    partial = operator_client.get("/audit/?shot=4x", headers={"HX-Request": "true"})
    text = partial.content.decode()
    slot = 'id="a-err-{}" class="field-error" data-for="a-{}" hx-swap-oob="true">'
    assert slot.format("shot", "shot") + "a shot" in text
    assert slot.format("tree", "tree") + "</span>" in text
