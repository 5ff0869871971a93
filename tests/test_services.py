"""The command layer against a real Redis: the exact operations of each
command (seen with MONITOR), refusals that send nothing, the audit record,
the log line, Redis down, the site command."""

from __future__ import annotations

import json
import re

import pytest
from django.core.exceptions import PermissionDenied

from monitor_app import protocol as p
from monitor_app import services as s
from monitor_app.models import CommandRecord

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pubsub_log")]

ADC1_INIT = "\\DEMO::TOP.DAQ.ADC1:INIT_ACTION"
CAMERA_ACQ = "\\DEMO::TOP.CAMERA:ACQ_ACTION"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - (\S+) \| (.*)$")

BAD_TREES = [
    "",
    "   ",
    "; rm -rf /",
    "$(id)",
    "../../etc",
    "DEMO+1",
    "DE:MO",
    "1DEMO",
    "DÉMO",
    "DE\nMO",
    "A" * 65,
    "de mo",
    None,
]
BAD_SHOTS = [
    "",
    "-1",
    "0",
    "42; rm -rf /",
    "$(id)",
    "4.2",
    "+42",
    "4 2",
    "2147483648",
    "9" * 5000,
    "４２",
    "0x10",
    None,
    -5,
    True,
]
BAD_PATHS = [
    "",
    "; rm -rf /",
    "$(id)",
    "../../etc/passwd",
    "\\DEMO::TOP+X",
    "\\DÉMO::X",
    "\\DEMO::TOP.A B",
    " \\DEMO::TOP.A",
    "\\DEMO::TOP.A\n",
    "\\DEMO::NOT_AN_ACTION",
]
BAD_NAMES = ["", "; rm -rf /", "$(id)", "../../etc", "A+B", "A:B", "ÅSE", "a b", "A" * 65]
BAD_IDS = ["", "x", "-1", "1;id", "$(id)", "1+1", "１", "1234567"]


def records() -> list[CommandRecord]:
    return list(CommandRecord.objects.order_by("id"))


def log_lines(path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [LOG_LINE.match(line).groups() for line in path.read_text().splitlines()]


# --- dispatcher commands --------------------------------------------------------


def test_create_pulse_sends_hset_and_publish_in_one_transaction(
    monitor, web_actor, pubsub_log, redis_db
):
    monitor.start()
    result = s.pulse_create(tree="demo", shot="42", actor=web_actor)
    assert monitor.stop() == [
        ["MULTI"],
        ["HSET", "DISPATCH_DEFAULT", "TREE", "DEMO", "SHOT", "42"],
        ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "create_pulse:DEMO:42"],
        ["EXEC"],
    ]
    assert result.ok and result.command == "create_pulse"
    assert result.sent_text == [
        "HSET DISPATCH_DEFAULT TREE DEMO SHOT 42",
        "PUBLISH ACTION_DISPATCHER_COMMANDS create_pulse:DEMO:42",
    ]
    (record,) = records()
    assert (record.username, record.source, record.command, record.tree, record.shot) == (
        "otto",
        "web",
        "create_pulse",
        "DEMO",
        "42",
    )
    assert record.ok and record.user == web_actor.user and record.pk == result.record_id
    assert record.arguments == {"tree": "demo", "shot": "42"}
    assert "PUBLISH ACTION_DISPATCHER_COMMANDS create_pulse:DEMO:42" in record.result
    assert log_lines(pubsub_log) == [("WEBMONITOR_COMMAND", "otto: create_pulse DEMO 42 -> ok")]


def test_a_subscriber_sees_the_message(redis_db, shell_actor):
    sub = redis_db.pubsub()
    sub.subscribe(p.DISPATCHER_COMMANDS)
    assert sub.get_message(timeout=2)["type"] == "subscribe"
    s.pulse_create(tree="DEMO", shot=43, actor=shell_actor)
    msg = sub.get_message(timeout=2)
    assert msg["data"] == "create_pulse:DEMO:43"
    assert redis_db.hgetall(p.DISPATCH_DEFAULT) == {"TREE": "DEMO", "SHOT": "43"}
    assert records()[0].source == "shell" and records()[0].user is None


