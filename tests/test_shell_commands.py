"""The management commands: same names and meaning as the reference CLI,
exact Redis writes, clear errors and exit statuses, ``do_phase --wait``
against a scripted dispatcher that sends END_PHASE early."""

from __future__ import annotations

import getpass
import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from monitor_app import protocol as p
from monitor_app.models import CommandRecord

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pubsub_log")]

ROOT = Path(__file__).resolve().parent.parent
ADC1_INIT = "\\DEMO::TOP.DAQ.ADC1:INIT_ACTION"
COMMANDS = [
    "create_pulse",
    "build_tables",
    "do_phase",
    "do_sequence",
    "abort",
    "abort_pending",
    "dispatcher_command",
    "dispatch_action",
    "abort_action",
    "server_start",
    "server_stop",
    "server_restart",
    "server_quit",
    "server_kill",
    "show_log",
]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, no_color=True)
    return out.getvalue(), err.getvalue()


def fails(*args: str) -> CommandError:
    with pytest.raises(CommandError) as info:
        run(*args)
    return info.value


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name):
    command = load_command_class("monitor_app", name)
    text = command.create_parser("manage.py", name).format_help()
    assert command.help and "Exit status" in text


def test_create_pulse(redis_db, monitor):
    monitor.start()
    out, _ = run("create_pulse", "demo", "42")
    assert monitor.stop() == [
        ["MULTI"],
        ["HSET", "DISPATCH_DEFAULT", "TREE", "DEMO", "SHOT", "42"],
        ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "create_pulse:DEMO:42"],
        ["EXEC"],
    ]
    assert "PUBLISH ACTION_DISPATCHER_COMMANDS create_pulse:DEMO:42" in out
    record = CommandRecord.objects.get()
    assert (record.source, record.username, record.user) == ("shell", getpass.getuser(), None)


@pytest.mark.parametrize(
    "args",
    [
        ("DEMO", "; rm -rf /"),
        ("$(id)", "42"),
        ("../../etc", "1"),
        ("DEMO", "-1"),
        ("DEMO", "99999999999"),
        ("DÉMO", "1"),
        ("DE+MO", "1"),
        ("", ""),
    ],
)
def test_create_pulse_refuses_bad_input(redis_db, monitor, args):
    monitor.start()
    error = fails("create_pulse", *args)
    assert error.returncode == 1 and str(error)
    assert monitor.stop() == []


def test_build_tables_default_and_explicit(redis_db, monitor):
    redis_db.hset(p.DISPATCH_DEFAULT, mapping={"TREE": "DEMO", "SHOT": "42"})
    monitor.start()
    run("build_tables")
    run("build_tables", "x", "3")
    assert [w[2] for w in monitor.stop() if w[0] == "PUBLISH"] == [
        "build_tables:DEMO:42",
        "build_tables:X:3",
    ]
    assert "both TREE and SHOT" in str(fails("build_tables", "DEMO"))


def test_build_tables_without_default(redis_db):
    assert "No default pulse" in str(fails("build_tables"))


def test_do_phase_without_wait_prints_warnings(load_snapshot, monitor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    out, err = run("do_phase", "init")
    assert monitor.stop()[1] == ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_phase:DEMO:42:INIT"]
    assert "GHOST_SERVER is OFF" in err


def test_do_phase_usage_errors(redis_db):
    assert "--timeout needs --wait" in str(fails("do_phase", "INIT", "--timeout", "3"))
    assert "both --tree and --shot" in str(fails("do_phase", "INIT", "--tree", "DEMO"))


def test_do_sequence(load_snapshot, monitor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    run("do_sequence", "init", "10", "20", "--tree", "demo", "--shot", "42")
    assert monitor.stop()[1] == [
        "PUBLISH",
        "ACTION_DISPATCHER_COMMANDS",
        "do_sequence:DEMO:42:INIT:10:20",
    ]
    assert fails("do_sequence", "INIT", "20", "10").returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("abort",), "abort"),
        (("abort_pending", "--reason", "stuck"), "abort_pending"),
        (("dispatcher_command", "PRINT_PENDING"), "print_pending"),
        (("dispatcher_command", "quit"), "quit"),
    ],
)
def test_plain_dispatcher_commands(redis_db, monitor, args, message):
    monitor.start()
    run(*args)
    assert monitor.stop() == [
        ["MULTI"],
        ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", message],
        ["EXEC"],
    ]


def test_dispatcher_command_grammar(redis_db, monitor):
    monitor.start()
    for text in ["do_phase:DEMO:42", "rm -rf /", "abort;quit", "do_phase:DEMO:42:$(id)"]:
        assert fails("dispatcher_command", text).returncode == 1
    assert monitor.stop() == []


