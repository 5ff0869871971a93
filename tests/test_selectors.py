"""Reads of the recorded dispatcher state, and of bad data, from a real Redis."""

from __future__ import annotations

from monitor_app import selectors
from monitor_app.state import PulseRef


async def test_servers_of_the_recording(load_snapshot):
    load_snapshot("do_phase_INIT")
    rows = await selectors.servers_list()
    keys = [r.key for r in rows]
    assert keys == [
        "ANALYSIS_SERVER:1",
        "CAMERA_SERVER:1",
        "DAQ_SERVER:1",
        "DAQ_SERVER:2",
        "TIMING_SERVER:1",
        "GHOST_SERVER:1",
    ]  # ON first, then by name; the ghost class is OFF
    ghost = rows[-1]
    assert ghost.active == "OFF" and ghost.ip == ""


async def test_actions_of_the_recording(load_snapshot, transcript):
    keys = load_snapshot("do_phase_STORE")
    pointers = await selectors.pointers_get()
    assert pointers.last_build == PulseRef("DEMO", "42")
    pulses = await selectors.pulses_list()
    assert PulseRef("DEMO", "42") in pulses
    actions = await selectors.pulse_actions("DEMO", "42")
    status = keys["ACTION_STATUS:DEMO:42"]["value"]
    assert set(actions.rows) == set(status)
    for path, value in status.items():
        assert actions.rows[path].raw_status == value
    assert actions.current_phase == "STORE"
    ghost = actions.rows["\\DEMO::TOP.GHOST:INIT_ACTION"]
    assert (ghost.state, ghost.status) == ("SERVER_OFF", "NotExecuted")
    assert actions.rows["\\DEMO::TOP.DAQ.ADC4:INIT_ACTION"].state == "OFF"


async def test_default_pulse_order(redis_db):
    redis_db.hset("ACTION_STATUS:DEMO:7", "\\DEMO::A", "none")
    redis_db.hset("ACTION_STATUS:DEMO:9", "\\DEMO::A", "none")
    pulses = await selectors.pulses_list()
    pointers = await selectors.pointers_get()
    assert selectors.default_pulse(pulses, pointers) == PulseRef("DEMO", "9")
    redis_db.hset("DISPATCH_INFO", mapping={"CURR_TREE": "DEMO", "CURR_SHOT": "7"})
    pointers = await selectors.pointers_get()
    assert selectors.default_pulse(pulses, pointers) == PulseRef("DEMO", "7")
    redis_db.set("LAST_BUILD_TABLE", '{"tree": "DEMO", "shot": "8"}')
    pointers = await selectors.pointers_get()
    assert selectors.default_pulse(pulses, pointers) == PulseRef("DEMO", "8")


async def test_bad_data_reads_as_unknown(redis_server, redis_db):
    raw = redis_server.client().__class__.from_url(redis_server.url)  # bytes client
    raw.hset("ACTION_INFO:DEMO:1:DAQ", b"\\DEMO::BAD\xff", b"DO\xfeNE")
    raw.hset("ACTION_STATUS:DEMO:1", "\\DEMO::X", "Exploded")
    raw.set("ACTION_PHASE_INFO:DEMO:1", "a string, not a hash")
    raw.set("LAST_BUILD_TABLE", "{not json")
    raw.lpush("CURRENT_PHASE", "a list")
    raw.hset("ACTION_INFO:DEMO:1:DAQ:EXTRA", "\\DEMO::Y", "DONE")
    raw.set("ACTION_SERVER_ACTIVE:BROKEN", "not a hash")
    raw.hset("ACTION_SERVER_ACTIVE:ODD", "1", "MAYBE")
    pointers = await selectors.pointers_get()
    assert pointers.last_build is None and pointers.current_phase == {}
    actions = await selectors.pulse_actions("DEMO", "1")
    assert "\\DEMO::Y" not in actions.rows
    bad = next(r for p, r in actions.rows.items() if p.startswith("\\DEMO::BAD"))
    assert bad.state == "unknown"
    assert actions.rows["\\DEMO::X"].status == "unknown"
    servers = await selectors.servers_list()
    assert [(r.ident, r.active) for r in servers] == [("ODD", "unknown")]
    assert await selectors.action_log_get("DEMO", "1", "\\DEMO::X") is None


