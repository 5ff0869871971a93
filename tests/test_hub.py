"""The hub: one render per role, one frame per socket per batch."""

from __future__ import annotations

import json

from monitor_app.hub import TOPIC_HEADER, Hub, joined, pulse_topic
from monitor_app.state import PulseRef
from tests.test_reader import Inbox

PULSE = pulse_topic(PulseRef("DEMO", "42"))


class Broken:
    async def push(self, message: str) -> None:
        raise ConnectionError("gone")


def rows(role: str) -> str:
    return f'<tr id="act-1" data-role="{role}"></tr>'


def header(role: str) -> str:
    return '<div id="status"></div>'


async def test_a_batch_is_one_frame_per_socket():
    hub = Hub()
    both, header_only, operator = Inbox(), Inbox(), Inbox()
    hub.add(both, {TOPIC_HEADER, PULSE}, "viewer")
    hub.add(header_only, {TOPIC_HEADER}, "viewer")
    hub.add(operator, {TOPIC_HEADER, PULSE}, "operator")
    await hub.publish_many([(PULSE, rows), (TOPIC_HEADER, header)])
    assert both.messages == [rows("viewer") + header("viewer")]
    assert header_only.messages == [header("viewer")]
    assert operator.messages == [rows("operator") + header("viewer")]
    assert hub.messages_sent == 3


async def test_a_role_with_nothing_gets_only_the_rest():
    hub = Hub()
    viewer = Inbox()
    hub.add(viewer, {TOPIC_HEADER, PULSE}, "viewer")
    await hub.publish_many(
        [(PULSE, lambda role: rows(role) if role == "operator" else None), (TOPIC_HEADER, header)]
    )
    assert viewer.messages == [header("viewer")]


async def test_json_notes_are_frames_of_their_own():
    hub = Hub()
    inbox = Inbox()
    hub.add(inbox, {TOPIC_HEADER, PULSE}, "viewer")
    note = json.dumps({"refresh": "actions"})
    await hub.publish_many([(PULSE, lambda role: note), (TOPIC_HEADER, header)])
    assert inbox.messages == [header("viewer"), note]
    assert json.loads(inbox.messages[1]) == {"refresh": "actions"}
    assert joined(["<a>", note, "<b>"]) == ["<a><b>", note]


async def test_a_dead_socket_does_not_stop_the_others():
    hub = Hub()
    inbox = Inbox()
    hub.add(Broken(), {PULSE}, "viewer")
    hub.add(inbox, {PULSE}, "viewer")
    await hub.publish(PULSE, rows)
    assert inbox.messages == [rows("viewer")]


async def test_the_relay_gets_a_batch_once_with_both_roles():
    hub = Hub()
    sent = []

    async def relay(rendered):
        sent.append(rendered)

    hub.relay = relay
    await hub.publish_many([(PULSE, rows), (TOPIC_HEADER, header), ("logs", header)])
    assert len(sent) == 1
    assert set(sent[0]) == {PULSE, TOPIC_HEADER}  # the log tail is every process's own
    assert sent[0][PULSE] == {"operator": rows("operator"), "viewer": rows("viewer")}