def test_build_tables_uses_dispatch_default(redis_db, monitor, shell_actor):
    redis_db.hset(p.DISPATCH_DEFAULT, mapping={"TREE": "DEMO", "SHOT": "42"})
    monitor.start()
    s.tables_build(actor=shell_actor)
    s.tables_build(tree="other", shot=7, actor=shell_actor)
    assert monitor.stop() == [
        ["MULTI"],
        ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "build_tables:DEMO:42"],
        ["EXEC"],
        ["MULTI"],
        ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "build_tables:OTHER:7"],
        ["EXEC"],
    ]
    assert [(r.tree, r.shot) for r in records()] == [("DEMO", "42"), ("OTHER", "7")]


def test_build_tables_without_default_is_refused(redis_db, monitor, shell_actor):
    monitor.start()
    with pytest.raises(s.CommandRefused, match="No default pulse"):
        s.tables_build(actor=shell_actor)
    assert monitor.stop() == []
    (record,) = records()
    assert not record.ok and "No default pulse" in record.result


def test_do_phase_without_warnings_is_sent(load_snapshot, redis_db, monitor, shell_actor):
    load_snapshot("do_phase_INIT")  # tables of DEMO 42 built; PULSE_ON servers all ON
    monitor.start()
    check = s.phase_check(phase="pulse_on")
    assert check.tables_built and check.actions > 0 and check.warnings == []
    result = s.phase_do(phase="pulse_on", actor=shell_actor)
    assert monitor.stop() == [
        ["MULTI"],
        ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_phase:DEMO:42:PULSE_ON"],
        ["EXEC"],
    ]
    assert result.warnings == []
    record = records()[0]
    assert record.arguments["phase"] == "PULSE_ON" and record.tree == "DEMO"


def test_do_phase_asks_confirmation_for_off_servers(load_snapshot, monitor, web_actor):
    load_snapshot("do_phase_INIT")  # GHOST_SERVER, needed by INIT, is OFF
    monitor.start()
    with pytest.raises(s.ConfirmationRequired) as info:
        s.phase_do(tree="DEMO", shot=42, phase="INIT", actor=web_actor)
    check = info.value.check
    assert [sp.ident for sp in check.servers_off] == ["GHOST_SERVER"]
    assert "GHOST_SERVER is OFF" in info.value.message
    assert records() == []  # a question, not an outcome
    result = s.phase_do(tree="DEMO", shot=42, phase="INIT", actor=web_actor, confirm=True)
    assert monitor.stop() == [
        ["MULTI"],
        ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_phase:DEMO:42:INIT"],
        ["EXEC"],
    ]
    assert any("GHOST_SERVER" in w for w in result.warnings)
    assert any("GHOST_SERVER" in line for line in records()[0].result.splitlines())


def test_do_phase_warns_when_tables_not_built(load_snapshot, redis_db, monitor, shell_actor):
    load_snapshot("do_phase_INIT")
    redis_db.set(p.LAST_BUILD_TABLE, json.dumps({"tree": "DEMO", "shot": "41"}))
    monitor.start()
    check = s.phase_check(tree="DEMO", shot="42", phase="PULSE_ON")
    assert not check.tables_built and str(check.last_build) == "DEMO 41"
    assert "have not been built" in check.warnings[0]
    with pytest.raises(s.ConfirmationRequired):
        s.phase_do(tree="DEMO", shot="42", phase="PULSE_ON", actor=shell_actor)
    assert monitor.stop() == []


