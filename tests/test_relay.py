"""Several console processes, one reader: election and relay."""

from __future__ import annotations

import asyncio

from monitor_app.hub import TOPIC_SERVERS, Hub
from monitor_app.reader import Reader
from monitor_app.relay import Follower, watched_get, watched_note
from monitor_app.state import PulseRef
from tests.test_reader import Inbox


async def start_process(name: str):
    hub, inbox = Hub(), Inbox()
    hub.add(inbox, {TOPIC_SERVERS}, "viewer")
    reader = Reader(hub, poll_interval=0.2, elect=True, identity=name)
    follower = Follower(hub, identity=name)
    tasks = [asyncio.create_task(reader.run()), asyncio.create_task(follower.run())]
    return reader, inbox, tasks


async def stop(tasks):
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_leader_feeds_every_process(redis_db, load_snapshot):
    load_snapshot("do_phase_INIT")
    a, inbox_a, tasks_a = await start_process("a")
    b, inbox_b, tasks_b = await start_process("b")
    try:
        await asyncio.sleep(1.0)
        assert [a.leading, b.leading].count(True) == 1
        leader, other = (a, b) if a.leading else (b, a)
        assert other.polls == 0  # the follower never reads Redis itself
        redis_db.hset("ACTION_SERVER_ACTIVE:CAMERA_SERVER", "1", "OFF")
        for inbox in (inbox_a, inbox_b):
            message = await inbox.wait_for("CAMERA_SERVER", timeout=5)
            assert "srv-off" in message
        # the leader goes away: the other takes over and reads
        await stop(tasks_a if leader is a else tasks_b)
        survivor_inbox = inbox_b if leader is a else inbox_a
        survivor_inbox.messages.clear()
        redis_db.hset("ACTION_SERVER_ACTIVE:CAMERA_SERVER", "1", "ON")
        # a new leader knows nothing of what browsers show: it has them refetch
        await survivor_inbox.wait_until(
            lambda m: '"refresh": "servers"' in m or ("CAMERA_SERVER" in m and "srv-on" in m),
            timeout=10,
        )
        assert other.leading
    finally:
        await stop(tasks_a + tasks_b)


async def test_watched_pulses_expire(redis_db, monkeypatch):
    import monitor_app.relay as relay

    await watched_note({PulseRef("DEMO", "42")})
    assert await watched_get() == {PulseRef("DEMO", "42")}
    monkeypatch.setattr(relay, "WATCH_SECONDS", -1)
    await watched_note({PulseRef("DEMO", "43")})
    assert await watched_get() == {PulseRef("DEMO", "42")}
