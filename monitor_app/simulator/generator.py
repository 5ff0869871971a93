"""Synthetic large plants for benchmarks: ``python -m
monitor_app.simulator.generator --actions 20000 --servers 200 > big.toml``.

The plant is shaped like a real one (per class a few sequence numbers per
phase, some dependencies, a few failures and switched-off nodes) and is the
same for the same seed, so benchmark runs compare.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable

from monitor_app.simulator.plant import ACTION_FIELDS

PHASES = ("INIT", "PULSE_ON", "STORE", "POST_PULSE_CHECK")


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def to_toml(
    tree: str,
    servers: Iterable[dict],
    actions: Iterable[dict],
    header: str = "",
) -> str:
    """Write a plant file; ``servers`` entries have ident/ids/address/autostart,
    ``actions`` entries the fields of docs/plant-format.md."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    out += ["", "[plant]", f"name = {_quote(tree.lower())}", ""]
    for server in servers:
        out.append(f"[servers.{server['ident']}]")
        out.append(f"ids = [{', '.join(str(i) for i in server.get('ids', [1]))}]")
        out.append(f"address = {_quote(server.get('address', '127.0.0.1'))}")
        if not server.get("autostart", True):
            out.append("autostart = false")
        out.append("")
    out += ["[[trees]]", f"name = {_quote(tree)}", ""]
    for action in actions:
        out.append("[[trees.actions]]")
        for key in ACTION_FIELDS:
            if key not in action:
                continue
            value = action[key]
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = repr(value)
            elif isinstance(value, list):
                text = "[" + ", ".join(_quote(v) for v in value) + "]"
            else:
                text = _quote(value)
            out.append(f"{key} = {text}")
        out.append("")
    return "\n".join(out)


def synthetic(actions: int, servers: int, seed: int = 1, tree: str = "BENCH") -> str:
    """A plant of ``actions`` actions spread over ``servers`` classes."""
    if actions < 1 or servers < 1:
        raise ValueError("need at least one action and one server class")
    rng = random.Random(seed)
    idents = [f"SRV{n:04d}_SERVER" for n in range(servers)]
    server_list = [
        {
            "ident": ident,
            "ids": [1, 2] if n % 10 == 0 else [1],
            "address": f"10.{n // 250}.{n % 250}.10",
            "autostart": n % 50 != 49,  # a few classes never start
        }
        for n, ident in enumerate(idents)
    ]
    entries: list[dict] = []
    per_phase_seq: dict[tuple[str, str], list[str]] = {}
    for index in range(actions):
        ident = idents[index % servers]
        phase = PHASES[(index // servers) % len(PHASES)]
        unit = index // (servers * len(PHASES))
        path = f"\\{tree}::TOP.{ident[:-7]}.UNIT{unit:04d}:{phase}_ACT"
        entry: dict = {
            "path": path,
            "server": ident,
            "phase": phase,
            "duration": round(rng.uniform(0.2, 2.0), 2),
            "output": [f"{ident[:-7]} unit {unit}: {phase.lower()} step {k}" for k in (1, 2)],
        }
        earlier = per_phase_seq.get((phase, ident), [])
        if earlier and rng.random() < 0.05:
            other = per_phase_seq.get((phase, idents[(index + 1) % servers]), [])
            operands = [rng.choice(earlier)] + ([rng.choice(other)] if other else [])
            entry["depends"] = (" AND " if rng.random() < 0.5 else " OR ").join(
                dict.fromkeys(operands)
            )
        else:
            entry["sequence"] = 10 * (1 + unit % 5)
            per_phase_seq.setdefault((phase, ident), []).append(path)
        if rng.random() < 0.02:
            entry["result"] = "failure"
        if rng.random() < 0.01:
            entry["on"] = False
        entries.append(entry)
    header = f"Synthetic plant: {actions} actions, {servers} server classes, seed {seed}."
    return to_toml(tree, server_list, entries, header)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic plant (TOML) to stdout")
    parser.add_argument("--actions", type=int, default=20000)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tree", default="BENCH")
    args = parser.parse_args(argv)
    sys.stdout.write(synthetic(args.actions, args.servers, args.seed, args.tree.upper()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