def test_do_phase_warns_about_stale_servers(load_snapshot, redis_db, settings, shell_actor):
    from monitor_app import console_keys as ck

    load_snapshot("do_phase_INIT")
    redis_db.hset(ck.heartbeat_advanced_key(), "TIMING_SERVER:1", "7 1000.0")  # long ago
    check = s.phase_check(tree="DEMO", shot=42, phase="PULSE_ON")
    assert [sp.ident for sp in check.servers_stale] == ["TIMING_SERVER"]
    assert check.needs_confirmation


def test_unknown_phase_warns(load_snapshot, shell_actor):
    load_snapshot("do_phase_INIT")
    check = s.phase_check(tree="DEMO", shot=42, phase="NOPE")
    assert check.actions == 0 and "No action" in check.warnings[0]


def test_phases_list(load_snapshot):
    load_snapshot("build_tables")
    assert s.phases_list(tree="demo", shot=42) == ["INIT", "PULSE_ON", "STORE"]


def test_do_sequence(load_snapshot, monitor, shell_actor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    s.sequence_do(phase="init", start="10", end=20, actor=shell_actor, confirm=True)
    assert monitor.stop() == [
        ["MULTI"],
        ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_sequence:DEMO:42:INIT:10:20"],
        ["EXEC"],
    ]


def test_do_sequence_range_is_checked(load_snapshot, monitor, shell_actor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    with pytest.raises(s.CommandRefused) as info:
        s.sequence_do(phase="INIT", start=20, end=10, actor=shell_actor, confirm=True)
    assert "end" in info.value.errors
    with pytest.raises(s.CommandRefused) as info:
        s.sequence_do(phase="INIT", start="-1", end="x", actor=shell_actor, confirm=True)
    assert set(info.value.errors) == {"start", "end"}
    assert monitor.stop() == []


@pytest.mark.parametrize(
    ("service", "message"),
    [
        (s.sequence_abort, "abort"),
        (s.pending_abort, "abort_pending"),
        (s.pending_print, "print_pending"),
        (s.dispatcher_quit, "quit"),
    ],
)
def test_plain_dispatcher_commands(redis_db, monitor, shell_actor, service, message):
    monitor.start()
    result = service(actor=shell_actor)
    assert monitor.stop() == [
        ["MULTI"],
        ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", message],
        ["EXEC"],
    ]
    assert result.ok and records()[0].command == message


def test_reason_is_recorded(redis_db, shell_actor):
    s.sequence_abort(actor=shell_actor, reason="  camera\nstuck  ")
    assert records()[0].reason == "camera stuck"


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("do_sequence:demo:42:init:10:20", "do_sequence:DEMO:42:INIT:10:20"),
        ("ABORT_PENDING", "abort_pending"),
        ("print_pending", "print_pending"),
        ("abort", "abort"),
        ("build_tables:demo:042", "build_tables:DEMO:42"),
        ("do_phase:Demo:42:store", "do_phase:DEMO:42:STORE"),
    ],
)
def test_free_text_dispatcher_command(load_snapshot, monitor, web_actor, text, sent):
    load_snapshot("do_phase_INIT")
    monitor.start()
    s.dispatcher_command_send(text=text, actor=web_actor, confirm=True, reason="shift check")
    assert monitor.stop()[1] == ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", sent]
    assert records()[0].reason == "shift check"  # every command keeps the reason given


def test_free_text_create_pulse_sets_the_default_too(redis_db, monitor, web_actor):
    monitor.start()
    s.dispatcher_command_send(text="create_pulse:demo:44", actor=web_actor)
    assert monitor.stop()[1] == ["HSET", "DISPATCH_DEFAULT", "TREE", "DEMO", "SHOT", "44"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "rm -rf /",
        "do_phase:DEMO:42",
        "do_phase:DEMO:42:INIT; rm -rf /",
        "do_phase:DEMO:42:INIT:extra",
        "create_pulse:DEMO:$(id)",
        "create_pulse:../../etc:1",
        "create_pulse:DEMO+1:42",
        "build_tables:DEMO:99999999999",
        "do_sequence:DEMO:42:INIT:20:10",
        "abort:now",
        "quit:",
        "dö_phase:DEMO:42:INIT",
        "create_pulse DEMO 42",
        "x" * 400,
    ],
)
def test_free_text_refusals_send_nothing(redis_db, monitor, web_actor, text):
    monitor.start()
    with pytest.raises(s.CommandRefused) as info:
        s.dispatcher_command_send(text=text, actor=web_actor)
    assert list(info.value.errors) == ["text"]
    assert monitor.stop() == []
    (record,) = records()
    assert not record.ok and record.command == "dispatcher_command"


