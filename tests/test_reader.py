"""The reader: diffs of polled hashes, announced changes at once, outages."""

from __future__ import annotations

import asyncio

import pytest

from monitor_app.hub import TOPIC_HEADER, TOPIC_HEARTBEAT, TOPIC_SERVERS, Hub, pulse_topic
from monitor_app.reader import Reader
from monitor_app.state import PulseRef


class Inbox:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.event = asyncio.Event()

    async def push(self, message: str) -> None:
        self.messages.append(message)
        self.event.set()

    async def wait_for(self, needle: str, timeout: float = 5.0) -> str:
        return await self.wait_until(lambda m: needle in m, timeout, needle)

    async def wait_until(self, test, timeout: float = 5.0, what: str = "") -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for message in self.messages:
                if test(message):
                    return message
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{what!r} never came; got {self.messages!r}")
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), remaining)
            except TimeoutError:
                pass


@pytest.fixture
def hub_and_inbox():
    hub, inbox = Hub(), Inbox()
    return hub, inbox


async def test_poll_sends_only_what_changed(redis_db, load_snapshot, hub_and_inbox):
    hub, inbox = hub_and_inbox
    load_snapshot("do_phase_STORE")
    pulse = PulseRef("DEMO", "42")
    hub.add(inbox, {pulse_topic(pulse), TOPIC_SERVERS}, "viewer")
    reader = Reader(hub, poll_interval=10)
    await reader.poll_once()
    first = list(inbox.messages)
    inbox.messages.clear()
    await reader.poll_once()
    assert inbox.messages == []  # nothing changed, nothing sent
    path = "\\DEMO::TOP.TIMING:STORE_ACTION"
    redis_db.hset("ACTION_INFO:DEMO:42:TIMING_SERVER", path, "SERVER_OFF")
    redis_db.hset("ACTION_SERVER_ACTIVE:DAQ_SERVER", "2", "OFF")
    await reader.poll_once()
    joined = "".join(inbox.messages)
    assert "TIMING:STORE_ACTION" in joined and "SERVER_OFF" in joined
    assert "DAQ_SERVER" in joined
    assert joined.count("<tr ") <= 4  # one action (two tables) and one server row
    assert first  # the first poll of a reader sends no rows, only new state
    assert reader.pulses[pulse].summary.server_off == 2