async def test_queued_work_items_of_a_dead_class(redis_db):
    path = "\\DEMO::TOP.GHOST:INIT_ACTION"
    redis_db.hset("ACTION_INFO:DEMO:42:GHOST_SERVER", path, "DONE")
    redis_db.hset("ACTION_SERVER_INFO:DEMO:42", path, "GHOST_SERVER")
    redis_db.hset("ACTION_SERVER_ACTIVE:GHOST_SERVER", "1", "OFF")
    redis_db.lpush("ACTION_SERVER_TODO:GHOST_SERVER", f"DEMO+42+{path}+0+0+0")
    actions = await selectors.pulse_actions("DEMO", "42")
    assert actions.rows[path].queued
    servers = await selectors.servers_list()
    assert servers[0].queued == 1
    redis_db.hset("ACTION_SERVER_ACTIVE:GHOST_SERVER", "1", "ON")
    actions = await selectors.pulse_actions("DEMO", "42")
    assert not actions.rows[path].queued


async def test_redis_down_is_one_clear_error(settings):
    from tests.redis_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    try:
        await selectors.servers_list()
    except selectors.RedisUnavailable as exc:
        assert str(exc)
    else:
        raise AssertionError("no error for a closed port")


async def test_cached_read_equals_a_full_read(redis_server, redis_db):
    """The poller's incremental read builds the very rows a full read does,
    through state, status, time, queue and structural changes, bad bytes too
    (the DOING/DONE times are the reader's own: it notes what it writes)."""
    import random

    from monitor_app import console_keys as ck

    raw = redis_server.client().__class__.from_url(redis_server.url)  # bytes client
    rng = random.Random(5)
    idents = ["A_SERVER", "B_SERVER", "C_SERVER"]
    paths = [f"\\DEMO::TOP.N{i}:ACT" for i in range(60)]

    def build() -> None:
        for i, path in enumerate(paths):
            ident = idents[i % 3]
            raw.hset(f"ACTION_INFO:DEMO:5:{ident}", path, "NOT_DISPATCHED")
            raw.hset("ACTION_STATUS:DEMO:5", path, "none")
            raw.hset("ACTION_PHASE_INFO:DEMO:5", path, "INIT" if i % 2 else "STORE")
            raw.hset("ACTION_SERVER_INFO:DEMO:5", path, ident)

    build()
    raw.hset("ACTION_SERVER_ACTIVE:A_SERVER", "1", "ON")
    raw.hset("ACTION_SERVER_ACTIVE:C_SERVER", "1", "OFF")
    cache = selectors.PulseCache()
    first = await selectors.pulse_actions_cached("DEMO", "5", cache)
    assert first.changed is None
    before = first.rows
    for step in range(40):
        for _ in range(rng.randint(0, 6)):
            path = rng.choice(paths)
            ident = idents[paths.index(path) % 3]
            kind = rng.random()
            if kind < 0.3:
                raw.hset(f"ACTION_INFO:DEMO:5:{ident}", path, rng.choice(["DOING", "DONE", "X"]))
            elif kind < 0.5:
                raw.hset("ACTION_STATUS:DEMO:5", path, rng.choice(["Success", "None", b"\xff"]))
            elif kind < 0.65:  # the owner's own times: written, and noted in the cache
                raw.hset(ck.doing_at_key("DEMO", "5"), path, f"{step}.5")
                raw.hdel(ck.done_at_key("DEMO", "5"), path)
                cache.note_written(
                    [(ck.doing_at_key("DEMO", "5"), path, f"{step}.5"),
                     (ck.done_at_key("DEMO", "5"), path, None)]
                )  # fmt: skip
            elif kind < 0.75:
                raw.hset(ck.done_at_key("DEMO", "5"), path, f"{step}.9")
                cache.note_written([(ck.done_at_key("DEMO", "5"), path, f"{step}.9")])
            elif kind < 0.85:
                raw.lpush("ACTION_SERVER_TODO:C_SERVER", f"DEMO+5+{path}+0+0+0")
            elif kind < 0.9:
                raw.delete("ACTION_SERVER_TODO:C_SERVER")
            elif kind < 0.95:
                raw.hset("ACTION_PHASE_INFO:DEMO:5", path, "PULSE_ON")  # a rebuild
                cache.invalidate()
            else:
                raw.hset("ACTION_STATUS:DEMO:5", f"\\DEMO::NEW{step}", "none")  # a new row
        cached = await selectors.pulse_actions_cached("DEMO", "5", cache)
        full = await selectors.pulse_actions("DEMO", "5")
        assert cached.rows == full.rows, step
        assert cached.current_phase == full.current_phase
        if cached.changed is not None:
            differ = {p for p in full.rows if before.get(p) != full.rows[p]}
            assert differ <= cached.changed, step
        before = cached.rows