# --- actions ----------------------------------------------------------------------


def test_dispatch_action(load_snapshot, redis_db, monitor, web_actor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    result = s.action_dispatch(tree="demo", shot="42", path=ADC1_INIT, actor=web_actor)
    assert monitor.stop() == [
        ["MULTI"],
        [
            "LPUSH",
            "ACTION_SERVER_TODO:DAQ_SERVER",
            "DEMO+42+\\DEMO::TOP.DAQ.ADC1:INIT_ACTION+0+0+0",
        ],
        ["PUBLISH", "ACTION_SERVER_PUBSUB:DAQ_SERVER", "DO"],
        ["EXEC"],
    ]
    assert redis_db.lrange("ACTION_SERVER_TODO:DAQ_SERVER", 0, -1) == [
        "DEMO+42+\\DEMO::TOP.DAQ.ADC1:INIT_ACTION+0+0+0"
    ]
    assert result.ok and result.warnings == []
    record = records()[0]
    assert record.arguments["server"] == "DAQ_SERVER" and record.arguments["path"] == ADC1_INIT


def test_dispatch_to_a_class_without_server_warns(load_snapshot, web_actor):
    load_snapshot("do_phase_INIT")
    result = s.action_dispatch(
        tree="DEMO", shot=42, path="\\DEMO::TOP.GHOST:INIT_ACTION", actor=web_actor
    )
    assert "waits in its queue" in result.warnings[0]


def test_dispatch_of_a_running_or_off_action_is_refused(
    load_snapshot, redis_db, monitor, web_actor
):
    load_snapshot("do_phase_INIT")
    redis_db.hset("ACTION_INFO:DEMO:42:DAQ_SERVER", ADC1_INIT, "DOING")
    monitor.start()
    with pytest.raises(s.CommandRefused, match="abort it before"):
        s.action_dispatch(tree="DEMO", shot=42, path=ADC1_INIT, actor=web_actor)
    with pytest.raises(s.CommandRefused, match="switched off"):
        s.action_dispatch(
            tree="DEMO", shot=42, path="\\DEMO::TOP.DAQ.ADC4:INIT_ACTION", actor=web_actor
        )
    assert monitor.stop() == []


def test_path_must_be_an_action_of_that_pulse(load_snapshot, monitor, web_actor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    with pytest.raises(s.CommandRefused) as info:
        s.action_dispatch(tree="DEMO", shot=43, path=ADC1_INIT, actor=web_actor)
    assert "is not an action of DEMO 43" in info.value.errors["path"][0]
    with pytest.raises(s.CommandRefused) as info:  # the stored spelling is suggested
        s.action_abort(tree="DEMO", shot=42, path="DEMO::TOP.CAMERA:ACQ_ACTION", actor=web_actor)
    assert "Did you mean \\DEMO::TOP.CAMERA:ACQ_ACTION?" in info.value.errors["path"][0]
    assert monitor.stop() == []


def test_abort_action_sends_the_stored_path_to_its_class(
    load_snapshot, redis_db, monitor, web_actor
):
    load_snapshot("do_phase_PULSE_ON")  # the long camera action is DOING
    assert redis_db.hget("ACTION_INFO:DEMO:42:CAMERA_SERVER", CAMERA_ACQ) == "DOING"
    monitor.start()
    result = s.action_abort(
        tree="DEMO", shot=42, path=CAMERA_ACQ, actor=web_actor, reason="too long"
    )
    assert monitor.stop() == [
        ["MULTI"],
        ["PUBLISH", "ACTION_SERVER_PUBSUB:CAMERA_SERVER", "ABORT+\\DEMO::TOP.CAMERA:ACQ_ACTION"],
        ["EXEC"],
    ]
    assert result.ok
    assert records()[0].reason == "too long"


def test_abort_of_an_action_not_running_is_refused(load_snapshot, monitor, web_actor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    with pytest.raises(s.CommandRefused, match="not running"):
        s.action_abort(tree="DEMO", shot=42, path=ADC1_INIT, actor=web_actor)
    assert monitor.stop() == []


def test_bulk_dispatch_runs_each_and_reports_each(load_snapshot, monitor, web_actor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    out = s.actions_dispatch(
        tree="DEMO",
        shot=42,
        paths=[ADC1_INIT, "$(id)", "\\DEMO::TOP.TIMING:INIT_ACTION"],
        actor=web_actor,
    )
    assert [type(o).__name__ for o in out] == ["CommandResult", "CommandRefused", "CommandResult"]
    writes = monitor.stop()
    assert [w[1] for w in writes if w[0] == "LPUSH"] == [
        "ACTION_SERVER_TODO:DAQ_SERVER",
        "ACTION_SERVER_TODO:TIMING_SERVER",
    ]
    assert [r.ok for r in records()] == [True, False, True]
    with pytest.raises(s.CommandRefused):
        s.actions_abort(tree="DEMO", shot=42, paths=[], actor=web_actor)


def test_action_log(load_snapshot):
    load_snapshot("show_log")
    log = s.action_log_read(tree="demo", shot="42", path="\\DEMO::TOP.DAQ.ADC1:STORE_ACTION")
    assert log.server == "DAQ_SERVER"
    assert "a + in the log" in log.log and log.log.splitlines()[-1].endswith("STORE_ACTION")
    none = s.action_log_read(tree="DEMO", shot=42, path="\\DEMO::TOP.GHOST:INIT_ACTION")
    assert none.log is None
    assert records() == []  # a read


# --- servers ----------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["STOP", "RESTART", "QUIT"])
def test_server_control(load_snapshot, monitor, web_actor, verb):
    load_snapshot("do_phase_INIT")
    monitor.start()
    result = s.server_control(ident="DAQ_SERVER", server_id="02", verb=verb, actor=web_actor)
    assert monitor.stop() == [
        ["MULTI"],
        ["PUBLISH", "ACTION_SERVER_PUBSUB:DAQ_SERVER", f"{verb}+2"],
        ["EXEC"],
    ]
    assert result.ok and result.warnings == []
    assert records()[0].command == f"server_{verb.lower()}"


def test_server_control_warns_about_a_server_not_on(load_snapshot, web_actor):
    load_snapshot("do_phase_INIT")
    result = s.server_quit(ident="GHOST_SERVER", server_id="1", actor=web_actor)
    assert "is OFF" in result.warnings[0]
    result = s.server_stop(ident="NEW_SERVER", actor=web_actor)
    assert "not registered" in result.warnings[0]


def test_server_control_verb_is_checked(redis_db, web_actor):
    with pytest.raises(s.CommandRefused):
        s.server_control(ident="DAQ_SERVER", server_id="1", verb="HEARTBEAT", actor=web_actor)


def test_server_start_runs_the_site_command_as_a_list(redis_db, monitor, site_command, web_actor):
    monitor.start()
    result = s.server_start(ident="TIMING_SERVER", actor=web_actor, reason="after crash")
    assert result.ok
    # The "$(id);x" in the configured list reaches the script as it is: no shell.
    assert site_command.ran.read_text() == repr(["$(id);x", "TIMING_SERVER", "START"])
    assert "site command args: $(id);x TIMING_SERVER START" in result.details["output"]
    assert "to stderr" in result.details["output"]
    assert result.details["returncode"] == 0
    assert monitor.stop() == []  # nothing in Redis does this
    record = records()[0]
    assert record.command == "server_start" and "site command args" in record.result
    assert s.last_site_output(ident="TIMING_SERVER") == record


def test_server_kill_failure_is_reported(redis_db, site_command, web_actor, pubsub_log):
    site_command.mode.write_text("fail")
    result = s.server_kill(ident="DAQ_SERVER", actor=web_actor)
    ((_, line),) = log_lines(pubsub_log)  # the command line as a shell shows it
    assert " DAQ_SERVER KILL -> failed: " in line and "[" not in line
    assert not result.ok and result.details["returncode"] == 3
    assert "exit status 3" in result.message
    assert site_command.ran.read_text().endswith("'DAQ_SERVER', 'KILL']")
    assert not records()[0].ok


def test_site_command_timeout(redis_db, settings, site_command, web_actor):
    site_command.mode.write_text("slow")
    settings.WEBMONITOR_SERVER_COMMAND_TIMEOUT = 0.5
    result = s.server_start(ident="DAQ_SERVER", actor=web_actor)
    assert not result.ok and result.details["timed_out"]
    assert "did not finish within 0.5 s" in result.message


def test_site_command_missing(redis_db, settings, web_actor):
    settings.WEBMONITOR_SERVER_COMMAND = []
    with pytest.raises(s.CommandRefused, match="WEBMONITOR_SERVER_COMMAND"):
        s.server_start(ident="DAQ_SERVER", actor=web_actor)
    settings.WEBMONITOR_SERVER_COMMAND = ["/nonexistent/server_command.sh"]
    with pytest.raises(s.CommandRefused, match="cannot be run"):
        s.server_kill(ident="DAQ_SERVER", actor=web_actor)


@pytest.mark.parametrize("ident", BAD_NAMES)
def test_site_command_refuses_bad_class_without_running(redis_db, site_command, web_actor, ident):
    with pytest.raises(s.CommandRefused) as info:
        s.server_start(ident=ident, actor=web_actor)
    assert list(info.value.errors) == ["ident"]
    assert not site_command.ran.exists()


# --- validation: refused, nothing sent --------------------------------------------


def _cases():
    for tree in BAD_TREES:
        yield "tree", lambda a, x=tree: s.pulse_create(tree=x, shot=42, actor=a)
        yield "tree", lambda a, x=tree: s.action_dispatch(tree=x, shot=42, path=ADC1_INIT, actor=a)
    for shot in BAD_SHOTS:
        yield "shot", lambda a, x=shot: s.pulse_create(tree="DEMO", shot=x, actor=a)
        yield "shot", lambda a, x=shot: s.tables_build(tree="DEMO", shot=x, actor=a)
        yield "shot", lambda a, x=shot: s.action_abort(tree="DEMO", shot=x, path=ADC1_INIT, actor=a)
    for path in BAD_PATHS:
        yield "path", lambda a, x=path: s.action_dispatch(tree="DEMO", shot=42, path=x, actor=a)
        yield "path", lambda a, x=path: s.action_abort(tree="DEMO", shot=42, path=x, actor=a)
    for name in BAD_NAMES:
        yield "phase", lambda a, x=name: s.phase_do(phase=x, actor=a, confirm=True)
        yield (
            "ident",
            lambda a, x=name: s.server_control(ident=x, server_id="1", verb="QUIT", actor=a),
        )
    for server_id in BAD_IDS:
        yield (
            "server_id",
            lambda a, x=server_id: s.server_control(
                ident="DAQ_SERVER", server_id=x, verb="QUIT", actor=a
            ),
        )
    yield "reason", lambda a: s.sequence_abort(actor=a, reason="x" * 501)


CASES = list(_cases())


@pytest.mark.parametrize(("field_name", "call"), CASES)
def test_bad_input_is_refused_and_nothing_is_sent(
    load_snapshot, monitor, web_actor, pubsub_log, field_name, call
):
    load_snapshot("do_phase_INIT")
    monitor.start()
    with pytest.raises(s.CommandRefused) as info:
        call(web_actor)
    assert field_name in info.value.errors, info.value.errors
    assert info.value.errors[field_name][0]  # a message that says what is wrong
    assert monitor.stop() == []
    if field_name != "reason":  # the reason is checked before anything is recorded
        (record,) = records()
        assert not record.ok and record.result
        assert "-> refused:" in log_lines(pubsub_log)[0][1]


def test_all_bad_fields_are_reported_at_once(redis_db, web_actor):
    with pytest.raises(s.CommandRefused) as info:
        s.pulse_create(tree="$(id)", shot="-1", actor=web_actor)
    assert set(info.value.errors) == {"tree", "shot"}
    assert "tree: Tree '$(id)' is not a tree name" in info.value.message


# --- permission, Redis down -------------------------------------------------------


def test_viewer_is_denied_and_nothing_is_written(redis_db, monitor, viewer):
    actor = s.Actor.web(viewer)
    for call in (
        lambda: s.pulse_create(tree="DEMO", shot=42, actor=actor),
        lambda: s.sequence_abort(actor=actor),
        lambda: s.dispatcher_command_send(text="abort", actor=actor),
        lambda: s.server_start(ident="X", actor=actor),
        lambda: s.servers_site_all(idents=["X"], verb="KILL", actor=actor),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert monitor.stop() == []
    assert records() == []


@pytest.mark.parametrize(
    "call",
    [
        lambda a: s.pulse_create(tree="DEMO", shot=42, actor=a),
        lambda a: s.tables_build(actor=a),
        lambda a: s.phase_do(tree="DEMO", shot=42, phase="INIT", actor=a, confirm=True),
        lambda a: s.sequence_abort(actor=a),
        lambda a: s.action_dispatch(tree="DEMO", shot=42, path=ADC1_INIT, actor=a),
        lambda a: s.action_abort(tree="DEMO", shot=42, path=ADC1_INIT, actor=a),
        lambda a: s.server_control(ident="DAQ_SERVER", server_id="1", verb="QUIT", actor=a),
        lambda a: s.dispatcher_command_send(text="abort_pending", actor=a),
    ],
)
def test_redis_down_is_a_clear_error(redis_db, redis_down, web_actor, pubsub_log, call):
    with pytest.raises(s.RedisUnreachable) as info:
        call(web_actor)
    assert "cannot be reached" in info.value.message
    assert "nothing was sent" in info.value.message
    (record,) = records()
    assert not record.ok and "cannot be reached" in record.result
    assert redis_db.dbsize() == 0  # the real Redis got nothing


def test_redis_stopped_mid_test(private_redis, web_actor):
    private_redis.stop()
    try:
        with pytest.raises(s.RedisUnreachable):
            s.pulse_create(tree="DEMO", shot=42, actor=web_actor)
    finally:
        private_redis.start()
    assert private_redis.client().hgetall(p.DISPATCH_DEFAULT) == {}


def test_log_message(pubsub_log, web_actor):
    line = s.log_message_write(message="  beam\n dump  ", actor=web_actor)
    assert line == "otto: beam dump"
    assert log_lines(pubsub_log) == [("WEBMONITOR_MESSAGE", "otto: beam dump")]
    with pytest.raises(s.CommandRefused) as info:
        s.log_message_write(message="   ", actor=web_actor)
    assert "message" in info.value.errors


def test_unwritable_log_does_not_fail_the_command(redis_db, settings, tmp_path, web_actor):
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings.WEBMONITOR_PUBSUB_LOG = blocker / "sub" / "log"  # a file as directory
    assert s.pulse_create(tree="DEMO", shot=42, actor=web_actor).ok
