"""The simulated dispatcher and servers against the real test Redis, on the
plant of the recorded run. Every wait is bounded; nothing asserts timings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from monitor_app import protocol as p
from tests.sim_fixtures import (
    FIXTURE_PLANT,
    SCALE,
    Recorder,
    command,
    simulations,
    start_pulse,
    state,
    status,
    wait_until,
)

D = "\\DEMO::TOP."
ROOT = Path(__file__).resolve().parent.parent


def run_phase(client, recorder, phase: str, end_phases: int) -> None:
    command(client, p.do_phase_message("DEMO", 42, phase))
    wait_until(
        lambda: recorder.monitor(f"END_PHASE+DEMO+42+{phase}") >= end_phases,
        what=f"{phase} END_PHASE x{end_phases}",
    )


def test_init_phase_final_states(simulate, recorder, redis_db):
    simulate()
    start_pulse(redis_db)
    assert status(redis_db, D + "TIMING:INIT_ACTION") == p.STATUS_BUILT
    assert state(redis_db, D + "DAQ.ADC4:INIT_ACTION", "DAQ_SERVER") == p.STATE_OFF
    run_phase(redis_db, recorder, "INIT", 2)
    expected = {
        "TIMING:INIT_ACTION": ("TIMING_SERVER", p.STATE_DONE, p.STATUS_SUCCESS),
        "TIMING:ARM_ACTION": ("TIMING_SERVER", p.STATE_DONE, p.STATUS_SUCCESS),
        "DAQ.ADC1:INIT_ACTION": ("DAQ_SERVER", p.STATE_DONE, p.STATUS_SUCCESS),
        "DAQ.ADC3:INIT_ACTION": ("DAQ_SERVER", p.STATE_DONE, p.STATUS_SUCCESS),
        "DAQ.ADC4:INIT_ACTION": ("DAQ_SERVER", p.STATE_OFF, p.STATUS_BUILT),
        "CAMERA:CHECK_ACTION": ("CAMERA_SERVER", p.STATE_DONE, p.STATUS_FAILURE),
        "GHOST:INIT_ACTION": ("GHOST_SERVER", p.STATE_SERVER_OFF, p.STATUS_NOT_EXECUTED),
        "ANALYSIS:INIT_ACTION": ("ANALYSIS_SERVER", p.STATE_DONE, p.STATUS_SUCCESS),
        "TIMING:TRIG_ACTION": ("TIMING_SERVER", p.STATE_NOT_DISPATCHED, p.STATUS_BUILT),
    }
    for node, (ident, want_state, want_status) in expected.items():
        assert (state(redis_db, D + node, ident), status(redis_db, D + node)) == (
            want_state,
            want_status,
        ), node
    assert p.DISPATCH_INFO_PHASE in redis_db.hgetall(p.DISPATCH_INFO)
    assert redis_db.hget(p.CURRENT_PHASE, "DEMO") == "INIT"
    log = redis_db.hget(p.action_log_key("DEMO", 42), D + "TIMING:INIT_ACTION")
    lines = log.split("\n")
    assert lines[0].endswith("  Doing " + D + "TIMING:INIT_ACTION")
    assert "Timing: loading clock tables" in lines
    assert lines[-2].endswith(" Done " + D + "TIMING:INIT_ACTION") and lines[-1] == ""
    # the watchdog marks the class without any server
    wait_until(lambda: redis_db.hgetall(p.server_active_key("GHOST_SERVER")) == {"1": "OFF"})
    # the dependent action ran after both operands, once
    assert recorder.monitor("DOING+DEMO+42+ANALYSIS_SERVER+1+" + D + "ANALYSIS:INIT_ACTION") == 1


def test_abort_long_action_and_or_dependency_runs_twice(simulate, recorder, redis_db):
    simulate()
    start_pulse(redis_db)
    command(redis_db, p.do_phase_message("DEMO", 42, "PULSE_ON"))
    acq = D + "CAMERA:ACQ_ACTION"
    wait_until(lambda: recorder.monitor("DONE+DEMO+42+ANALYSIS_SERVER"))
    assert state(redis_db, acq, "CAMERA_SERVER") == p.STATE_DOING
    redis_db.publish(p.server_channel("CAMERA_SERVER"), p.abort_message(acq))
    wait_until(lambda: recorder.monitor("END_PHASE+DEMO+42+PULSE_ON") == 2)
    assert status(redis_db, acq) == p.STATUS_ABORTED
    assert redis_db.hget(p.abort_requests_key("CAMERA_SERVER"), acq) == "0"
    assert " Done " not in redis_db.hget(p.action_log_key("DEMO", 42), acq)
    assert status(redis_db, D + "CAMERA:SAVE_ACTION") == p.STATUS_SUCCESS
    # OR: once per finished operand (Aborted counts as done)
    assert recorder.monitor("DOING+DEMO+42+ANALYSIS_SERVER+1+" + D + "ANALYSIS:MONITOR_ACT") == 2


def test_redispatch_notify_zero_leaves_log_and_sends_no_completion(simulate, recorder, redis_db):
    simulate()
    start_pulse(redis_db)
    run_phase(redis_db, recorder, "INIT", 2)
    path = D + "DAQ.ADC1:INIT_ACTION"
    log_before = redis_db.hget(p.action_log_key("DEMO", 42), path)
    completions = recorder.count(p.DISPATCHER_PUBSUB)
    redis_db.lpush(p.server_todo_key("DAQ_SERVER"), p.work_item("DEMO", 42, path))
    redis_db.publish(p.server_channel("DAQ_SERVER"), p.DO)
    wait_until(
        lambda: (
            recorder.count(p.MONITOR_PUBSUB, lambda d: d.startswith("DONE+") and f"+{path}+6+" in d)
            == 2
        )
    )
    assert status(redis_db, path) == p.STATUS_SUCCESS
    assert recorder.count(p.DISPATCHER_PUBSUB) == completions
    assert redis_db.hget(p.action_log_key("DEMO", 42), path) == log_before
    assert recorder.monitor("END_PHASE+DEMO+42+INIT") == 2


def test_queued_item_waits_for_a_server_of_its_class(simulate, fixture_plant, redis_db, recorder):
    simulate()
    start_pulse(redis_db)
    path = D + "GHOST:INIT_ACTION"
    redis_db.lpush(p.server_todo_key("GHOST_SERVER"), p.work_item("DEMO", 42, path))
    redis_db.publish(p.server_channel("GHOST_SERVER"), p.DO)
    assert redis_db.lrange(p.server_todo_key("GHOST_SERVER"), 0, -1) == [
        p.work_item("DEMO", 42, path)
    ]
    simulate(dispatcher=False, servers=[("GHOST_SERVER", "1")])
    wait_until(lambda: status(redis_db, path) == p.STATUS_SUCCESS, what="ghost item run")
    assert redis_db.llen(p.server_todo_key("GHOST_SERVER")) == 0


def test_quit_writes_off_and_stop_writes_off_for_all(simulate, redis_db):
    sim = simulate()
    assert redis_db.hget(p.server_active_key("TIMING_SERVER"), "1") == p.SERVER_ON
    redis_db.publish(p.server_channel("TIMING_SERVER"), p.server_control_message(p.QUIT, 1))
    wait_until(lambda: redis_db.hget(p.server_active_key("TIMING_SERVER"), "1") == p.SERVER_OFF)
    assert redis_db.hget(p.server_active_key("DAQ_SERVER"), "2") == p.SERVER_ON
    sim.stop()
    for ident, ids in (("DAQ_SERVER", ("1", "2")), ("CAMERA_SERVER", ("1",))):
        for server_id in ids:
            assert redis_db.hget(p.server_active_key(ident), server_id) == p.SERVER_OFF


def test_crashed_server_marks_its_pending_actions(simulate, recorder, redis_db):
    sim = simulate()
    start_pulse(redis_db)
    command(redis_db, p.do_phase_message("DEMO", 42, "STORE"))
    store = D + "CAMERA:STORE_ACTION"
    wait_until(lambda: state(redis_db, store, "CAMERA_SERVER") == p.STATE_DOING)
    sim.host.crash_server("CAMERA_SERVER", "1")  # as kill -9: nothing written
    wait_until(lambda: status(redis_db, store) == p.STATUS_CRASHED, what="ServerCrashed")
    assert state(redis_db, store, "CAMERA_SERVER") == p.STATE_DONE
    assert redis_db.hget(p.server_active_key("CAMERA_SERVER"), "1") == p.SERVER_OFF
    wait_until(lambda: recorder.monitor("END_PHASE+DEMO+42+STORE"))
    # its dependent never runs
    assert state(redis_db, D + "ANALYSIS:STORE_ACTION", "ANALYSIS_SERVER") == (
        p.STATE_NOT_DISPATCHED
    )


def test_do_phase_without_tables_publishes_nothing(simulate, recorder, redis_db):
    simulate()
    command(redis_db, p.do_phase_message("DEMO", 7, "INIT"))
    wait_until(lambda: redis_db.hget(p.CURRENT_PHASE, "DEMO") == "INIT")
    start_pulse(redis_db)
    command(redis_db, p.do_phase_message("DEMO", 42, "NO_SUCH_PHASE"))
    wait_until(lambda: recorder.monitor("END_PHASE+DEMO+42+NO_SUCH_PHASE") == 1)
    assert recorder.monitor("END_PHASE+DEMO+7") == 0
    assert recorder.monitor("DOING") == 0


def test_abort_command_abandons_the_sequence(simulate, recorder, redis_db):
    simulate()
    start_pulse(redis_db)
    command(redis_db, p.do_phase_message("DEMO", 42, "PULSE_ON"))
    acq = D + "CAMERA:ACQ_ACTION"
    wait_until(lambda: state(redis_db, acq, "CAMERA_SERVER") == p.STATE_DOING)
    command(redis_db, "ABORT")  # the reference command-line tool sends capitals
    wait_until(lambda: recorder.monitor("END_PHASE+DEMO+42+PULSE_ON") == 1)
    redis_db.publish(p.server_channel("CAMERA_SERVER"), p.abort_message(acq))
    wait_until(lambda: recorder.monitor("END_PHASE+DEMO+42+PULSE_ON") == 2)
    assert state(redis_db, D + "CAMERA:SAVE_ACTION", "CAMERA_SERVER") == (p.STATE_NOT_DISPATCHED)


def test_watchdog_dies_fault_stops_heartbeats(simulate, recorder, redis_db):
    sim = simulate(faults=("watchdog-dies",))
    start_pulse(redis_db)
    channel = p.server_channel("DAQ_SERVER")
    wait_until(lambda: recorder.count(channel, lambda d: d == "HEARTBEAT+1") >= 1)
    assert sim.dispatcher.watchdog_alive
    simulate(dispatcher=False, servers=[("DAQ_SERVER", "3")])  # an id never seen
    wait_until(lambda: not sim.dispatcher.watchdog_alive, what="watchdog death")
    assert redis_db.hget(p.server_active_key("DAQ_SERVER"), "3") == p.SERVER_ON


def test_new_server_id_without_the_fault_is_watched(simulate, recorder, redis_db):
    sim = simulate()
    start_pulse(redis_db)
    simulate(dispatcher=False, servers=[("DAQ_SERVER", "3")])
    channel = p.server_channel("DAQ_SERVER")
    wait_until(lambda: recorder.count(channel, lambda d: d == "HEARTBEAT+3") >= 2)
    assert sim.dispatcher.watchdog_alive


@pytest.fixture
def private_sim(private_redis, fixture_plant):
    """Simulations on a Redis of the test's own, which it may restart; a
    recorder is made after the restart (its connection would die)."""
    yield from simulations(fixture_plant)


def restart_redis(server) -> None:
    """Stop and start it on the same port: it comes back empty."""
    server.stop()
    server.start()


def heartbeats(client, ident: str) -> dict[str, int]:
    return {k: int(v) for k, v in client.hgetall(p.server_heartbeat_key(ident)).items()}


LIVE = {"TIMING_SERVER": ("1",), "DAQ_SERVER": ("1", "2"), "CAMERA_SERVER": ("1",)}


def test_survives_a_redis_restart_mid_phase(private_sim, private_redis):
    """Redis restarted empty while a phase runs: every server writes its keys
    again, the abandoned sequence does not block the next pulse, a full
    phase runs, heartbeats advance and nobody is marked OFF."""
    private_sim()
    client = private_redis.client()
    start_pulse(client)
    command(client, p.do_phase_message("DEMO", 42, "INIT"))
    wait_until(
        lambda: state(client, D + "TIMING:INIT_ACTION", "TIMING_SERVER") == p.STATE_DOING,
        what="INIT running",
    )
    restart_redis(private_redis)
    client = private_redis.client()
    for ident, ids in LIVE.items():
        wait_until(
            lambda ident=ident, ids=ids: set(ids) <= set(heartbeats(client, ident)),
            what=f"{ident} heartbeat counter written again",
        )
        assert set(client.hgetall(p.server_ip_key(ident))) >= set(ids)
        assert set(client.hgetall(p.server_doing_key(ident))) >= set(ids)
    for channel in (p.DISPATCHER_COMMANDS, p.DISPATCHER_PUBSUB, p.server_channel("DAQ_SERVER")):
        wait_until(
            lambda channel=channel: client.pubsub_numsub(channel)[0][1] >= 1,
            what=f"resubscribed to {channel}",
        )
    recorder = Recorder(private_redis.url, sample_every=0.2 * SCALE)
    try:
        start_pulse(client, shot=43)
        command(client, p.do_phase_message("DEMO", 43, "INIT"))
        wait_until(
            lambda: recorder.monitor("END_PHASE+DEMO+43+INIT") >= 2,
            what="a full INIT after the restart",
        )
        for node, ident in (
            ("TIMING:INIT_ACTION", "TIMING_SERVER"),
            ("DAQ.ADC1:INIT_ACTION", "DAQ_SERVER"),
            ("ANALYSIS:INIT_ACTION", "ANALYSIS_SERVER"),
        ):
            assert state(client, D + node, ident, shot=43) == p.STATE_DONE, node
            assert status(client, D + node, shot=43) == p.STATUS_SUCCESS, node
        # heartbeats advance again: two more watchdog rounds answered
        before = heartbeats(client, "DAQ_SERVER")
        wait_until(
            lambda: all(heartbeats(client, "DAQ_SERVER")[i] >= before[i] + 2 for i in ("1", "2")),
            what="heartbeats advancing",
        )
        live_keys = {p.server_active_key(ident) for ident in LIVE}
        offs = [
            (key, field)
            for key, _, field, value in recorder.changes
            if key in live_keys and value == p.SERVER_OFF
        ]
        assert offs == [], "a live server was marked OFF after the restart"
    finally:
        recorder.stop()


def test_cycle_goes_on_after_a_redis_restart(private_sim, private_redis):
    private_sim(cycle=True, first_shot=500)
    client = private_redis.client()
    wait_until(
        lambda: client.hget(p.CURRENT_PHASE, "DEMO") is not None, what="the cycle's first phase"
    )
    restart_redis(private_redis)
    client = private_redis.client()
    # a later shot than the interrupted one gets through a whole phase
    wait_until(
        lambda: (
            (last := p.parse_last_build_table(client.get(p.LAST_BUILD_TABLE)))
            and int(last[1]) > 500
        ),
        timeout=30,
        what="a fresh shot after the restart",
    )
    shot = int(p.parse_last_build_table(client.get(p.LAST_BUILD_TABLE))[1])
    wait_until(
        lambda: status(client, D + "ANALYSIS:INIT_ACTION", shot=shot) == p.STATUS_SUCCESS,
        timeout=30,
        what="INIT of the fresh shot",
    )


def test_cycle_starts_a_fresh_shot_with_a_restarted_dispatcher(private_sim, private_redis):
    """quit ends the dispatcher; a new dispatcher with its cycle (what the
    demo restarts) goes on with the next shot, servers unchanged."""
    private_sim()  # the servers
    first = private_sim(servers=[], cycle=True, first_shot=700)
    client = private_redis.client()
    wait_until(lambda: client.hget(p.DISPATCH_DEFAULT, "SHOT") == "700", what="shot 700")
    command(client, p.dispatcher_command_message(p.CMD_QUIT))
    wait_until(first.finished.is_set, what="the dispatcher quit")
    first.stop()
    private_sim(servers=[], cycle=True)
    wait_until(
        lambda: status(client, D + "ANALYSIS:INIT_ACTION", shot=701) == p.STATUS_SUCCESS,
        timeout=30,
        what="INIT of shot 701",
    )


@pytest.mark.parametrize(
    ("who", "servers"),
    [
        (["--servers", "CAMERA_SERVER"], [("CAMERA_SERVER", "1")]),
        # the demo's servers process: every autostart server, no dispatcher
        (["--no-dispatcher"], [(i, s) for i, ids in LIVE.items() for s in ids]),
    ],
)
def test_command_stops_cleanly_on_sigterm(redis_server, redis_db, who, servers):
    env = dict(
        os.environ,
        REDIS_URL=redis_server.url,
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=str(ROOT),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "simulate_plant",
            "--plant",
            str(FIXTURE_PLANT),
            *who,
            "--time-scale",
            "0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for ident, server_id in servers:
            wait_until(
                lambda ident=ident, server_id=server_id: (
                    redis_db.hget(p.server_active_key(ident), server_id) == "ON"
                ),
                timeout=30,
                what=f"{ident}:{server_id} ON",
            )
        assert redis_db.pubsub_numsub(p.DISPATCHER_COMMANDS)[0][1] == 0  # no dispatcher
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    for ident, server_id in servers:
        assert redis_db.hget(p.server_active_key(ident), server_id) == p.SERVER_OFF


def test_the_cycle_aborts_a_sequence_that_never_ended(monkeypatch):
    """A phase whose END_PHASE never comes (a completion lost while Redis
    was away) is aborted, as an operator would, so the next phase is not
    refused as "already in progress" for ever."""
    from monitor_app import protocol as p
    from monitor_app.simulator import cycle as cycle_module
    from monitor_app.simulator.cycle import Cycle
    from monitor_app.simulator.plant import load_plant
    from monitor_app.simulator.runtime import SimConfig
    from tests.sim_fixtures import FIXTURE_PLANT

    sent: list[str] = []
    loop = Cycle(load_plant(FIXTURE_PLANT), SimConfig(time_scale=0.01))

    class NoRedis:
        def hset(self, *args, **kwargs) -> None:
            pass

    monkeypatch.setattr(cycle_module, "sync_client", NoRedis)
    monkeypatch.setattr(loop, "_send", lambda client, message: sent.append(message))
    monkeypatch.setattr(loop, "_pause", lambda factor=1.0: False)
    ended = {"INIT": False}
    monkeypatch.setattr(loop, "_wait_phase", lambda shot, phase: ended.get(phase, True))
    loop._one_shot(42)
    name = loop.tree.name
    init = sent.index(p.do_phase_message(name, 42, "INIT"))
    assert sent[init + 1] == p.dispatcher_command_message(p.CMD_ABORT)
    assert sent.count(p.dispatcher_command_message(p.CMD_ABORT)) == 1  # only the stuck phase


def test_the_cycle_clears_a_given_up_shot_before_the_next(monkeypatch):
    """After a shot is given up (Redis went away), its sequence may still run
    in the dispatcher: the next shot starts with an abort, not a refused phase."""
    from monitor_app import protocol as p
    from monitor_app.simulator import cycle as cycle_module
    from monitor_app.simulator.cycle import Cycle
    from monitor_app.simulator.plant import load_plant
    from monitor_app.simulator.runtime import SimConfig
    from tests.sim_fixtures import FIXTURE_PLANT

    class NoRedis:
        def hset(self, *args, **kwargs) -> None:
            pass

    sent: list[str] = []
    loop = Cycle(load_plant(FIXTURE_PLANT), SimConfig(time_scale=0.01))
    monkeypatch.setattr(cycle_module, "sync_client", NoRedis)
    monkeypatch.setattr(loop, "_send", lambda client, message: sent.append(message))
    monkeypatch.setattr(loop, "_pause", lambda factor=1.0: False)
    monkeypatch.setattr(loop, "_wait_phase", lambda shot, phase: True)
    abort = p.dispatcher_command_message(p.CMD_ABORT)
    loop._one_shot(41)
    assert abort not in sent
    loop._abandoned = True  # what run() sets when a shot is lost
    sent.clear()
    loop._one_shot(42)
    assert sent[0] == abort and sent[1] == p.create_pulse_message(loop.tree.name, 42)
    assert sent.count(abort) == 1