async def test_announced_changes_do_not_wait_for_a_poll(redis_db, load_snapshot, hub_and_inbox):
    hub, inbox = hub_and_inbox
    load_snapshot("do_phase_STORE")
    pulse = PulseRef("DEMO", "42")
    hub.add(inbox, {pulse_topic(pulse)}, "operator")
    reader = Reader(hub, poll_interval=30)
    task = asyncio.create_task(reader.run())
    try:
        await asyncio.sleep(0.3)
        path = "\\DEMO::TOP.CAMERA:STORE_ACTION"
        redis_db.publish("DISPATCH_MONITOR_PUBSUB", f"DOING+DEMO+42+CAMERA_SERVER+1+{path}+9")
        message = await inbox.wait_for("CAMERA:STORE_ACTION", timeout=3)
        assert "DOING" in message
        redis_db.publish(
            "DISPATCH_MONITOR_PUBSUB", f"DONE+DEMO+42+CAMERA_SERVER+1+{path}+9+Failure"
        )
        message = await inbox.wait_for("Failure", timeout=3)
        assert "cat-failed" in message
        assert redis_db.hget("WEBMONITOR:DOING_AT:DEMO:42", path)
        assert redis_db.hget("WEBMONITOR:DONE_AT:DEMO:42", path)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_heartbeats_are_noted(redis_db, load_snapshot, hub_and_inbox):
    hub, inbox = hub_and_inbox
    load_snapshot("do_phase_INIT")
    hub.add(inbox, {TOPIC_HEARTBEAT}, "viewer")
    reader = Reader(hub, poll_interval=30)
    task = asyncio.create_task(reader.run())
    try:
        await asyncio.sleep(0.3)
        redis_db.publish("ACTION_SERVER_PUBSUB:DAQ_SERVER", "HEARTBEAT+2")
        message = await inbox.wait_for("DAQ_SERVER", timeout=3)
        assert "data-ts" in message
        assert reader.last_heartbeat is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_outage_shows_a_banner_and_recovers(private_redis, hub_and_inbox):
    redis_server = private_redis
    hub, inbox = hub_and_inbox
    hub.add(inbox, {TOPIC_HEADER, TOPIC_SERVERS}, "viewer")
    reader = Reader(hub, poll_interval=0.2)
    task = asyncio.create_task(reader.run())
    try:
        await inbox.wait_for("reachable")
        inbox.messages.clear()
        redis_server.stop()
        message = await inbox.wait_for("unreachable — retrying", timeout=8)
        assert redis_server.url.split("//")[1].split("/")[0] in message
        inbox.messages.clear()
        redis_server.start()
        await inbox.wait_until(
            lambda m: 'id="wm-status"' in m and "unreachable" not in m, 15, "a clear header"
        )
        assert reader.connected
        # A page loaded during the outage holds an error, not rows: it is
        # told to fetch its table again.
        await inbox.wait_for('{"refresh": "servers"}', timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_watchdog_alarm_when_heartbeats_stop(redis_db, load_snapshot, settings):
    settings.WEBMONITOR_WATCHDOG_SECONDS = 15
    load_snapshot("do_phase_INIT")
    now = [1000.0]
    reader = Reader(Hub(), poll_interval=30, clock=lambda: now[0])
    await reader.poll_once()
    assert not reader.header_now().watchdog_stopped
    now[0] += 16
    header = reader.header_now()
    assert header.watchdog_stopped and header.seconds_without_heartbeat >= 15
    await reader.handle_message("ACTION_SERVER_PUBSUB:DAQ_SERVER", "HEARTBEAT+1")
    assert not reader.header_now().watchdog_stopped


async def test_the_watchdog_is_judged_afresh_after_an_outage(private_redis, transcript, settings):
    """HEARTBEATs sent while Redis was frozen were never heard: right after
    it comes back, their absence is no sign of a dead watchdog."""
    import signal

    from monitor_app.recording import snapshot_write

    settings.WEBMONITOR_WATCHDOG_SECONDS = 15
    settings.REDIS_TIMEOUT = 0.5
    step = next(r for r in transcript if r["kind"] == "snapshot" and r["step"] == "do_phase_INIT")
    snapshot_write(private_redis.client(), step["keys"])
    now = [1000.0]
    hub, inbox = Hub(), Inbox()
    hub.add(inbox, {TOPIC_HEADER}, "viewer")
    reader = Reader(hub, poll_interval=0.2, clock=lambda: now[0])
    task = asyncio.create_task(reader.run())
    try:
        await inbox.wait_for('data-redis-ok="1"')
        now[0] += 100
        assert reader.header_now().watchdog_stopped  # nothing heard for 100 s
        inbox.messages.clear()  # the header of before the first connection
        private_redis.process.send_signal(signal.SIGSTOP)
        try:
            await inbox.wait_for("unreachable — retrying", timeout=8)
        finally:
            private_redis.process.send_signal(signal.SIGCONT)
        inbox.messages.clear()
        await inbox.wait_for('data-redis-ok="1"', timeout=15)
        assert not reader.header_now().watchdog_stopped
        now[0] += 16  # and it is judged: 16 s without one after the outage
        assert reader.header_now().watchdog_stopped
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_new_phase_does_not_keep_the_old_one_running(redis_db, load_snapshot):
    """The dispatcher writes the new phase silently; the first DOINGs of its
    actions come before a poll reads it, and once set the header back to
    'INIT running' for a second and a half."""
    load_snapshot("do_phase_INIT")  # INIT over, the current phase
    now = [1000.0]
    reader = Reader(Hub(), poll_interval=30, clock=lambda: now[0])
    await reader.poll_once()
    assert (reader.header_now().phase, reader.header_now().progress) == ("INIT", "over")
    trig = "\\DEMO::TOP.TIMING:TRIG_ACTION"  # a PULSE_ON action
    await reader.handle_message(
        "DISPATCH_MONITOR_PUBSUB", f"DOING+DEMO+42+TIMING_SERVER+1+{trig}+30"
    )
    assert reader.header_now().progress == "over"
    # Activity of INIT's own actions still holds it 'running' while it settles.
    arm = "\\DEMO::TOP.TIMING:ARM_ACTION"
    await reader.handle_message(
        "DISPATCH_MONITOR_PUBSUB", f"DONE+DEMO+42+TIMING_SERVER+1+{arm}+2+Success"
    )
    assert reader.header_now().progress == "running"
    now[0] += 2
    assert reader.header_now().progress == "over"


async def test_the_reader_stops_when_cancelled_mid_poll(redis_db, load_snapshot):
    """A cancel that lands inside a Redis round trip still stops it."""
    load_snapshot("do_phase_STORE")
    for attempt in range(5):
        hub = Hub()
        hub.add(Inbox(), {pulse_topic(PulseRef("DEMO", "42")), TOPIC_SERVERS}, "viewer")
        reader = Reader(hub, poll_interval=0.001)
        task = asyncio.create_task(reader.run())
        await asyncio.sleep(0.2 + attempt * 0.013)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=3)
        assert done, f"the reader went on after its cancel (attempt {attempt})"


