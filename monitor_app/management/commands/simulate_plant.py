"""``manage.py simulate_plant``: run a simulated dispatcher and its servers
against ``settings.REDIS_URL``, so the console has a live system to watch."""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitor_app.redis_client import redis_location
from monitor_app.simulator.plant import PlantError, load_plant
from monitor_app.simulator.runner import Simulation, default_servers, parse_server_list
from monitor_app.simulator.runtime import FAULTS, SimConfig


class Command(BaseCommand):
    help = (
        "Run a simulated MDSplus Redis dispatcher and action servers from a plant file "
        "(TOML, or the demo_tree.json of the recorded run)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--plant", required=True, help="plant file (.toml or .json)")
        who = parser.add_mutually_exclusive_group()
        who.add_argument(
            "--dispatcher-only", action="store_true", help="run the dispatcher, no server"
        )
        who.add_argument(
            "--no-dispatcher",
            action="store_true",
            help="run every server the plant starts by itself, no dispatcher (so that "
            "the dispatcher can run, quit and restart in a process of its own)",
        )
        who.add_argument(
            "--servers",
            metavar="CLASS[:ID],...",
            help="run only these servers (and no dispatcher)",
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            choices=sorted(FAULTS),
            help="reproduce an upstream crash (repeatable): "
            + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()),
        )
        parser.add_argument(
            "--time-scale",
            type=float,
            default=1.0,
            help="multiply every duration and period (0.1 = ten times faster)",
        )
        parser.add_argument(
            "--cycle",
            action="store_true",
            help="keep the plant moving: create pulse, build tables, each phase, next shot",
        )
        parser.add_argument("--tree", help="tree the cycle drives (default: the first)")
        parser.add_argument("--first-shot", type=int, default=0, help="first shot of the cycle")

    def handle(self, *args: object, **options: object) -> None:
        logging.getLogger("monitor_app.simulator").setLevel(
            logging.DEBUG if int(options["verbosity"]) > 2 else logging.INFO
        )
        try:
            plant = load_plant(str(options["plant"]))
            config = SimConfig(float(options["time_scale"]), frozenset(options["fault"]))
            if options["servers"]:
                servers = parse_server_list(str(options["servers"]), plant)
                dispatcher = False
            elif options["dispatcher_only"]:
                servers, dispatcher = [], True
            elif options["no_dispatcher"]:
                servers, dispatcher = default_servers(plant), False
            else:
                servers, dispatcher = default_servers(plant), True
        except (PlantError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        tree = options["tree"]
        if tree and str(tree).upper() not in plant.trees:
            raise CommandError(f"no tree {tree} in the plant")
        simulation = Simulation(
            plant,
            config,
            dispatcher=dispatcher,
            servers=servers,
            cycle=bool(options["cycle"]),
            cycle_tree=str(tree).upper() if tree else None,
            first_shot=int(options["first_shot"]),
        )
        stop = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        what = ["dispatcher"] if dispatcher else []
        what += [f"{ident}:{server_id}" for ident, server_id in servers]
        self.stdout.write(
            f"simulate_plant: {plant.action_count()} actions, running "
            f"{', '.join(what) or 'nothing'} on {redis_location(settings.REDIS_URL)}"
            + (" with the cycle" if options["cycle"] else "")
        )
        simulation.start()
        try:
            while not stop.is_set() and not simulation.finished.is_set():
                stop.wait(0.5)
        finally:
            simulation.stop()
        self.stdout.write("simulate_plant: stopped")
