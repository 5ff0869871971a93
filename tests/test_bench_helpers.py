"""The benchmark's pure helpers (bench/stats.py, the WebSocket framing): the
figures ``make bench`` prints are only as good as these."""

from __future__ import annotations

import math

import pytest

from bench import stats
from bench.wsclient import accept_for, client_frame, mask


def test_percentiles_interpolate_between_ranks():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 50) == 3.0
    assert stats.percentile(values, 100) == 5.0
    assert stats.percentile(values, 25) == 2.0
    assert stats.percentile([1.0, 2.0], 50) == 1.5
    assert stats.percentile([10.0, 20.0, 30.0, 40.0], 99) == pytest.approx(39.7)
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError):
        stats.percentile(values, 101)


def test_summary_is_in_milliseconds():
    got = stats.summary_ms([0.010, 0.020, 0.030, 0.040, 1.0])
    assert got["p50"] == pytest.approx(30.0)
    assert got["max"] == pytest.approx(1000.0)
    assert got["n"] == 5
    empty = stats.summary_ms([])
    assert math.isnan(empty["p99"]) and empty["n"] == 0


RAW_INFO = """# Commandstats\r
cmdstat_hset:calls=120,usec=300,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r
cmdstat_hgetall:calls=40,usec=9000,usec_per_call=225.00,rejected_calls=0,failed_calls=0\r
cmdstat_client|setinfo:calls=2,usec=3,usec_per_call=1.50,rejected_calls=0,failed_calls=0\r
cmdstat_info:calls=7,usec=70,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r
"""


def test_commandstats_from_the_text_reply_and_the_parsed_one():
    text = stats.parse_commandstats(RAW_INFO)
    assert text == {"hset": 120, "hgetall": 40, "client|setinfo": 2, "info": 7}
    parsed = stats.parse_commandstats(
        {"cmdstat_hset": {"calls": 120, "usec": 300}, "cmdstat_get": {"calls": 1}}
    )
    assert parsed == {"hset": 120, "get": 1}


def test_console_commands_are_the_delta_less_our_own():
    before = {"hset": 100, "hgetall": 10, "publish": 5, "info": 3}
    after = {"hset": 400, "hgetall": 50, "publish": 105, "info": 9, "scan": 4}
    own = {"hset": 200, "publish": 100}
    delta = stats.commands_delta(before, after, own=own)
    assert delta == {"hset": 100, "hgetall": 40, "scan": 4}  # no INFO, no load
    assert stats.commands_delta({"hset": 5}, {"hset": 6}, own={"hset": 9}) == {}


def test_proc_figures():
    status = "Name:\tpython\nVmPeak:\t  300000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 100 kB\n"
    assert stats.proc_status_kb(status, "VmHWM") == 123456
    assert stats.proc_status_kb(status, "VmSwap") is None
    stat = "4242 (py thon) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 99"
    assert stats.proc_cpu_seconds(stat, 100) == pytest.approx(3.0)


def test_rows_of_a_fragment_once_each_with_their_state():
    html = (
        '<tr id="act-00aa" class="cat-busy" hx-swap-oob="true"><td>T</td>'
        '<td><span class="state">DOING</span></td></tr>'
        '<tr id="vact-00aa" class="cat-busy" hx-swap-oob="true"><td>T</td>'
        '<td><span class="state">DOING</span></td></tr>'
        '<tr id="act-11bb" class="cat-off"><td><span class="state" title="x">SERVER_OFF</span>'
        '</td></tr><div id="summary">Doing: <b>1</b></div>'
    )
    assert stats.fragment_rows(html) == [("act-00aa", "DOING"), ("act-11bb", "SERVER_OFF")]
    assert stats.fragment_rows('{"refresh": "actions"}') == []


def test_the_row_template_is_what_the_bench_parses():
    """If the row template changes its shape, the bench must still find rows."""
    from monitor_app.push import action_row_html
    from monitor_app.state import ActionRow

    row = ActionRow("T", "1", "S", "\\T::TOP:A", "DONE", "Success", "INIT")
    html = action_row_html(row, can_operate=False, oob=True, table="active")
    assert stats.fragment_rows(html) == [(row.dom_id, "DONE")]


def test_table_and_key_values():
    table = stats.format_table(["a", "bb"], [[1, 2.25], ["x", math.nan]])
    assert table.splitlines() == ["a   bb", "-  ---", "1  2.2", "x    -"]
    line = stats.key_values({"p50_ms": 12.345, "ok": "met", "r": math.nan, "n": 3})
    assert line == "p50_ms=12.3 ok=met r=nan n=3"
    assert stats.verdict(True) == "met" and stats.verdict(False) == "NOT met"


def test_websocket_framing():
    assert accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    key = b"\x01\x02\x03\x04"
    assert mask(mask(b"hello world", key), key) == b"hello world"
    frame = client_frame(0x9, b"ping")
    assert frame[0] == 0x89 and frame[1] == 0x80 | 4 and len(frame) == 2 + 4 + 4
    big = client_frame(0x1, b"x" * 70000)
    assert big[1] == 0x80 | 127


def test_a_target_the_run_did_not_measure_is_said_so():
    from bench import stats

    assert stats.verdict(None) == "not measured"
    assert stats.verdict(True) == "met" and stats.verdict(False) == "NOT met"
