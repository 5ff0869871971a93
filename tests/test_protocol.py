"""The protocol module against the recording of the genuine dispatcher."""

from __future__ import annotations

import pytest

from monitor_app import protocol as p


def pubsub_records(transcript):
    return [r for r in transcript if r["kind"] == "pubsub"]


def test_every_recorded_monitor_message_parses(transcript):
    monitor = [r["data"] for r in pubsub_records(transcript) if r["channel"] == p.MONITOR_PUBSUB]
    assert monitor
    for data in monitor:
        message = p.parse_monitor_message(data)
        assert message is not None, data
        assert message.tree == "DEMO"
        if isinstance(message, (p.Doing, p.Done)):
            assert message.path.startswith("\\DEMO::")
            assert message.ident.endswith("_SERVER")


def test_done_messages_rebuild_exactly(transcript):
    for record in pubsub_records(transcript):
        message = p.parse_monitor_message(record["data"])
        if isinstance(message, p.Done):
            rebuilt = p.done_message(
                message.tree,
                message.shot,
                message.ident,
                message.server_id,
                message.path,
                message.nid,
                message.status,
            )
            assert rebuilt == record["data"]
        elif isinstance(message, p.Doing):
            rebuilt = p.doing_message(
                message.tree,
                message.shot,
                message.ident,
                message.server_id,
                message.path,
                message.nid,
            )
            assert rebuilt == record["data"]
        elif isinstance(message, p.EndPhase):
            assert p.end_phase_message(message.tree, message.shot, message.phase) == record["data"]


def test_completion_messages_keep_the_log_whole(transcript):
    completions = [
        r["data"] for r in pubsub_records(transcript) if r["channel"] == p.DISPATCHER_PUBSUB
    ]
    assert completions
    for data in completions:
        message = p.parse_completion(data)
        assert message is not None
        assert message.status in p.STATUSES
        assert data.endswith(message.log)
        assert "Doing " + message.path in message.log or message.status == p.STATUS_ABORTED


def test_completion_log_may_hold_plus_signs():
    message = p.parse_completion("DEMO+42+DAQ_SERVER+\\DEMO::TOP:A+Success+x+y=z\n+")
    assert message.log == "x+y=z\n+"


def test_server_messages_parse(transcript):
    seen = set()
    for record in pubsub_records(transcript):
        if record["channel"].startswith(p.SERVER_PUBSUB + ":"):
            message = p.parse_server_message(record["channel"], record["data"])
            assert message is not None, record
            seen.add(message.verb)
    assert {p.DO, p.HEARTBEAT, p.ABORT, p.QUIT} <= seen


def test_dispatcher_commands_parse_in_either_case(transcript):
    for record in pubsub_records(transcript):
        if record["channel"] == p.DISPATCHER_COMMANDS:
            assert p.parse_dispatcher_command(record["data"]) is not None, record["data"]
    assert p.parse_dispatcher_command("ABORT").verb == p.CMD_ABORT
    assert p.parse_dispatcher_command("do_phase:DEMO:42") is None
    assert p.parse_dispatcher_command("launch_missiles") is None


def test_every_recorded_key_name_is_understood(transcript):
    names = set()
    for record in transcript:
        if record["kind"] == "snapshot":
            names |= set(record["keys"])
    assert names
    for name in names:
        ref = p.parse_key(name)
        assert ref is not None, name


@pytest.mark.parametrize(
    "name",
    [
        "ACTION_INFO:DEMO:42",
        "ACTION_INFO:DEMO:42:DAQ:EXTRA",
        "ACTION_INFO:DEMO:x42:DAQ",
        "ACTION_STATUS:DEMO",
        "ACTION_SERVER_ACTIVE:",
        "ACTION_SERVER_ACTIVE:A:B",
        "SOMETHING_ELSE",
        "",
    ],
)
def test_keys_that_are_not_ours(name):
    assert p.parse_key(name) is None


@pytest.mark.parametrize(
    "data",
    ["", "DOING", "DOING+DEMO+42", "DONE+a+b+c+d+e+f", "END_PHASE+DEMO", "HELLO+1+2+3"],
)
def test_malformed_monitor_messages(data):
    assert p.parse_monitor_message(data) is None


def test_work_items_as_the_console_and_the_dispatcher_send_them():
    item = p.work_item("DEMO", 42, "\\DEMO::TOP.DAQ.ADC1:INIT_ACTION")
    assert item == "DEMO+42+\\DEMO::TOP.DAQ.ADC1:INIT_ACTION+0+0+0"
    assert p.parse_work_item(item)[5] == "0"
    assert p.parse_work_item("DEMO+42+\\X::Y+3+0")[5] == "1"
    assert p.parse_work_item("junk") is None


@pytest.mark.parametrize(
    "value,expected",
    [
        ('{"tree": "DEMO", "shot": "42"}', ("DEMO", "42")),
        ('{"tree": "DEMO", "shot": 42}', ("DEMO", "42")),
        ("not json", None),
        ("[1, 2]", None),
        ('{"tree": "DE:MO", "shot": "42"}', None),
        ('{"tree": "DEMO", "shot": "-1"}', None),
        (None, None),
    ],
)
def test_last_build_table(value, expected):
    assert p.parse_last_build_table(value) == expected


@pytest.mark.parametrize(
    "state,status,category",
    [
        ("NOT_DISPATCHED", "none", "waiting"),
        ("DONE", "Success", "success"),
        ("DONE", "Failure", "failed"),
        ("DONE", "Aborted", "failed"),
        ("OFF", "none", "off"),
        ("SERVER_OFF", "NotExecuted", "off"),
        ("DOING", "None", "busy"),
        ("DISPATCHED", "None", "busy"),
        ("DONE", "ServerCrashed", "busy"),
        ("unknown", "unknown", "busy"),
    ],
)
def test_row_colours(state, status, category):
    assert p.action_category(state, status) == category
