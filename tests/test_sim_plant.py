"""Plant files: the shipped demo plant is what the demo needs, both formats
load, and mistakes are reported with the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor_app.simulator.generator import synthetic
from monitor_app.simulator.plant import (
    PlantError,
    condition_depth,
    load_plant,
    load_toml_plant,
    parse_condition,
)
from tests.sim_fixtures import FIXTURE_PLANT

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[servers.TIMING_SERVER]
ids = [1]

[[trees]]
name = "DEMO"

[[trees.actions]]
path = "\\\\DEMO::TOP.TIMING:INIT_ACTION"
server = "TIMING_SERVER"
phase = "INIT"
sequence = 10
"""


def test_demo_plant_has_what_the_demo_shows():
    plant = load_plant(ROOT / "plants" / "demo.toml")
    (tree,) = plant.trees.values()
    actions = tree.actions
    assert len(actions) >= 60
    assert len(plant.servers) >= 8
    assert any(len(s.ids) == 2 for s in plant.servers.values())
    assert any(not s.autostart for s in plant.servers.values())
    assert any(not s.ids for s in plant.servers.values())  # a class with no server at all
    assert tree.phases()[:4] == ["INIT", "PULSE_ON", "STORE", "POST_PULSE_CHECK"]
    texts = {str(a.condition) for a in actions if a.condition}
    assert any("AND" in t for t in texts) and any("OR" in t for t in texts)
    assert any(a.result == "failure" for a in actions)
    assert any(not a.on for a in actions)
    assert any(a.duration >= 20 and a.cycle_abort_after for a in actions)
    per_class = {}
    for a in actions:
        if a.sequence is not None:
            per_class.setdefault((a.server, a.phase), set()).add(a.sequence)
    assert max(len(v) for v in per_class.values()) >= 3


def test_fixture_plant_loads_as_it_is():
    plant = load_plant(FIXTURE_PLANT)
    tree = plant.trees["DEMO"]
    assert len(tree.actions) == 23
    assert plant.servers["DAQ_SERVER"].ids == ("1", "2")
    assert plant.servers["GHOST_SERVER"].ids == ()
    # node ids as the recorded run shows them
    assert tree.by_path["\\DEMO::TOP.CAMERA:ACQ_ACTION"].nid == 23
    assert tree.by_path["\\DEMO::TOP.TIMING:STORE_ACTION"].nid == 32


def test_generator_makes_a_loadable_plant():
    plant = load_toml_plant(synthetic(400, 20, seed=3))
    assert plant.action_count() == 400
    assert len(plant.servers) == 20


def test_conditions():
    cond = parse_condition("\\A::X:Y OR (\\A::X:Z AND \\A::X:W)")
    assert condition_depth(cond) == 2
    with pytest.raises(ValueError):
        parse_condition("\\A::X:Y AND")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("sequence = 10", 'depends = "\\\\DEMO::TOP.TIMING:NOPE"'), "not an action of tree"),
        (("sequence = 10", ""), "exactly one of 'sequence' and 'depends'"),
        (("sequence = 10", "sequence = 10\nspeed = 3"), "speed: is not a known action field"),
        (('server = "TIMING_SERVER"', 'server = "OTHER"'), "OTHER"),
        (("sequence = 10", "sequence = -1"), "sequence: must be a whole number"),
        (("TOP.TIMING:INIT_ACTION", "TOP TIMING"), "is not a full path"),
        (('phase = "INIT"', "phase = 3"), "phase: must be a phase name"),
        (('name = "DEMO"', 'name = "DE:MO"'), "trees[0].name"),
        (("ids = [1]", 'ids = ["one"]'), "servers.TIMING_SERVER.ids"),
    ],
)
def test_validation_names_field_and_line(edit, message):
    old, new = edit
    assert old in GOOD
    with pytest.raises(PlantError) as info:
        load_toml_plant(GOOD.replace(old, new), "plant.toml")
    text = str(info.value)
    assert message in text
    assert text.startswith("plant.toml")


def test_validation_gives_the_line_of_the_field():
    bad = GOOD.replace("sequence = 10", 'sequence = 10\nduration = "long"')
    with pytest.raises(PlantError, match=r"\(line 13\): trees\[0\]\.actions\[0\]\.duration"):
        load_toml_plant(bad, "plant.toml")


def test_toml_syntax_error_is_reported():
    with pytest.raises(PlantError, match="not valid TOML"):
        load_toml_plant("[[trees]\n", "plant.toml")


def test_json_plant_errors():
    with pytest.raises(PlantError, match="DEMO\\[0\\].phase"):
        from monitor_app.simulator.plant import load_json_plant

        load_json_plant(
            '{"_servers": {"S": [1]}, "DEMO": [{"path": "\\\\DEMO::TOP:A", '
            '"server": "S", "sequence": 1}]}',
            "tree.json",
        )
