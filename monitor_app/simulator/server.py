"""Simulated action servers, as the genuine ``action_server.py`` behaves.

A server accepts every work item it pops (DOING message, ``DOING`` state,
``None`` status, its DOING count up), then runs them one at a time. An
action's "code" runs in its own thread and prints into the server's current
output capture, so an aborted action that keeps running leaves its later
lines in the next action's log, as upstream does. Several servers share one
listener and one ON refresher per process, so a plant of hundreds of server
classes does not need hundreds of connections.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from monitor_app import protocol as p
from monitor_app.redis_client import REDIS_ERRORS, sync_client
from monitor_app.simulator.plant import Action, Plant
from monitor_app.simulator.runtime import (
    ABORT_POLL_S,
    ON_REFRESH_S,
    Backoff,
    SimConfig,
    log_date,
    start_thread,
    subscription_loop,
)

log = logging.getLogger("monitor_app.simulator.server")

MAX_POPS_PER_DO = 10_000


@dataclass
class Job:
    tree: str
    shot: str
    path: str
    nid: str
    timeout: int
    notify: bool


def ascii_only(value: str) -> str:
    """Upstream drops every non-ASCII character from the log it reports."""
    return "".join(ch for ch in value if ord(ch) <= 127)


class _Body(threading.Thread):
    """The action's own code: prints its lines over its duration into the
    server's *current* capture, and cannot be stopped by an abort."""

    def __init__(self, server: ActionServer, action: Action | None, path: str) -> None:
        super().__init__(name=f"body {path}", daemon=True)
        self.server = server
        self.action = action
        self.path = path
        self.finished = threading.Event()
        self.status = p.STATUS_FAILURE

    def run(self) -> None:
        server = self.server
        try:
            if self.action is None:
                # The genuine server fails on a node it cannot find; its
                # traceback print fails too, so the log says nothing.
                self.status = p.STATUS_FAILURE
                return
            duration = server.config.seconds(self.action.duration)
            lines = self.action.output
            started = time.monotonic()
            for index, line in enumerate(lines, 1):
                due = started + duration * index / (len(lines) + 1)
                if server.halted.wait(max(0.0, due - time.monotonic())):
                    return
                server.print_line(line)
            if server.halted.wait(max(0.0, started + duration - time.monotonic())):
                return
            self.status = p.STATUS_SUCCESS if self.action.result == "success" else p.STATUS_FAILURE
        finally:
            if not server.halted.is_set():
                server.print_line(f"{log_date()} Done {self.path}")
            self.finished.set()


