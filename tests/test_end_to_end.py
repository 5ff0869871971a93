"""A whole pulse driven from the shell against the simulated plant: the
command layer's Redis operations make the (simulated) dispatcher act."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from monitor_app import protocol as p
from monitor_app.simulator.plant import load_plant
from monitor_app.simulator.runner import default_servers
from tests.conftest import FIXTURES
from tests.sim_fixtures import wait_until

pytestmark = pytest.mark.django_db

LONG = "\\DEMO::TOP.CAMERA:ACQ_ACTION"
FAILING = "\\DEMO::TOP.DAQ:CHECK_ACTION"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def plant():
    return load_plant(FIXTURES / "e2e_plant.toml")


def test_a_pulse_from_the_shell(simulate, plant, redis_db):
    simulate(plant, servers=default_servers(plant))
    run("create_pulse", "demo", "42")
    wait_until(lambda: redis_db.hget(p.DISPATCH_INFO, "CURR_SHOT") == "42")
    run("build_tables")
    wait_until(lambda: redis_db.get(p.LAST_BUILD_TABLE))
    output = run("do_phase", "INIT", "--wait", "--timeout", "30")
    assert "ARM_ACTION" in output  # the dependent ran too: the phase is really over
    statuses = redis_db.hgetall("ACTION_STATUS:DEMO:42")
    assert statuses["\\DEMO::TOP.DAQ:ARM_ACTION"] == "Success"
    assert statuses["\\DEMO::TOP.TIMING:INIT_ACTION"] == "Success"

    # PULSE_ON: abort the long action, re-dispatch the failed one
    run("do_phase", "PULSE_ON")
    wait_until(lambda: redis_db.hget("ACTION_INFO:DEMO:42:CAMERA_SERVER", LONG) == "DOING")
    wait_until(lambda: redis_db.hget("ACTION_STATUS:DEMO:42", FAILING) == "Failure")
    run("abort_action", "DEMO", "42", LONG)
    wait_until(lambda: redis_db.hget("ACTION_STATUS:DEMO:42", LONG) == "Aborted")
    redis_db.hset("ACTION_STATUS:DEMO:42", FAILING, "Failure")
    run("dispatch_action", "DEMO", "42", FAILING)
    wait_until(
        lambda: redis_db.hget("ACTION_STATUS:DEMO:42", FAILING) in ("None", "none"),
        what="the re-dispatched action to start",
    )
    wait_until(
        lambda: redis_db.hget("ACTION_STATUS:DEMO:42", FAILING) == "Failure",
        what="the re-dispatched action to finish again",
    )


def test_quit_start_and_kill_a_server(simulate, plant, redis_db, settings, tmp_path, monkeypatch):
    """Quit through Redis; Start and Kill through the demo's site command,
    which starts that class as a simulate_plant process of its own."""
    import sys

    from tests.conftest import FIXTURES as fixtures

    simulate(plant, servers=default_servers(plant))
    wait_until(lambda: redis_db.hget("ACTION_SERVER_ACTIVE:CAMERA_SERVER", "1") == "ON")
    run("server_quit", "CAMERA_SERVER", "1")
    wait_until(lambda: redis_db.hget("ACTION_SERVER_ACTIVE:CAMERA_SERVER", "1") == "OFF")

    site = fixtures.parent.parent / "scripts" / "demo_server_command.py"
    settings.WEBMONITOR_SERVER_COMMAND = [sys.executable, str(site)]
    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)
    monkeypatch.setenv("DEMO_PLANT", str(fixtures / "e2e_plant.toml"))
    monkeypatch.setenv("WEBMONITOR_DATA_DIR", str(tmp_path))
    try:
        run("server_start", "CAMERA_SERVER")
        wait_until(
            lambda: redis_db.hget("ACTION_SERVER_ACTIVE:CAMERA_SERVER", "1") == "ON",
            timeout=30,
            what="the started server to come ON",
        )
    finally:
        run("server_kill", "CAMERA_SERVER")
    wait_until(
        lambda: redis_db.hget("ACTION_SERVER_ACTIVE:CAMERA_SERVER", "1") == "OFF",
        timeout=20,
        what="the killed server to go OFF",
    )
