"""Rows, counts and the phase judgement, from plain hashes."""

from __future__ import annotations

from monitor_app import state as s
from monitor_app.state import ActionRow


def row(path="\\T::A", state="DONE", status="Success", phase="INIT", **kw) -> ActionRow:
    return ActionRow(
        tree="T", shot="1", server="S", path=path, state=state, status=status, phase=phase, **kw
    )


def test_rows_join_every_hash_and_mark_what_is_missing():
    rows = s.action_rows(
        "T",
        "1",
        info_by_ident={"S1": {"\\T::A": "DONE", "\\T::B": "WEIRD"}},
        status={"\\T::A": "Success", "\\T::C": "Failure"},
        phase={"\\T::A": "INIT"},
        server={"\\T::A": "S1"},
        doing_at={"\\T::A": "10.0"},
        done_at={"\\T::A": "12.5"},
    )
    assert set(rows) == {"\\T::A", "\\T::B", "\\T::C"}
    assert rows["\\T::A"].duration == 2.5
    assert rows["\\T::B"].state == "unknown" and rows["\\T::B"].raw_state == "WEIRD"
    assert rows["\\T::C"].state == "unknown" and rows["\\T::C"].server == "unknown"
    assert rows["\\T::B"].server == "S1"


def test_summary_counts_each_from_the_rows():
    rows = [
        row("\\T::A"),
        row("\\T::B", status="Failure"),
        row("\\T::C", status="Aborted"),
        row("\\T::D", state="DOING", status="None"),
        row("\\T::E", state="NOT_DISPATCHED", status="none"),
        row("\\T::F", state="OFF", status="none"),
        row("\\T::G", state="SERVER_OFF", status="NotExecuted"),
        row("\\T::H", state="unknown", status="unknown"),
        row("\\T::I", state="DISPATCHED", status="None"),
    ]
    summary = s.summarize(rows)
    assert summary.total == 9
    assert summary.active == 7
    assert (summary.success, summary.failed, summary.aborted) == (1, 1, 1)
    assert (summary.doing, summary.dispatched, summary.waiting, summary.done) == (1, 1, 1, 3)
    assert (summary.off, summary.server_off, summary.unknown) == (1, 1, 1)


def test_summary_update_matches_a_recount():
    rows = {r.path: r for r in [row("\\T::A", state="DOING", status="None"), row("\\T::B")]}
    summary = s.summarize(rows.values())
    new = row("\\T::A", status="Failure")
    s.summary_update(summary, rows["\\T::A"], new)
    rows["\\T::A"] = new
    assert summary == s.summarize(rows.values())


def test_phase_progress():
    running = [row("\\T::A", state="DOING", status="None"), row("\\T::B")]
    assert s.phase_progress(running, "INIT", now=100, last_activity=None) == s.PHASE_RUNNING
    done = [row("\\T::A"), row("\\T::B", status="Failure")]
    assert s.phase_progress(done, "INIT", now=100, last_activity=99.5) == s.PHASE_RUNNING
    assert s.phase_progress(done, "INIT", now=100, last_activity=90) == s.PHASE_OVER
    waiting = [row("\\T::A", state="NOT_DISPATCHED", status="none")]
    assert s.phase_progress(waiting, "INIT", now=100, last_activity=None) == s.PHASE_IDLE
    assert s.phase_progress(done, "", now=100, last_activity=None) == s.PHASE_NONE
    assert s.phase_progress(done, "STORE", now=100, last_activity=None) == s.PHASE_NONE
    queued = [row("\\T::A", state="NOT_DISPATCHED", status="none", queued=True), row("\\T::B")]
    assert s.phase_progress(queued, "INIT", now=100, last_activity=None) == s.PHASE_RUNNING


def test_active_rows_put_failures_first_and_leave_out_switched_off():
    rows = [
        row("\\T::A"),
        row("\\T::B", status="Failure"),
        row("\\T::C", state="OFF", status="none"),
        row("\\T::D", phase="STORE"),
        row("\\T::E", state="SERVER_OFF", status="NotExecuted"),
    ]
    chosen = s.active_rows(rows, "INIT")
    assert [r.path for r in chosen] == ["\\T::B", "\\T::A", "\\T::E"]


def test_server_rows_and_staleness():
    rows = s.server_rows(
        "DAQ",
        {"2": "ON", "1": "OFF", "3": "??"},
        {"1": "10.0.0.1"},
        {"2": "1"},
        {"2": "7"},
        advanced={"DAQ:2": "7 100.0"},
    )
    assert [r.server_id for r in rows] == ["1", "2", "3"]
    assert rows[2].active == "unknown"
    assert rows[1].is_stale(now=113, bound=12) and not rows[1].is_stale(now=105, bound=12)
    assert not rows[0].is_stale(now=1000, bound=12)  # OFF is not stale
    assert [r.server_id for r in s.sort_servers(rows)] == ["2", "1", "3"]


def test_tally_and_summary_agree_with_walking_the_rows():
    """The reader's running tallies give what a walk over every row gives."""
    import random

    from monitor_app.state import (
        PHASE_SETTLE_SECONDS,
        ActionRow,
        PhaseTally,
        Summary,
        phase_progress,
        summarize,
        summary_update,
    )

    rng = random.Random(3)
    states = ["NOT_DISPATCHED", "DISPATCHED", "DOING", "DONE", "OFF", "SERVER_OFF", "unknown"]
    statuses = ["none", "None", "Success", "Failure", "Aborted", "ServerCrashed", "unknown"]

    def row(path: str) -> ActionRow:
        return ActionRow(
            "T", "1", "S", path, rng.choice(states), rng.choice(statuses),
            rng.choice(["INIT", "STORE", ""]), queued=rng.random() < 0.1,
        )  # fmt: skip

    rows = {f"\\T::N{i}": row(f"\\T::N{i}") for i in range(50)}
    tally, summary = PhaseTally(rows.values()), summarize(rows.values())
    for _ in range(300):
        path = rng.choice(list(rows))
        new = row(path)
        tally.move(rows[path], new)
        summary_update(summary, rows[path], new)
        rows[path] = new
        assert summary == summarize(rows.values()) != Summary()
        for phase in ("INIT", "STORE", "PULSE_ON", ""):
            for activity in (None, 100.0 - PHASE_SETTLE_SECONDS / 2, 0.0):
                expected = phase_progress(rows.values(), phase, 100.0, activity)
                assert phase_progress(tally, phase, 100.0, activity) == expected
