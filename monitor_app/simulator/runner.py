"""Starting and stopping a simulated plant in one process: the dispatcher,
any set of servers, the demo cycle. The management command and the tests
both use this, so what the tests drive is what ``simulate_plant`` runs."""

from __future__ import annotations

import logging
import threading

from monitor_app import protocol
from monitor_app.simulator.cycle import Cycle
from monitor_app.simulator.dispatcher import Dispatcher
from monitor_app.simulator.plant import Plant
from monitor_app.simulator.runtime import SimConfig, start_thread
from monitor_app.simulator.server import ServerHost

log = logging.getLogger("monitor_app.simulator")


def parse_server_list(spec: str, plant: Plant) -> list[tuple[str, str]]:
    """``CLASS[:ID],...`` to ``(ident, id)`` pairs; a bare CLASS means all
    the ids the plant gives it (``1`` if it gives none)."""
    result: list[tuple[str, str]] = []
    for part in (s.strip() for s in spec.split(",")):
        if not part:
            continue
        ident, _, server_id = part.partition(":")
        if ident not in plant.servers:
            raise ValueError(f"server class {ident!r} is not in the plant")
        if server_id:
            if not protocol.SERVER_ID_RE.fullmatch(server_id):
                raise ValueError(f"server id {server_id!r} of {ident} is not a number")
            ids: tuple[str, ...] = (server_id,)
        else:
            ids = plant.servers[ident].ids or ("1",)
        for each in ids:
            if (ident, each) not in result:
                result.append((ident, each))
    return result


def default_servers(plant: Plant) -> list[tuple[str, str]]:
    """Every id of every class the plant starts by itself."""
    return [
        (ident, server_id)
        for ident, server_class in plant.servers.items()
        if server_class.autostart
        for server_id in server_class.ids
    ]


class Simulation:
    """One process's share of the plant; ``finished`` is set when there is
    nothing left to run (stopped, dispatcher quit, every server quit)."""

    def __init__(
        self,
        plant: Plant,
        config: SimConfig,
        *,
        dispatcher: bool = True,
        servers: list[tuple[str, str]] | None = None,
        cycle: bool = False,
        cycle_tree: str | None = None,
        first_shot: int = 0,
    ) -> None:
        self.plant = plant
        self.config = config
        self.finished = threading.Event()
        self.dispatcher = Dispatcher(plant, config) if dispatcher else None
        self.host = (
            ServerHost(plant, config, servers, on_empty=self._servers_gone) if servers else None
        )
        self.cycle = Cycle(plant, config, cycle_tree, first_shot) if cycle else None
        self._servers_left = bool(servers)

    def start(self) -> Simulation:
        if self.dispatcher is not None:
            self.dispatcher.start()
            start_thread(self._watch_dispatcher, "dispatcher quit watch")
        if self.host is not None:
            self.host.start()
        if self.cycle is not None:
            start_thread(self.cycle.run, "cycle")
        return self

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Until every part listens, so a command sent now is not lost."""
        parts = [x.ready for x in (self.dispatcher, self.host) if x is not None]
        return all(event.wait(timeout) for event in parts)

    def _watch_dispatcher(self) -> None:
        assert self.dispatcher is not None
        self.dispatcher.stop_event.wait()
        if not self._servers_left:
            self.finished.set()

    def _servers_gone(self) -> None:
        self._servers_left = False
        log.info("every server of this process quit")
        if self.dispatcher is None or self.dispatcher.stop_event.is_set():
            self.finished.set()

    def stop(self) -> None:
        """Clean stop: the cycle, then the servers (writing OFF), then the
        dispatcher."""
        if self.cycle is not None:
            self.cycle.stop_event.set()
        if self.host is not None:
            self.host.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.finished.set()

    def __enter__(self) -> Simulation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
