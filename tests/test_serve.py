"""The console's daphne launcher: daphne's own command line, on uvloop."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from webmonitor import serve


def test_new_loops_are_uvloop_s():
    before = asyncio.get_event_loop_policy()
    try:
        assert serve.install_loop() == "uvloop"
        loop = asyncio.new_event_loop()
        try:
            assert type(loop).__module__.startswith("uvloop")
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(before)


def test_it_takes_daphne_s_arguments():
    done = subprocess.run(
        [sys.executable, "-m", "webmonitor.serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: daphne") and "application" in done.stdout
