"""The simulated dispatcher: what the genuine ``action_dispatcher.py`` does,
as PROTOCOL.md and the recorded run show it, quirks included.

It is event driven: every command, completion and watchdog finding is
handled under one lock, which makes the message order deterministic where
the genuine one races (two END_PHASE at the end of a phase, one when nothing
happens to be pending, none after ``do_phase`` without tables).
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import dataclass, field

from monitor_app import protocol as p
from monitor_app.redis_client import REDIS_ERRORS, sync_client, text
from monitor_app.simulator.plant import (
    Action,
    Plant,
    condition_depth,
    condition_holds,
    condition_paths,
)
from monitor_app.simulator.runtime import (
    WATCHDOG_S,
    Backoff,
    RedisRestarts,
    SimConfig,
    start_thread,
    subscription_loop,
)

log = logging.getLogger("monitor_app.simulator.dispatcher")


@dataclass
class Tables:
    """The dispatch tables of one pulse, as build_tables leaves them."""

    tree: str
    shot: str
    #: phase -> ident -> sequence number -> actions (tree order)
    seq: dict[str, dict[str, dict[int, list[Action]]]] = field(default_factory=dict)
    #: path of an operand -> dependent actions naming it
    affected: dict[str, list[Action]] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)  # completion received
    idents: list[str] = field(default_factory=list)


@dataclass
class Sequence:
    tables: Tables
    phase: str
    end: int
    current: dict[str, int]
    active: bool = True


class Dispatcher:
    """Commands in, work items and monitor messages out."""

    def __init__(self, plant: Plant, config: SimConfig) -> None:
        self.plant = plant
        self.config = config
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        self.tables: dict[tuple[str, str], Tables] = {}
        self.sequence: Sequence | None = None
        self.pending_seq: dict[str, list[str]] = {}
        self.pending_dep: dict[str, list[str]] = {}
        self.curr_phase = ""
        self.watch_tables: Tables | None = None
        self.watchdog_alive = False
        self.ready = threading.Event()  # subscribed: commands are heard
        self.restarts = RedisRestarts("dispatcher")
        self.redis_epoch = 0  # Redis restarts noticed so far
        self._threads: list[threading.Thread] = []

    # -- running -----------------------------------------------------------------

    def start(self) -> None:
        self._threads.append(
            start_thread(
                lambda: subscription_loop(
                    [p.DISPATCHER_COMMANDS, p.DISPATCHER_PUBSUB],
                    self.handle_message,
                    self.stop_event,
                    "dispatcher",
                    self._subscribed,
                ),
                "dispatcher listener",
            )
        )
        self._threads.append(start_thread(self._watchdog, "dispatcher watchdog"))

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=2)

    def _subscribed(self) -> None:
        self.check_redis_restart()  # the first call notes which Redis this is
        self.ready.set()

    def check_redis_restart(self) -> bool:
        """Before anything else: a Redis that restarted (perhaps empty) lost
        the work items still queued, so the running sequence would wait for
        ever and every later do_phase would find "Sequence already in
        progress". Abandon it, as a freshly started dispatcher has none; the
        tables stay, so heartbeats go on for their server classes."""
        try:
            restarted = self.restarts.check()
        except REDIS_ERRORS:
            return False
        if not restarted:
            return False
        with self.lock:
            self.redis_epoch += 1
            sequence = self.sequence
            if sequence is not None and sequence.active:
                sequence.active = False
                log.warning(
                    "Redis restarted: the sequence of %s %s %s is abandoned",
                    sequence.tables.tree,
                    sequence.tables.shot,
                    sequence.phase,
                )
            for table in (self.pending_seq, self.pending_dep):
                for paths in table.values():
                    paths.clear()
        return True

    def handle_message(self, channel: str, data: str) -> None:
        self.check_redis_restart()
        if channel == p.DISPATCHER_COMMANDS:
            self.handle_command(data)
        elif channel == p.DISPATCHER_PUBSUB:
            completion = p.parse_completion(data)
            if completion is None:
                log.warning("invalid completion message %r", data[:200])
            else:
                self.on_completion(completion)

    def handle_command(self, data: str) -> None:
        command = p.parse_dispatcher_command(data)
        if command is None:
            log.warning("unknown or malformed command %r", data)
            return
        verb, args = command.verb, command.args
        log.info("command %s", data)
        with self.lock:
            if verb == p.CMD_QUIT:
                log.info("quit: the dispatcher exits")
                self.stop_event.set()
            elif verb == p.CMD_ABORT:
                self.abort()
            elif verb == p.CMD_ABORT_PENDING:
                self.abort_pending()
            elif verb == p.CMD_PRINT_PENDING:
                log.info("pending sequential %s, dependent %s", self.pending_seq, self.pending_dep)
            elif verb == p.CMD_CREATE_PULSE:
                self.create_pulse(*args)
            elif verb == p.CMD_BUILD_TABLES:
                self.build_tables(*args)
            elif verb == p.CMD_DO_PHASE:
                self.do_phase(*args)
            elif verb == p.CMD_DO_SEQUENCE:
                tree, shot, phase, start, end = args
                try:
                    first, last = int(start), int(end)
                except ValueError:
                    log.warning("invalid command %r", data)
                    return
                self.do_sequence(tree, shot, phase, first, last)

    # -- commands -------------------------------------------------------------------

    def create_pulse(self, tree: str, shot: str) -> None:
        """Reset the pulse's keys and set DISPATCH_INFO, even when the tree
        does not exist (nothing in Redis tells a failed create pulse)."""
        if not shot.isdigit():
            log.warning("invalid shot %r", shot)
            return
        client = sync_client()
        doomed = [
            p.action_status_key(tree, shot),
            p.action_phase_key(tree, shot),
            p.action_server_key(tree, shot),
        ]
        doomed += [text(k) or "" for k in client.scan_iter(match=p.action_info_pattern(tree, shot))]
        pipe = client.pipeline(transaction=False)
        pipe.delete(*doomed)
        pipe.hset(p.DISPATCH_INFO, p.DISPATCH_INFO_TREE, tree)
        pipe.hset(p.DISPATCH_INFO, p.DISPATCH_INFO_SHOT, str(int(shot)))
        pipe.execute()
        if self.plant.tree(tree) is None:
            log.warning("create pulse: no tree %s in the plant", tree)

    def build_tables(self, tree: str, shot: str) -> None:
        model = self.plant.tree(tree)
        if model is None or not shot.isdigit():
            log.warning("Cannot open tree %s shot %s", tree, shot)
            return
        tables = Tables(tree, shot)
        info: dict[str, dict[str, str]] = {}
        status: dict[str, str] = {}
        phases: dict[str, str] = {}
        servers: dict[str, str] = {}
        for action in model.actions:
            if action.condition is not None and self.config.has("nested-vanish"):
                if condition_depth(action.condition) > 1:
                    log.warning("Error collecting action %s (nested condition)", action.path)
                    continue
            if action.server not in tables.idents:
                tables.idents.append(action.server)
            status[action.path] = p.STATUS_BUILT
            servers[action.path] = action.server
            if not action.on:
                info.setdefault(action.server, {})[action.path] = p.STATE_OFF
                continue
            by_ident = tables.seq.setdefault(action.phase, {}).setdefault(action.server, {})
            if action.sequence is not None:
                by_ident.setdefault(action.sequence, []).append(action)
            else:
                for operand in condition_paths(action.condition):
                    tables.affected.setdefault(operand, []).append(action)
            info.setdefault(action.server, {})[action.path] = p.STATE_NOT_DISPATCHED
            phases[action.path] = action.phase
        client = sync_client()
        pipe = client.pipeline(transaction=False)
        for ident, mapping in info.items():
            pipe.hset(p.action_info_key(tree, shot, ident), mapping=mapping)
        if phases:
            pipe.hset(p.action_phase_key(tree, shot), mapping=phases)
        if servers:
            pipe.hset(p.action_server_key(tree, shot), mapping=servers)
            pipe.hset(p.action_status_key(tree, shot), mapping=status)
        pipe.set(p.LAST_BUILD_TABLE, p.last_build_table_value(tree, shot))
        pipe.execute()
        self.tables[(tree, shot)] = tables
        self.watch_tables = tables
        log.info("tables built for %s %s: %d actions", tree, shot, len(status))

    def do_phase(self, tree: str, shot: str, typed_phase: str) -> None:
        phase = typed_phase.upper()
        client = sync_client()
        pipe = client.pipeline(transaction=False)
        pipe.hset(p.CURRENT_PHASE, tree, typed_phase)
        pipe.hset(p.DISPATCH_INFO, p.DISPATCH_INFO_PHASE, phase)
        pipe.execute()
        tables = self._tables_to_run(tree, shot)
        if tables is None:
            return
        self.curr_phase = phase
        if phase not in tables.seq:
            log.warning("phase %s is not in the tables of %s %s", phase, tree, shot)
            client.publish(p.MONITOR_PUBSUB, p.end_phase_message(tree, shot, phase))
            return
        numbers = [n for by_seq in tables.seq[phase].values() for n in by_seq]
        self._start_sequence(tables, phase, min(numbers, default=1), max(numbers, default=0))

    def _tables_to_run(self, tree: str, shot: str) -> Tables | None:
        """The pulse's tables when a sequence may start now; else ``None``,
        said only on the dispatcher's terminal, as upstream does."""
        tables = self.tables.get((tree, shot))
        if tables is None:
            log.warning("Dispatch Table missing for %s %s", tree, shot)
            return None
        if self.sequence is not None and self.sequence.active:
            log.warning("Sequence already in progress")
            return None
        return tables

    def do_sequence(self, tree: str, shot: str, phase: str, start: int, end: int) -> None:
        """Like do_phase restricted to START..END; it leaves CURRENT_PHASE
        alone and its END_PHASE names the previous do_phase's phase."""
        tables = self._tables_to_run(tree, shot)
        if tables is None:
            return
        phase = phase.upper()
        if phase not in tables.seq:
            log.warning("phase %s is not in the tables of %s %s", phase, tree, shot)
            return
        self._start_sequence(tables, phase, start, end)

    def abort(self) -> None:
        """Abandon the running sequence; actions already given out go on."""
        sequence = self.sequence
        if sequence is None or not sequence.active:
            log.info("abort: no sequence running")
            return
        sequence.active = False
        log.info("Sequence aborted")
        self._end_phase(sequence.tables)

    def abort_pending(self) -> None:
        """Mark every pending action Aborted and abandon the sequence."""
        sequence = self.sequence
        pending = [
            (ident, path)
            for table in (self.pending_seq, self.pending_dep)
            for ident, paths in table.items()
            for path in paths
        ]
        if not pending and (sequence is None or not sequence.active):
            return
        tables = sequence.tables if sequence else self.watch_tables
        if pending and tables is not None:
            sync_client().hset(
                p.action_status_key(tables.tree, tables.shot),
                mapping={path: p.STATUS_ABORTED for _, path in pending},
            )
        for table in (self.pending_seq, self.pending_dep):
            for paths in table.values():
                paths.clear()
        if sequence is not None and sequence.active:
            sequence.active = False
            self._end_phase(sequence.tables)

    # -- sequencing ----------------------------------------------------------------------

    def _start_sequence(self, tables: Tables, phase: str, start: int, end: int) -> None:
        idents = list(tables.seq[phase])
        self.pending_seq = {ident: [] for ident in idents}
        self.pending_dep = {}
        self.sequence = Sequence(tables, phase, end, {ident: start - 1 for ident in idents})
        self._advance()

    def _server_exists(self, ident: str) -> bool:
        values = sync_client().hvals(p.server_active_key(ident))
        return any(v == p.SERVER_ON.encode() for v in values)

    def _advance(self) -> None:
        """One sequence step: every class with nothing pending gets its next
        sequence number; a class with no live server has that number marked
        SERVER_OFF, which does not count as work, so it advances only one
        number per step (its later numbers may never be reached)."""
        sequence = self.sequence
        if sequence is None or not sequence.active:
            return
        tables = sequence.tables
        tree, shot = tables.tree, tables.shot
        terminated = True
        client = sync_client()
        for ident, by_seq in tables.seq[sequence.phase].items():
            if self.pending_seq.get(ident):
                terminated = False
                continue
            numbers = sorted(by_seq)
            index = bisect.bisect_right(numbers, sequence.current[ident])
            if index >= len(numbers) or numbers[index] > sequence.end:
                sequence.current[ident] = sequence.end
                continue
            number = numbers[index]
            sequence.current[ident] = number
            exists = self._server_exists(ident)
            pipe = client.pipeline(transaction=False)
            for action in by_seq[number]:
                if exists:
                    self.pending_seq.setdefault(ident, []).append(action.path)
                    self._push(pipe, tables, action, p.STATUS_RUNNING)
                else:
                    log.info("SERVER MISSING for %s", action.path)
                    self._server_off(pipe, tables, action)
            if exists:
                terminated = False
                pipe.publish(p.server_channel(ident), p.DO)
            pipe.execute()
        if terminated:
            sequence.active = False
            log.info("sequence of %s %s %s terminated", tree, shot, sequence.phase)
            self._end_phase(tables)

    def _push(self, pipe, tables: Tables, action: Action, status: str) -> None:
        timeout = action.timeout if self.config.has("send-timeouts") else 0
        pipe.lpush(
            p.server_todo_key(action.server),
            p.work_item(
                tables.tree,
                tables.shot,
                action.path,
                nid=action.nid,
                timeout=timeout,
                notify=None,
            ),
        )
        pipe.hset(
            p.action_info_key(tables.tree, tables.shot, action.server),
            action.path,
            p.STATE_DISPATCHED,
        )
        pipe.hset(p.action_status_key(tables.tree, tables.shot), action.path, status)

    @staticmethod
    def _server_off(pipe, tables: Tables, action: Action) -> None:
        pipe.hset(
            p.action_info_key(tables.tree, tables.shot, action.server),
            action.path,
            p.STATE_SERVER_OFF,
        )
        pipe.hset(p.action_status_key(tables.tree, tables.shot), action.path, p.STATUS_NOT_EXECUTED)

    def _end_phase(self, tables: Tables) -> None:
        sync_client().publish(
            p.MONITOR_PUBSUB, p.end_phase_message(tables.tree, tables.shot, self.curr_phase)
        )

    def _nothing_pending(self) -> bool:
        return not any(self.pending_seq.values()) and not any(self.pending_dep.values())

    # -- completions ---------------------------------------------------------------------

    def on_completion(self, done: p.Completion) -> None:
        with self.lock:
            if self.plant.action(done.tree, done.path) is None:
                log.warning("Cannot find node %s in %s", done.path, done.tree)
                return
            client = sync_client()
            pipe = client.pipeline(transaction=False)
            pipe.hset(p.action_status_key(done.tree, done.shot), done.path, done.status)
            pipe.hset(p.action_log_key(done.tree, done.shot), done.path, done.log)
            pipe.execute()
            tables = self.tables.get((done.tree, done.shot))
            if tables is not None:
                tables.done.add(done.path)
            if done.ident not in self.pending_seq:
                log.info("completion of %s outside the current sequence", done.path)
                return
            seq_paths = self.pending_seq[done.ident]
            if done.path in seq_paths:
                seq_paths.remove(done.path)
            dep_paths = self.pending_dep.get(done.ident, [])
            if done.path in dep_paths:
                dep_paths.remove(done.path)
            if tables is not None:
                self._fire_dependents(tables, done.path)
            if self._nothing_pending():
                self._end_phase(tables or Tables(done.tree, done.shot))
            if not seq_paths:
                self._advance()

    def _fire_dependents(self, tables: Tables, operand: str) -> None:
        """Every dependent whose condition holds now is dispatched, again if
        it ran already: an OR fires once per finished operand."""
        client = sync_client()
        for action in tables.affected.get(operand, []):
            if action.condition is None or not condition_holds(action.condition, tables.done):
                continue
            pipe = client.pipeline(transaction=False)
            if self._server_exists(action.server):
                self._push(pipe, tables, action, p.STATUS_BUILT)
                self.pending_dep.setdefault(action.server, []).append(action.path)
                pipe.publish(p.server_channel(action.server), p.DO)
            else:
                log.info("SERVER MISSING for %s", action.path)
                self._server_off(pipe, tables, action)
            pipe.execute()

    # -- watchdog -------------------------------------------------------------------------

    def _server_ids(self, ident: str) -> list[str]:
        ids = [text(k) or "" for k in sync_client().hkeys(p.server_active_key(ident))]
        return sorted((i for i in ids if i.isdigit()), key=int)

    def _watchdog(self) -> None:
        """Every ~5 s: judge each server by whether its heartbeat counter
        advanced since the last HEARTBEAT, then send the next ones. Rounds
        start only once tables were built (the ident list is empty before).
        After a Redis restart one round only sends: the counters sent before
        are void and the servers need a moment to write theirs again, and
        judging them meanwhile would flip them OFF and crash their actions."""
        self.watchdog_alive = True
        was_alive: dict[str, bool] = {}
        sent: dict[tuple[str, str], int] = {}
        backoff = Backoff("dispatcher watchdog")
        period = self.config.seconds(WATCHDOG_S)
        epoch = self.redis_epoch
        try:
            while not self.stop_event.is_set():
                idents = self._idents()  # one list for both halves of a round
                self.check_redis_restart()
                grace = epoch != self.redis_epoch
                if grace:
                    epoch = self.redis_epoch
                    was_alive.clear()
                try:
                    sent = self._watchdog_send(idents, was_alive, judge=not grace)
                    backoff.ok()
                except REDIS_ERRORS as exc:
                    self.stop_event.wait(backoff.failed(exc))
                    continue
                if self.stop_event.wait(period):
                    return
                self.check_redis_restart()
                if grace or epoch != self.redis_epoch:
                    continue
                try:
                    self._watchdog_check(idents, sent, was_alive)
                except REDIS_ERRORS as exc:
                    backoff.failed(exc)
        except KeyError as exc:  # only with the watchdog-dies fault
            log.error("watchdog thread died: KeyError %s", exc)
        finally:
            self.watchdog_alive = False

    def _idents(self) -> list[str]:
        tables = self.watch_tables
        return list(tables.idents) if tables else []

    def _watchdog_send(
        self, idents: list[str], was_alive: dict[str, bool], judge: bool = True
    ) -> dict[tuple[str, str], int]:
        client = sync_client()
        sent: dict[tuple[str, str], int] = {}
        for ident in idents:
            ids = self._server_ids(ident) or ["1"]
            for server_id in ids:
                counter = client.hget(p.server_heartbeat_key(ident), server_id)
                if counter is None:  # never started
                    if judge:
                        self._mark_dead(ident, server_id, was_alive)
                    continue
                sent[(ident, server_id)] = int(counter)
                client.publish(p.server_channel(ident), p.heartbeat_message(server_id))
        return sent

    def _watchdog_check(
        self, idents: list[str], sent: dict[tuple[str, str], int], was_alive: dict[str, bool]
    ) -> None:
        client = sync_client()
        for ident in idents:
            for server_id in self._server_ids(ident):
                counter = client.hget(p.server_heartbeat_key(ident), server_id)
                if counter is None:
                    self._mark_dead(ident, server_id, was_alive)
                    continue
                if (ident, server_id) not in sent:
                    if self.config.has("watchdog-dies"):
                        raise KeyError(f"{ident}:{server_id}")
                    continue  # a new id: judged from the next round on
                if sent[(ident, server_id)] != int(counter) - 1:
                    self._mark_dead(ident, server_id, was_alive)
                else:
                    was_alive[f"{ident}:{server_id}"] = True
                    client.hset(p.server_active_key(ident), server_id, p.SERVER_ON)

    def _mark_dead(self, ident: str, server_id: str, was_alive: dict[str, bool]) -> None:
        sync_client().hset(p.server_active_key(ident), server_id, p.SERVER_OFF)
        key = f"{ident}:{server_id}"
        if was_alive.get(key, True):
            log.warning("watchdog: server %s not responding", key)
            self.remove_dead_pending(ident)
        was_alive[key] = False

    def remove_dead_pending(self, ident: str) -> None:
        """Pending actions of a dead server's class end DONE + ServerCrashed,
        silently, whichever id of the class was running them."""
        with self.lock:
            sequence = self.sequence
            tables = sequence.tables if sequence else self.watch_tables
            if tables is None:
                return
            client = sync_client()
            info_key = p.action_info_key(tables.tree, tables.shot, ident)
            crashed = False
            for table, states in (
                (self.pending_seq, (p.STATE_DISPATCHED, p.STATE_DOING)),
                (self.pending_dep, (p.STATE_DOING,)),
            ):
                paths = table.get(ident, [])
                for path in list(paths):
                    state = text(client.hget(info_key, path))
                    if state in states:
                        log.warning("removing %s after a server crash", path)
                        paths.remove(path)
                        client.hset(info_key, path, p.STATE_DONE)
                        client.hset(
                            p.action_status_key(tables.tree, tables.shot),
                            path,
                            p.STATUS_CRASHED,
                        )
                        crashed = True
            if crashed and not self.pending_seq.get(ident):
                self._advance()