class ActionServer:
    """One server id of one class: its queue of accepted jobs and its worker."""

    def __init__(self, host: ServerHost, ident: str, server_id: str, address: str) -> None:
        self.host = host
        self.plant = host.plant
        self.config = host.config
        self.ident = ident
        self.server_id = server_id
        self.address = address
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.halted = threading.Event()  # set when the server stops or dies
        self.stopped_flag = False  # STOP+ID: recorded, without effect (as upstream)
        self._capture: list[str] = []
        self._capture_lock = threading.Lock()
        self._accepted: list[Job] = []
        self._restart_requested = threading.Event()
        self.worker: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"{self.ident}:{self.server_id}"

    # -- life cycle ------------------------------------------------------------

    def register(self) -> None:
        """What a starting server writes (heartbeat and doing counters reset)."""
        client = sync_client()
        pipe = client.pipeline(transaction=False)
        pipe.hset(p.server_heartbeat_key(self.ident), self.server_id, "0")
        pipe.hset(p.server_doing_key(self.ident), self.server_id, "0")
        pipe.hset(p.server_ip_key(self.ident), self.server_id, self.address)
        pipe.hset(p.server_active_key(self.ident), self.server_id, p.SERVER_ON)
        pipe.execute()
        self.worker = start_thread(self._work, f"worker {self.name}")

    def reregister(self, pipe) -> None:
        """Queue what a freshly started server would have written, for keys
        that are gone (a Redis restarted empty): without a heartbeat counter
        the watchdog never sends HEARTBEAT and marks the server OFF for ever.
        HSETNX leaves the keys of a Redis that kept its data alone."""
        with self._capture_lock:
            doing = len(self._accepted)
        pipe.hsetnx(p.server_heartbeat_key(self.ident), self.server_id, "0")
        pipe.hsetnx(p.server_doing_key(self.ident), self.server_id, str(doing))
        pipe.hsetnx(p.server_ip_key(self.ident), self.server_id, self.address)

    def halt(self) -> None:
        """Stop at once; the running action is abandoned (as ``os._exit``)."""
        self.halted.set()
        self.jobs.put(None)

    def write_off(self) -> None:
        try:
            sync_client().hset(p.server_active_key(self.ident), self.server_id, p.SERVER_OFF)
        except REDIS_ERRORS as exc:
            log.warning("%s: could not write OFF: %s", self.name, exc)

    # -- messages ----------------------------------------------------------------

    def handle(self, message: p.ServerMessage) -> None:
        verb = message.verb
        if verb == p.DO:
            self.handle_do()
        elif verb == p.ABORT:
            sync_client().hset(p.abort_requests_key(self.ident), message.argument, "1")
        elif message.argument != self.server_id:
            return
        elif verb == p.HEARTBEAT:
            sync_client().hincrby(p.server_heartbeat_key(self.ident), self.server_id, 1)
        elif verb == p.STOP:
            log.info("%s: STOP received (the genuine server goes on working)", self.name)
            self.stopped_flag = True
        elif verb == p.RESTART:
            self.stopped_flag = False
            self._restart()
        elif verb == p.QUIT:
            log.info("%s: QUIT received", self.name)
            self.host.quit_server(self)

    def handle_do(self) -> None:
        """Pop and accept every queued item of the class."""
        for _ in range(MAX_POPS_PER_DO):
            if not self.pop_one():
                return

    @property
    def busy(self) -> bool:
        with self._capture_lock:
            return bool(self._accepted)

    def pop_one(self) -> bool:
        """Pop and accept one work item; ``False`` when the queue is empty."""
        if self.halted.is_set():
            return False
        raw = sync_client().lpop(p.server_todo_key(self.ident))
        if raw is None:
            return False
        item = raw.decode("utf-8", errors="replace")
        parsed = p.parse_work_item(item)
        if parsed is None:
            log.warning("%s: malformed work item %r", self.name, item)
            return True
        tree, shot, path, nid, timeout, notify = parsed
        if nid == "0":
            action = self.plant.action(tree, path)
            nid = str(action.nid) if action else "0"
        try:
            seconds = int(timeout)
        except ValueError:
            seconds = 0
        self._accept(Job(tree, shot, path, nid, seconds, notify == "1"))
        return True

    def _accept(self, job: Job) -> None:
        pipe = sync_client().pipeline(transaction=False)
        pipe.hincrby(p.server_doing_key(self.ident), self.server_id, 1)
        pipe.hset(p.abort_requests_key(self.ident), job.path, "0")
        pipe.hset(p.action_info_key(job.tree, job.shot, self.ident), job.path, p.STATE_DOING)
        pipe.publish(
            p.MONITOR_PUBSUB,
            p.doing_message(job.tree, job.shot, self.ident, self.server_id, job.path, job.nid),
        )
        pipe.hset(p.action_status_key(job.tree, job.shot), job.path, p.STATUS_RUNNING)
        pipe.execute()
        with self._capture_lock:
            self._accepted.append(job)
        self.jobs.put(job)

    def _restart(self) -> None:
        """RESTART+ID: abort what this server has accepted, then go on."""
        with self._capture_lock:
            paths = [job.path for job in self._accepted]
        if paths:
            sync_client().hset(p.abort_requests_key(self.ident), mapping=dict.fromkeys(paths, "1"))

    # -- output capture ------------------------------------------------------------

    def print_line(self, line: str) -> None:
        with self._capture_lock:
            self._capture.append(line)

    def _new_capture(self) -> list[str]:
        with self._capture_lock:
            self._capture = []
            return self._capture

    # -- execution -------------------------------------------------------------------

    def _work(self) -> None:
        backoff = Backoff(f"server {self.name}")
        while not self.halted.is_set():
            job = self.jobs.get()
            if job is None or self.halted.is_set():
                return
            while not self.halted.is_set():
                try:
                    self._run(job)
                    backoff.ok()
                    break
                except REDIS_ERRORS as exc:
                    self.halted.wait(backoff.failed(exc))
            with self._capture_lock:
                if job in self._accepted:
                    self._accepted.remove(job)

    def _run(self, job: Job) -> None:
        client = sync_client()
        capture = self._new_capture()
        self.print_line(f"{log_date()}  Doing {job.path}")
        action = self.plant.action(job.tree, job.path)
        body = _Body(self, action, job.path)
        body.start()
        poll = self.config.seconds(ABORT_POLL_S)
        deadline = time.monotonic() + self.config.seconds(job.timeout) if job.timeout > 0 else None
        abort_key = p.abort_requests_key(self.ident)
        status = None
        while status is None:
            if body.finished.wait(poll):
                status = body.status
                break
            if self.halted.is_set():
                return
            if client.hget(abort_key, job.path) == b"1":
                client.hset(p.action_status_key(job.tree, job.shot), job.path, p.STATUS_ABORTED)
                status = p.STATUS_ABORTED
            elif deadline is not None and time.monotonic() > deadline:
                status = p.STATUS_ABORTED  # no status from the action: upstream says Aborted
        if self.halted.is_set():
            return
        with self._capture_lock:
            log_text = "\n".join(capture) + "\n"
        pipe = client.pipeline(transaction=False)
        pipe.hincrby(p.server_doing_key(self.ident), self.server_id, -1)
        if job.notify:
            pipe.publish(
                p.DISPATCHER_PUBSUB,
                p.completion_message(
                    job.tree, job.shot, self.ident, job.path, status, ascii_only(log_text)
                ),
            )
        else:
            pipe.hset(p.action_status_key(job.tree, job.shot), job.path, status)
        pipe.hset(abort_key, job.path, "0")
        pipe.hset(p.action_info_key(job.tree, job.shot, self.ident), job.path, p.STATE_DONE)
        pipe.publish(
            p.MONITOR_PUBSUB,
            p.done_message(
                job.tree, job.shot, self.ident, self.server_id, job.path, job.nid, status
            ),
        )
        pipe.execute()


