"""A synthetic pulse written straight into Redis, key for key as the
dispatcher's ``build_tables`` writes it (PROTOCOL.md), from the plant
generator's plant, plus the server-class hashes live servers keep."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from monitor_app import protocol as p
from monitor_app.simulator.generator import synthetic
from monitor_app.simulator.plant import Action, load_toml_plant
from monitor_app.state import dom_id

TREE = "BENCH"
SHOT = "1"
CURRENT = "INIT"


@dataclass
class BenchPulse:
    actions: list[Action]
    idents: list[str]
    live_ids: dict[str, list[str]]
    tree: str = TREE
    shot: str = SHOT
    phase: str = CURRENT
    dom_ids: dict[str, str] = field(default_factory=dict)

    def dom(self, path: str) -> str:
        found = self.dom_ids.get(path)
        if found is None:
            found = self.dom_ids[path] = dom_id("act", self.tree, self.shot, path)
        return found

    def runnable(self, phase: str) -> list[Action]:
        """Switched-on actions of ``phase`` whose class has a live server."""
        return [a for a in self.actions if a.on and a.phase == phase and a.server in self.live_ids]


def make_pulse(actions: int, classes: int, seed: int = 1) -> BenchPulse:
    plant = load_toml_plant(synthetic(actions, classes, seed=seed, tree=TREE), "<bench>")
    tree = plant.tree(TREE)
    assert tree is not None
    live = {ident: list(server.ids) for ident, server in plant.servers.items() if server.autostart}
    return BenchPulse(actions=list(tree.actions), idents=plant.idents(), live_ids=live)


def write_pulse(client: redis.Redis, pulse: BenchPulse) -> int:
    """Build the tables as the dispatcher would; the number of commands sent."""
    info: dict[str, dict[str, str]] = {}
    status: dict[str, str] = {}
    phases: dict[str, str] = {}
    servers: dict[str, str] = {}
    for action in pulse.actions:
        status[action.path] = p.STATUS_BUILT
        servers[action.path] = action.server
        state = p.STATE_NOT_DISPATCHED if action.on else p.STATE_OFF
        info.setdefault(action.server, {})[action.path] = state
        if action.on:
            phases[action.path] = action.phase
    pipe = client.pipeline(transaction=False)
    for ident, mapping in info.items():
        pipe.hset(p.action_info_key(pulse.tree, pulse.shot, ident), mapping=mapping)
    pipe.hset(p.action_phase_key(pulse.tree, pulse.shot), mapping=phases)
    pipe.hset(p.action_server_key(pulse.tree, pulse.shot), mapping=servers)
    pipe.hset(p.action_status_key(pulse.tree, pulse.shot), mapping=status)
    for n, ident in enumerate(pulse.idents):
        ids = pulse.live_ids.get(ident, ["1"])
        on = p.SERVER_ON if ident in pulse.live_ids else p.SERVER_OFF
        pipe.hset(p.server_active_key(ident), mapping={i: on for i in ids})
        pipe.hset(p.server_ip_key(ident), mapping={i: f"10.{n // 250}.{n % 250}.10" for i in ids})
        pipe.hset(p.server_doing_key(ident), mapping={i: "0" for i in ids})
        pipe.hset(p.server_heartbeat_key(ident), mapping={i: "1" for i in ids})
    pipe.set(p.LAST_BUILD_TABLE, p.last_build_table_value(pulse.tree, pulse.shot))
    pipe.hset(p.CURRENT_PHASE, pulse.tree, pulse.phase)
    pipe.hset(
        p.DISPATCH_INFO,
        mapping={
            p.DISPATCH_INFO_TREE: pulse.tree,
            p.DISPATCH_INFO_SHOT: pulse.shot,
            p.DISPATCH_INFO_PHASE: pulse.phase,
        },
    )
    pipe.hset(p.DISPATCH_DEFAULT, mapping={"TREE": pulse.tree, "SHOT": pulse.shot})
    sent = len(pipe.command_stack)
    pipe.execute()
    return sent
