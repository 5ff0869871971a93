"""Loading the recorded dispatcher state into a Redis, safely."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command


def test_loads_a_step_and_refuses_to_overwrite(redis_db):
    out = io.StringIO()
    call_command("load_recording", "--step", "do_phase_INIT", stdout=out)
    assert "keys of step do_phase_INIT" in out.getvalue()
    assert redis_db.hget("ACTION_SERVER_ACTIVE:DAQ_SERVER", "2") == "ON"
    assert redis_db.hlen("ACTION_STATUS:DEMO:42") == 23
    with pytest.raises(CommandError, match="already holds dispatcher keys"):
        call_command("load_recording", "--step", "final")
    call_command("load_recording", "--step", "final", "--force", stdout=out)


def test_unknown_step(redis_db):
    with pytest.raises(CommandError, match="no step"):
        call_command("load_recording", "--step", "nope")