class ServerHost:
    """All simulated servers of one process: one listener for their channels,
    one thread rewriting ``ON`` every second (and the other keys of a server
    when a restarted Redis lost them), one worker per server."""

    def __init__(
        self,
        plant: Plant,
        config: SimConfig,
        servers: list[tuple[str, str]],
        on_empty: Callable[[], None] | None = None,
    ) -> None:
        self.plant = plant
        self.config = config
        self.on_empty = on_empty
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self.servers: dict[tuple[str, str], ActionServer] = {}
        for ident, server_id in servers:
            address = plant.server_class(ident).address
            self.servers[(ident, server_id)] = ActionServer(self, ident, server_id, address)
        self._threads: list[threading.Thread] = []
        self.ready = threading.Event()  # subscribed: DO and the rest are heard

    def live(self) -> list[ActionServer]:
        with self._lock:
            return list(self.servers.values())

    def start(self) -> None:
        for server in self.live():
            self._register(server)
        channels = sorted({p.server_channel(ident) for ident, _ in self.servers})
        self._threads.append(
            start_thread(
                lambda: subscription_loop(
                    channels, self._dispatch, self.stop_event, "servers", self._pop_queued
                ),
                "server listener",
            )
        )
        self._threads.append(start_thread(self._refresh, "server ON refresh"))

    def _register(self, server: ActionServer) -> None:
        backoff = Backoff(f"server {server.name}")
        while not self.stop_event.is_set():
            try:
                server.register()
                log.info("server %s is ON", server.name)
                return
            except REDIS_ERRORS as exc:
                self.stop_event.wait(backoff.failed(exc))

    def _pop_queued(self) -> None:
        """After (re)subscribing: take work queued while nobody listened."""
        self.ready.set()
        for server in self.live():
            server.handle_do()

    def _dispatch(self, channel: str, data: str) -> None:
        message = p.parse_server_message(channel, data)
        if message is None:
            log.info("ignored message %r on %s", data, channel)
            return
        servers = [s for s in self.live() if s.ident == message.ident]
        if message.verb == p.DO and len(servers) > 1:
            self._share(servers)
            return
        for server in servers:
            server.handle(message)

    @staticmethod
    def _share(servers: list[ActionServer]) -> None:
        """Several ids of a class in this process race for the queue, as
        separate processes do: hand items out in turn, idle ones first."""
        order = sorted(servers, key=lambda s: s.busy)
        for _ in range(MAX_POPS_PER_DO):
            if not any([server.pop_one() for server in order]):
                return

    def _refresh(self) -> None:
        backoff = Backoff("server ON refresh")
        period = self.config.seconds(ON_REFRESH_S)
        while not self.stop_event.wait(backoff.delay or period):
            # Under the lock, so a server that quits is never rewritten ON
            # after it wrote OFF.
            with self._lock:
                if not self.servers:
                    continue
                try:
                    pipe = sync_client().pipeline(transaction=False)
                    for (ident, server_id), server in self.servers.items():
                        pipe.hset(p.server_active_key(ident), server_id, p.SERVER_ON)
                        server.reregister(pipe)
                    written = pipe.execute()
                    backoff.ok()
                except REDIS_ERRORS as exc:
                    backoff.failed(exc)
                    continue
                # per server: HSET ON, then HSETNX heartbeat, doing, IP
                if any(written[index + 1] for index in range(0, len(written), 4)):
                    log.warning("servers re-registered: Redis had lost their keys")

    def _remove(self, server: ActionServer) -> bool:
        with self._lock:
            self.servers.pop((server.ident, server.server_id), None)
            return not self.servers

    def quit_server(self, server: ActionServer) -> None:
        """QUIT+ID: write OFF and stop at once."""
        empty = self._remove(server)
        server.halt()
        server.write_off()
        if empty and self.on_empty is not None:
            self.on_empty()

    def crash_server(self, ident: str, server_id: str) -> None:
        """Die without a word, as after ``kill -9``: nothing written."""
        server = self.servers.get((ident, server_id))
        if server is not None:
            self._remove(server)
            server.halt()

    def stop(self) -> None:
        """Clean stop (Ctrl-C, SIGTERM): every server writes OFF."""
        servers = self.live()
        with self._lock:
            self.servers.clear()
        self.stop_event.set()
        for server in servers:
            server.halt()
            server.write_off()
        for thread in self._threads:
            thread.join(timeout=2)