async def test_doing_shows_not_finished_at_once_and_the_poll_settles_it(
    redis_db, load_snapshot, hub_and_inbox
):
    """A DOING comes after the dispatch wrote ``None`` (sequential) or
    ``none`` (dependent): the row says ``None`` at once, the next poll puts
    what Redis holds, and a row that already matches is not sent again."""
    hub, inbox = hub_and_inbox
    load_snapshot("do_phase_STORE")
    pulse = PulseRef("DEMO", "42")
    seq, dep = "\\DEMO::TOP.CAMERA:STORE_ACTION", "\\DEMO::TOP.TIMING:STORE_ACTION"
    redis_db.hset("ACTION_INFO:DEMO:42:CAMERA_SERVER", seq, "NOT_DISPATCHED")
    redis_db.hset("ACTION_INFO:DEMO:42:TIMING_SERVER", dep, "NOT_DISPATCHED")
    redis_db.hset("ACTION_STATUS:DEMO:42", mapping={seq: "none", dep: "none"})
    hub.add(inbox, {pulse_topic(pulse)}, "viewer")
    reader = Reader(hub, poll_interval=30)
    await reader.poll_once()
    # What the dispatch and the servers write, then their messages.
    redis_db.hset("ACTION_STATUS:DEMO:42", seq, "None")  # dep keeps "none"
    redis_db.hset("ACTION_INFO:DEMO:42:CAMERA_SERVER", seq, "DOING")
    redis_db.hset("ACTION_INFO:DEMO:42:TIMING_SERVER", dep, "DOING")
    inbox.messages.clear()
    for ident, path in (("CAMERA_SERVER", seq), ("TIMING_SERVER", dep)):
        await reader.handle_message("DISPATCH_MONITOR_PUBSUB", f"DOING+DEMO+42+{ident}+1+{path}+9")
    await inbox.wait_until(lambda m: "CAMERA:STORE" in m and "TIMING:STORE" in m, 3, "both rows")
    rows = reader.pulses[pulse].rows
    assert (rows[seq].state, rows[seq].status) == ("DOING", "None")
    assert (rows[dep].state, rows[dep].status) == ("DOING", "None")
    inbox.messages.clear()
    await reader.poll_once()
    sent = "".join(inbox.messages)
    assert "TIMING:STORE" in sent and "CAMERA:STORE" not in sent
    assert (rows := reader.pulses[pulse].rows)[dep].status == "none"
    assert rows[seq].status == "None"


async def test_a_poll_does_not_undo_what_came_while_it_read(
    redis_db, load_snapshot, hub_and_inbox, monkeypatch
):
    """A re-dispatched action's DOING that arrives while a poll reads must
    not be overwritten by that poll's older DONE (it once showed a finished
    row for a second)."""
    import monitor_app.reader as reader_module

    hub, inbox = hub_and_inbox
    load_snapshot("do_phase_STORE")
    pulse = PulseRef("DEMO", "42")
    path = "\\DEMO::TOP.CAMERA:STORE_ACTION"
    hub.add(inbox, {pulse_topic(pulse)}, "viewer")
    reader = Reader(hub, poll_interval=30)
    await reader.poll_once()
    assert reader.pulses[pulse].rows[path].state == "DONE"
    real_read = reader_module.pulses_read

    async def read_then_message(caches, live):
        read = await real_read(caches, live)  # still DONE: the server has not written yet
        await reader.handle_message(
            "DISPATCH_MONITOR_PUBSUB", f"DOING+DEMO+42+CAMERA_SERVER+1+{path}+9"
        )
        return read

    monkeypatch.setattr(reader_module, "pulses_read", read_then_message)
    await reader.poll_once()
    assert reader.pulses[pulse].rows[path].state == "DOING"
    monkeypatch.setattr(reader_module, "pulses_read", real_read)
    redis_db.hset("ACTION_INFO:DEMO:42:CAMERA_SERVER", path, "DOING")
    redis_db.hset("ACTION_STATUS:DEMO:42", path, "None")
    await reader.poll_once()
    assert reader.pulses[pulse].rows[path].state == "DOING"
    await inbox.wait_for("CAMERA:STORE", timeout=3)
    camera = [m for m in inbox.messages if "CAMERA:STORE" in m]
    assert all("DONE" not in m for m in camera), camera
