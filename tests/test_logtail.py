"""The Log Viewer's file: its writer, rotation, and a tail that survives
the file going missing, shrinking or being replaced."""

from __future__ import annotations

import threading
import time

from monitor_app.hub import Hub
from monitor_app.logtail import LogTail, last_lines
from monitor_app.pubsub_log import append_line, format_line, rotate_if_needed
from monitor_app.recorder import PubsubRecorder


def test_line_format_is_one_line_per_message():
    line = format_line("ACTION_DISPATCHER_PUBSUB", "DEMO+42+X+\\P+Success+a\nb\n", when=0)
    assert line.count("\n") == 1
    assert " - ACTION_DISPATCHER_PUBSUB | DEMO+42+X+\\P+Success+a\\nb\\n" in line
    assert line[:19].count("-") == 2 and line[10] == " "  # YYYY-MM-DD HH:MM:SS


def test_tail_follows_missing_truncated_and_rotated_files(tmp_path):
    path = tmp_path / "pubsub.log"
    tail = LogTail(Hub(), path)
    assert tail.read_new() == ([], False)  # missing: nothing, no error
    append_line("CH", "one", path)
    lines, reset = tail.read_new()
    assert [line.split("| ")[1] for line in lines] == ["one"] and not reset
    with path.open("a") as handle:
        handle.write("2026-12-03 10:00:00 - CH | part")
    assert tail.read_new() == ([], False)  # half a line waits for its end
    with path.open("a") as handle:
        handle.write("ial\n")
    assert tail.read_new()[0][0].endswith("partial")
    path.write_text("")  # truncated
    assert tail.read_new()[1] is True
    append_line("CH", "after truncation", path)
    assert tail.read_new()[0][0].endswith("after truncation")
    path.rename(tmp_path / "pubsub.log.1")  # rotated
    append_line("CH", "fresh file", path)
    lines, reset = tail.read_new()
    assert reset


def test_last_lines_reads_from_the_end(tmp_path):
    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i}\n" for i in range(50_000)))
    lines = last_lines(path, 200)
    assert len(lines) == 200 and lines[-1] == "line 49999" and lines[0] == "line 49800"
    assert last_lines(tmp_path / "absent.log") == []


def test_rotation_by_size(tmp_path):
    path = tmp_path / "pubsub.log"
    path.write_text("x" * 100)
    assert rotate_if_needed(path, max_bytes=50, backups=2)
    assert not path.exists() and (tmp_path / "pubsub.log.1").exists()
    path.write_text("y" * 100)
    rotate_if_needed(path, max_bytes=50, backups=2)
    assert (tmp_path / "pubsub.log.2").read_text() == "x" * 100
    assert not rotate_if_needed(path, max_bytes=50, backups=2)  # gone: nothing to do


def test_recorder_writes_every_message_but_heartbeats(redis_server, redis_db, tmp_path):
    import redis

    path = tmp_path / "pubsub.log"
    recorder = PubsubRecorder(
        lambda: redis.Redis.from_url(redis_server.url), path, max_bytes=10**6, backups=1
    )
    thread = threading.Thread(target=recorder.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while redis_db.pubsub_numpat() < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        redis_db.publish("ACTION_SERVER_PUBSUB:DAQ_SERVER", "HEARTBEAT+1")
        redis_db.publish("ACTION_SERVER_PUBSUB:NEW_CLASS_SERVER", "DO")  # a class seen first now
        redis_db.publish("DISPATCH_MONITOR_PUBSUB", "END_PHASE+DEMO+42+INIT")
        redis_db.publish("ACTION_DISPATCHER_COMMANDS", "do_phase:DEMO:42:INIT")
        redis_db.publish("UNRELATED_CHANNEL", "not ours")
        while recorder.recorded < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        recorder.stop()
        thread.join(timeout=5)
    text = path.read_text()
    assert "HEARTBEAT" not in text and "UNRELATED" not in text
    assert "ACTION_SERVER_PUBSUB:NEW_CLASS_SERVER | DO" in text
    assert "DISPATCH_MONITOR_PUBSUB | END_PHASE+DEMO+42+INIT" in text
    assert "ACTION_DISPATCHER_COMMANDS | do_phase:DEMO:42:INIT" in text
