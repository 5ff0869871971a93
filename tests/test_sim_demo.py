"""``make demo``'s supervisor and shell file, without starting the demo:
children that exit are started again (bounded), only daphne ends it."""

from __future__ import annotations

import importlib.util
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sim_fixtures import wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "demo_script", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESTART_PAUSE_S", 0.0)
    return module


@pytest.fixture
def demo(demo_module, tmp_path, monkeypatch):
    monkeypatch.setenv("WEBMONITOR_DATA_DIR", str(tmp_path))
    instance = demo_module.Demo()
    yield instance
    instance.stop()


EXIT_AT_ONCE = [sys.executable, "-c", "raise SystemExit(0)"]
SLEEP = [sys.executable, "-c", "import time; time.sleep(30)"]


def test_an_exited_child_is_started_again_then_given_up(demo, demo_module, capsys):
    child_process = demo.spawn("dispatcher", EXIT_AT_ONCE)
    child = demo.children[0]
    pids = {child_process.pid}

    def restarted_or_given_up() -> bool:
        assert demo.supervise() is None  # the demo goes on
        pids.add(child.process.pid)
        return child.given_up

    wait_until(restarted_or_given_up, what="the child given up")
    child.process.wait(timeout=10)
    assert len(pids) == demo_module.MAX_RESTARTS + 1  # the first run and each restart
    out = capsys.readouterr().out
    assert out.count("demo: the dispatcher quit; starting it again") == demo_module.MAX_RESTARTS
    assert "giving up on it" in out


def test_a_crashed_child_is_named_with_its_code(demo, capsys):
    demo.spawn("servers", [sys.executable, "-c", "raise SystemExit(3)"])
    wait_until(lambda: demo.supervise() is None and demo.children[0].restarts, what="restart")
    assert "demo: servers exited (code 3); starting it again" in capsys.readouterr().out


def test_servers_that_all_quit_on_request_are_not_started_again(demo, capsys):
    """Kill all (or QUIT to each) ends the main plant's servers cleanly: a
    restart would bring back what the operator just stopped."""
    first = demo.spawn("servers", EXIT_AT_ONCE, final_when_clean=True)
    wait_until(lambda: demo.supervise() is None and demo.children[0].given_up, what="given up")
    assert demo.children[0].process is first and not demo.children[0].restarts
    assert "every server of the main plant quit" in capsys.readouterr().out


def test_only_daphne_ends_the_demo(demo):
    demo.spawn("recorder", SLEEP)
    demo.spawn("daphne", EXIT_AT_ONCE)
    wait_until(lambda: demo.supervise() == "daphne", what="daphne's exit seen")
    assert demo.children[0].process.poll() is None
    demo.stop()
    assert demo.children[0].process.poll() is not None  # stop ends every child


def test_env_file_is_private_and_sourceable(demo, monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6399/0")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "s3cret-key")
    monkeypatch.setenv("WEBMONITOR_SERVER_COMMAND", "/usr/bin/python3 /x/demo_server_command.py")
    monkeypatch.setenv("WEBMONITOR_CHANNEL_LAYER", "memory")
    path = demo.write_env_file()
    assert path == tmp_path / "demo.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    script = f"set -a; . {shlex.quote(str(path))}; set +a; env"
    shown = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.splitlines()
    assert "WEBMONITOR_SERVER_COMMAND=/usr/bin/python3 /x/demo_server_command.py" in shown
    assert "REDIS_URL=redis://127.0.0.1:6399/0" in shown
    assert "DJANGO_SECRET_KEY=s3cret-key" in shown
    assert f"WEBMONITOR_DATA_DIR={tmp_path}" in shown
    assert "WEBMONITOR_CHANNEL_LAYER=memory" in shown


def test_the_demo_site_command_refuses_a_class_the_plant_lacks(tmp_path):
    """Start of a class the demo plant does not have fails, and leaves no
    pid file behind (it once reported "started" for a process that died)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "demo_server_command.py"
    done = subprocess.run(
        [sys.executable, str(script), "NOSUCH_SERVER", "START"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"WEBMONITOR_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode != 0
    assert "not a server class" in done.stderr
    assert not (tmp_path / "demo-servers" / "NOSUCH_SERVER.pid").exists()


def test_manual_demo_runs_the_dispatcher_without_its_cycle(demo, demo_module, monkeypatch):
    """An operator trying commands does not want a pulse every 35 s
    overwriting the one being driven."""
    started = []
    monkeypatch.setattr(demo, "spawn", lambda name, argv, **_: started.append((name, argv)))
    assert demo_module.parse_args([]).manual is False
    demo.start_services("127.0.0.1", 1, cycle=not demo_module.parse_args(["--manual"]).manual)
    dispatcher = dict(started)["dispatcher"]
    assert "--dispatcher-only" in dispatcher and "--cycle" not in dispatcher
    started.clear()
    demo.start_services("127.0.0.1", 1)
    assert "--cycle" in dict(started)["dispatcher"]