def test_dispatch_and_abort_action(load_snapshot, redis_db, monitor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    run("dispatch_action", "DEMO", "42", ADC1_INIT)
    redis_db.hset("ACTION_INFO:DEMO:42:DAQ_SERVER", ADC1_INIT, "DOING")
    run("abort_action", "DEMO", "42", ADC1_INIT, "--reason", "test")
    writes = [w for w in monitor.stop() if w[0] in ("LPUSH", "PUBLISH")]
    assert writes == [
        ["LPUSH", "ACTION_SERVER_TODO:DAQ_SERVER", f"DEMO+42+{ADC1_INIT}+0+0+0"],
        ["PUBLISH", "ACTION_SERVER_PUBSUB:DAQ_SERVER", "DO"],
        ["PUBLISH", "ACTION_SERVER_PUBSUB:DAQ_SERVER", f"ABORT+{ADC1_INIT}"],
    ]


def test_action_commands_refuse_unknown_paths(load_snapshot, monitor):
    load_snapshot("do_phase_INIT")
    monitor.start()
    error = fails("dispatch_action", "DEMO", "42", "../../etc/passwd", ADC1_INIT)
    assert error.returncode == 1 and "1 of 2 refused" in str(error)
    writes = monitor.stop()
    assert [w[0] for w in writes] == ["MULTI", "LPUSH", "PUBLISH", "EXEC"]  # the good one
    assert fails("abort_action", "DEMO", "42", "DEMO::TOP.X").returncode == 1


@pytest.mark.parametrize("verb", ["stop", "restart", "quit"])
def test_server_control(load_snapshot, monitor, verb):
    load_snapshot("do_phase_INIT")
    monitor.start()
    run(f"server_{verb}", "DAQ_SERVER", "2")
    run(f"server_{verb}", "TIMING_SERVER")
    assert [w for w in monitor.stop() if w[0] == "PUBLISH"] == [
        ["PUBLISH", "ACTION_SERVER_PUBSUB:DAQ_SERVER", f"{verb.upper()}+2"],
        ["PUBLISH", "ACTION_SERVER_PUBSUB:TIMING_SERVER", f"{verb.upper()}+1"],
    ]
    assert fails(f"server_{verb}", "DAQ_SERVER", "1;id").returncode == 1
    assert fails(f"server_{verb}", "$(id)").returncode == 1


def test_server_start_and_kill(redis_db, site_command):
    out, _ = run("server_start", "TIMING_SERVER")
    assert "site command args: $(id);x TIMING_SERVER START" in out
    site_command.mode.write_text("fail")
    error = fails("server_kill", "TIMING_SERVER", "1")
    assert error.returncode == 1 and "exit status 3" in str(error)
    assert [r.ok for r in CommandRecord.objects.order_by("id")] == [True, False]


def test_server_start_without_site_command(redis_db, settings):
    settings.WEBMONITOR_SERVER_COMMAND = []
    assert "WEBMONITOR_SERVER_COMMAND" in str(fails("server_start", "TIMING_SERVER"))


def test_show_log(load_snapshot):
    load_snapshot("show_log")
    out, _ = run("show_log", "demo", "42", "\\DEMO::TOP.DAQ.ADC1:STORE_ACTION")
    assert "ADC1: offset +0.0021 V" in out
    assert "has no log" in str(fails("show_log", "DEMO", "42", "\\DEMO::TOP.GHOST:INIT_ACTION"))
    assert "not an action" in str(fails("show_log", "DEMO", "42", "../../etc/passwd"))


def test_redis_down(redis_db, redis_down):
    error = fails("create_pulse", "DEMO", "42")
    assert error.returncode == 1 and "cannot be reached" in str(error)
    assert "cannot be reached" in str(fails("do_phase", "INIT", "--wait", "--timeout", "1"))


# --- do_phase --wait --------------------------------------------------------------

SRV = "SIM_SERVER"
A = "\\DEMO::TOP.A:INIT_ACTION"
B = "\\DEMO::TOP.B:INIT_ACTION"
DEP = "\\DEMO::TOP.C:CHECK_ACTION"


def _plant(client) -> None:
    paths = [A, B, DEP]
    client.set(p.LAST_BUILD_TABLE, p.last_build_table_value("DEMO", 42))
    client.hset(p.DISPATCH_DEFAULT, mapping={"TREE": "DEMO", "SHOT": "42"})
    client.hset(p.action_info_key("DEMO", 42, SRV), mapping=dict.fromkeys(paths, "NOT_DISPATCHED"))
    client.hset(p.action_status_key("DEMO", 42), mapping=dict.fromkeys(paths, "none"))
    client.hset(p.action_phase_key("DEMO", 42), mapping=dict.fromkeys(paths, "INIT"))
    client.hset(p.action_server_key("DEMO", 42), mapping=dict.fromkeys(paths, SRV))
    client.hset(p.server_active_key(SRV), "1", "ON")


class FakeDispatcher(threading.Thread):
    """Runs INIT like the genuine dispatcher: END_PHASE as soon as the
    sequential actions are done, while the dependent one is still to come."""

    def __init__(self, url: str, dependent_status: str = "Success"):
        super().__init__(daemon=True)
        import redis

        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.sub = self.r.pubsub(ignore_subscribe_messages=True)
        self.sub.subscribe(p.DISPATCHER_COMMANDS)
        self.dependent_status = dependent_status
        self.received: list[str] = []

    def step(self, path: str, status: str) -> None:
        info = p.action_info_key("DEMO", 42, SRV)
        self.r.hset(info, path, "DOING")
        self.r.hset(p.action_status_key("DEMO", 42), path, "None")
        self.r.publish(p.MONITOR_PUBSUB, p.doing_message("DEMO", 42, SRV, 1, path, 7))
        time.sleep(0.2)
        self.r.hset(info, path, "DONE")
        self.r.hset(p.action_status_key("DEMO", 42), path, status)
        self.r.publish(p.MONITOR_PUBSUB, p.done_message("DEMO", 42, SRV, 1, path, 7, status))

    def run(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = self.sub.get_message(timeout=0.2)
            if not msg:
                continue
            self.received.append(msg["data"])
            if msg["data"] != "do_phase:DEMO:42:INIT":
                continue
            time.sleep(0.1)
            self.step(A, "Success")
            self.step(B, "Success")
            self.r.publish(p.MONITOR_PUBSUB, p.end_phase_message("DEMO", 42, "INIT"))  # early
            time.sleep(0.4)
            self.r.hset(p.action_info_key("DEMO", 42, SRV), DEP, "DISPATCHED")  # silent
            time.sleep(0.6)
            self.step(DEP, self.dependent_status)
            self.r.publish(p.MONITOR_PUBSUB, p.end_phase_message("DEMO", 42, "INIT"))
            return


@pytest.fixture
def fake_dispatcher(redis_db, redis_server):
    def start(status: str = "Success") -> FakeDispatcher:
        _plant(redis_db)
        fake = FakeDispatcher(redis_server.url, status)
        fake.start()
        return fake

    return start


def test_wait_returns_when_the_phase_is_really_over(fake_dispatcher):
    fake = fake_dispatcher()
    started = time.monotonic()
    out, err = run("do_phase", "INIT", "--wait", "--timeout", "15")
    assert time.monotonic() - started < 14
    lines = out.splitlines()
    assert any(line.endswith(f"DONE  {SRV} 1 {DEP} Success") for line in lines), out
    # The first END_PHASE came before the dependent action: the wait went on.
    first_end = next(i for i, line in enumerate(lines) if "END_PHASE" in line)
    assert any(DEP in line for line in lines[first_end:])
    assert "Phase INIT of DEMO 42 is over: 3 succeeded, 0 failed, 0 never ran." in out
    assert fake.received == ["do_phase:DEMO:42:INIT"]


def test_wait_fails_when_an_action_failed(fake_dispatcher):
    fake_dispatcher("Failure")
    error = fails("do_phase", "INIT", "--wait", "--timeout", "15")
    assert error.returncode == 3
    assert "2 succeeded, 1 failed" in str(error)


def test_wait_times_out_when_nothing_happens(redis_db, monitor):
    _plant(redis_db)  # tables built, but no dispatcher listens
    monitor.start()
    started = time.monotonic()
    error = fails("do_phase", "INIT", "--wait", "--timeout", "1")
    assert error.returncode == 4 and "not over after 1 s" in str(error)
    assert time.monotonic() - started < 5
    assert ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_phase:DEMO:42:INIT"] in monitor.stop()


def test_wait_stops_at_once_when_tables_are_missing(redis_db, monitor):
    _plant(redis_db)
    redis_db.set(p.LAST_BUILD_TABLE, p.last_build_table_value("DEMO", 41))
    monitor.start()
    error = fails("do_phase", "INIT", "--wait")
    assert error.returncode == 1 and "have not been built" in str(error)
    assert ["PUBLISH", "ACTION_DISPATCHER_COMMANDS", "do_phase:DEMO:42:INIT"] in monitor.stop()


# --- the real command line: exit status and stderr ---------------------------------


def test_exit_status_from_the_shell(redis_server, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "WEBMONITOR_DATA_DIR": str(tmp_path),
        "REDIS_URL": redis_server.url,
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert manage("migrate", "-v", "0").returncode == 0
    done = manage("create_pulse", "DEMO", "$(id)")
    assert done.returncode == 1 and "Shot '$(id)' is not a shot number" in done.stderr
    assert manage("create_pulse", "--help").returncode == 0
    assert manage("create_pulse").returncode == 2  # usage
