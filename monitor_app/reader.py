"""The one Redis reader of a console process.

It listens to every channel of the dispatcher system and polls, at the poll
interval, the hashes that change without a message (servers ON/OFF, tables
built, SERVER_OFF, heartbeat counters). It keeps the last picture in memory,
compares, and hands only what changed to the hub. Announced changes (DOING,
DONE) go out at once, not at the next poll. When Redis goes away it says so,
retries with backoff, and catches up when Redis is back."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from django.conf import settings

from monitor_app import console_keys as ck
from monitor_app import protocol as p
from monitor_app import push, relay
from monitor_app.aio import BackgroundLoop, honour_cancel
from monitor_app.header import HeaderState, header_state
from monitor_app.hub import Hub, Render
from monitor_app.redis_client import (
    REDIS_ERRORS,
    async_client,
    async_pubsub_client,
    redis_location,
    text,
)
from monitor_app.selectors import (
    Pointers,
    PulseActions,
    PulseCache,
    RedisUnavailable,
    pointers_get,
    pulses_read,
    servers_list,
)
from monitor_app.state import (
    STATE_STAGE,
    ActionRow,
    PhaseTally,
    PulseRef,
    ServerRow,
    Summary,
    summarize,
    summary_update,
)

log = logging.getLogger(__name__)

#: Announced changes that arrive within this window go out as one message.
BATCH_SECONDS = 0.02
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 2.0  # a restarted Redis is seen within 2 s; a retry costs one connect
#: The poll's reads, on a thread of their own: see ``BackgroundLoop``.
READS = BackgroundLoop("webmonitor-reads")


class PulseView:
    """The reader's copy of one pulse: rows, their summary, the phase."""

    def __init__(self, actions: PulseActions) -> None:
        self.pulse = actions.pulse
        self.rows: dict[str, ActionRow] = actions.rows
        self.current_phase = actions.current_phase
        self.summary: Summary = summarize(self.rows.values())
        self.tally = PhaseTally(self.rows.values())  # the header's progress, kept current
        self.announced: dict[str, float] = {}  # path -> when a message set it

    def set_row(self, row: ActionRow, *, announced_at: float | None = None) -> None:
        old = self.rows.get(row.path)
        summary_update(self.summary, old, row)
        self.tally.move(old, row)
        self.rows[row.path] = row
        if announced_at is not None:
            self.announced[row.path] = announced_at


class Reader:
    def __init__(
        self,
        hub: Hub,
        *,
        poll_interval: float | None = None,
        clock: Callable[[], float] = time.time,
        elect: bool = False,
        identity: str = relay.PROCESS_ID,
    ) -> None:
        self.hub = hub
        self.identity = identity
        #: Share the reading with other processes: lead only with the lock.
        self.elect = elect
        self.leading = not elect
        self.poll_interval = poll_interval or settings.WEBMONITOR_POLL_INTERVAL
        self.clock = clock
        self.location = redis_location()
        self.connected = False
        self.error = "not connected yet"
        self.pointers = Pointers()
        self.servers: dict[str, ServerRow] = {}
        self.stale: set[str] = set()
        self.pulses: dict[PulseRef, PulseView] = {}
        self._caches: dict[PulseRef, PulseCache] = {}  # last read of each, to diff
        self.heartbeat_seen: dict[str, float] = {}
        self.advanced: dict[str, tuple[str, float]] = {}
        self.message_seen: dict[str, float] = {}
        self.last_heartbeat: float | None = None
        # (pulse, phase) -> last message about one of that phase's actions:
        # activity of the phase just started must not keep the old one running.
        self.activity: dict[tuple[PulseRef, str], float] = {}
        self.tables: PulseRef | None = None
        self.tables_seen_at = self.clock()
        self.started_at = self.clock()
        self.header: HeaderState | None = None
        self.polls = 0
        self._dirty: dict[str, dict[str, str]] = {}
        self._pending: dict[PulseRef, dict[str, ActionRow]] = {}
        self._last_flush = 0.0  # when the last batch of announced rows went out
        self._stamps: list[tuple[str, str, str | None]] = []  # key, path, time (None: delete)
        self._flush_task: asyncio.Task | None = None
        self._stamp_task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._client = None

    # --- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        """Run for ever: connect, listen and poll; on a lost Redis, retry."""
        backoff = BACKOFF_FIRST
        while True:
            try:
                if self.elect and not await self._lead():
                    await asyncio.sleep(relay.RETRY_SECONDS)
                    continue
                await self._session()
            except asyncio.CancelledError:
                if self.elect and self.leading:
                    await _quietly(relay.lock_release(identity=self.identity))
                raise
            except LostLead:
                log.warning("another console process took over the reading")
                continue
            except (*REDIS_ERRORS, RedisUnavailable) as exc:
                if self.connected or self.polls == 0:
                    log.warning("Redis at %s unreachable: %s", self.location, exc)
                await self._set_down(str(exc) or exc.__class__.__name__)
            except Exception as exc:  # noqa: BLE001 - the reader must outlive bad data
                log.exception("reader failed; restarting it")
                await self._set_down(f"reader error: {exc}")
            else:
                backoff = BACKOFF_FIRST
                continue
            await asyncio.sleep(backoff)
            backoff = BACKOFF_FIRST if self.connected else min(backoff * 2, BACKOFF_MAX)

    async def _session(self) -> None:
        self._client = client = async_client()
        self._caches.clear()  # Redis may have changed in any way meanwhile
        await client.ping()
        sub_client = async_pubsub_client()
        pubsub = sub_client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(*p.CHANNEL_PATTERNS)
            if not self.connected:
                # HEARTBEATs sent while Redis was out of reach were never seen:
                # the watchdog is judged from now, not from the last one heard.
                self.started_at = self.clock()
            await self._load_observations(client)
            await self.poll_once()
            if not self.connected:
                log.info("Redis at %s reachable; reading", self.location)
            recovered = not self.connected and self.polls > 1
            self.connected, self.error = True, ""
            await self._emit_header()
            if recovered:
                await self._refresh_pages()
            tasks = [
                asyncio.create_task(self._listen(pubsub)),
                asyncio.create_task(self._poll_loop()),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await _close_quietly(pubsub, sub_client)

    async def _lead(self) -> bool:
        """Take (or keep) the lock; the leader relays what it reads."""
        leading = await relay.lock_acquire(identity=self.identity)
        if leading and not self.leading:
            log.info("this process leads the reading (%s)", self.identity)
        self.leading = leading
        self.hub.relay = relay.relay_sender(self.identity) if leading else None
        return leading

    async def _refresh_pages(self) -> None:
        """After an outage every open page fetches its tables again: one
        loaded meanwhile holds only an error where its rows belong, with
        nothing for the pushed rows to replace."""
        await push.servers_reshaped(self.hub)
        for pulse in self.pulses:
            await push.pulse_reshaped(self.hub, pulse)

    async def _set_down(self, error: str) -> None:
        was = self.connected
        self.connected, self.error = False, error
        if was or self.header is None or self.header.redis_ok:
            await self._emit_header()

    async def _poll_loop(self) -> None:
        # Polls start on a fixed beat (a late wake-up does not push the next
        # one later), so a silent change waits at most an interval plus one
        # poll. A wake-up (a page wants a new pulse) polls now and starts the
        # beat again from there.
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.poll_interval
        while True:
            honour_cancel()
            await self._sleep_or_wake(max(0.0, next_at - loop.time()))
            now = loop.time()
            if self._wake.is_set():
                next_at = now + self.poll_interval
            else:
                next_at = max(next_at + self.poll_interval, now)
            self._wake.clear()
            honour_cancel()
            await self.poll_once()

    async def _sleep_or_wake(self, seconds: float) -> None:
        """Until the next tick or a wake-up. Not ``wait_for``: on Python 3.11
        it can lose a cancellation that comes as its timeout fires, and the
        reader would then never stop."""
        if self._wake.is_set():
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=seconds)
        finally:
            waiter.cancel()

    def wake(self) -> None:
        """Poll now rather than at the next tick (a page wants a new pulse)."""
        self._wake.set()

    # --- polling -------------------------------------------------------------------

    async def _load_observations(self, client) -> None:
        """Pick up what an earlier run noted, so a restart keeps its times."""
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(ck.heartbeat_seen_key())
        pipe.hgetall(ck.heartbeat_advanced_key())
        pipe.hgetall(ck.reader_state_key())
        seen, advanced, state = await pipe.execute(raise_on_error=False)
        for key, value in _decoded(seen).items():
            self.heartbeat_seen.setdefault(key, _float(value) or 0.0)
        for key, value in _decoded(advanced).items():
            counter, _, when = value.rpartition(" ")
            if key not in self.advanced and _float(when) is not None:
                self.advanced[key] = (counter, _float(when))
        last = _float(_decoded(state).get("last_heartbeat"))
        if last is not None and (self.last_heartbeat or 0) < last:
            self.last_heartbeat = last

    async def poll_once(self) -> None:
        client = self._client or async_client()
        if self.elect and not await relay.lock_acquire(client, self.identity):
            self.leading = False
            self.hub.relay = None
            raise LostLead
        await self._write_stamps()
        now = self.clock()
        self.polls += 1
        pointers = await pointers_get(client=client)
        self._note_tables(pointers, now)
        phase_changed = pointers.current_phase != self.pointers.current_phase
        self.pointers = pointers
        watched = set(self.hub.watched_pulses())
        if self.elect:
            watched |= await relay.watched_get(client)
        if pointers.current is not None:
            watched.add(pointers.current)
        caches = {pulse: self._caches.setdefault(pulse, PulseCache()) for pulse in watched}
        # The pulses are read first, and their changes go out while the
        # servers are read (on the reads' thread, side by side with the
        # pushes): a silent change of a row does not wait for 200 classes.
        # The pulses' dead-queue check uses the servers of the last poll,
        # once there was one.
        if self.servers:
            live = {row.ident for row in self.servers.values() if row.is_on}
            servers_read = None
        else:
            servers_read = await READS.run(servers_list())
            live = {row.ident for row in servers_read if row.is_on}
        pulses = await READS.run(pulses_read(caches, live))
        side = asyncio.ensure_future(READS.run(servers_list())) if servers_read is None else None
        try:
            for actions in pulses:
                await self._update_pulse(actions, now, phase_changed)
            if self._pending:  # what the poll found, with what messages announced
                await self._push_pending()
            # shield: a cancel of this poll must cancel the poll, not be spent
            # on the side read (whose client may absorb it).
            servers = await asyncio.shield(side) if side is not None else servers_read
        finally:
            if side is not None:
                if not side.done():
                    side.cancel()
                elif not side.cancelled():
                    side.exception()  # retrieved: the error, if any, is raised above
        await self._update_servers(servers, now)
        for pulse in list(self.pulses):
            if pulse not in watched:
                del self.pulses[pulse]
                self._caches.pop(pulse, None)
        await self._flush_observations(client)
        await self._emit_header()

    async def _update_servers(self, rows: list[ServerRow], now: float) -> None:
        bound = settings.WEBMONITOR_STALE_SECONDS
        fresh: dict[str, ServerRow] = {}
        for row in rows:
            key = row.key
            before = self.advanced.get(key)
            if before is None or before[0] != row.heartbeat:
                moved_at = now if before is not None else (row.heartbeat_advanced or now)
                self.advanced[key] = (row.heartbeat, moved_at)
                self._mark(ck.heartbeat_advanced_key(), key, f"{row.heartbeat} {moved_at:.3f}")
            fresh[key] = replace(
                row,
                heartbeat_seen=self.heartbeat_seen.get(key, row.heartbeat_seen),
                heartbeat_advanced=self.advanced[key][1],
            )
        stale = {key for key, row in fresh.items() if row.is_stale(now, bound)}
        if set(fresh) != set(self.servers):
            self.servers, self.stale = fresh, stale
            await push.servers_reshaped(self.hub)
            return
        changed = [
            row
            for key, row in fresh.items()
            if row != self.servers[key] or ((key in stale) != (key in self.stale))
        ]
        self.servers, self.stale = fresh, stale
        if changed:
            await push.servers_changed(self.hub, changed, now)

    def _note_tables(self, pointers: Pointers, now: float) -> None:
        if pointers.last_build != self.tables:
            if self.tables is not None or self.polls > 1:
                self.tables_seen_at = now
            self.tables = pointers.last_build

    async def _update_pulse(self, actions: PulseActions, now: float, phase_changed: bool) -> None:
        pulse = actions.pulse
        view = self.pulses.get(pulse)
        if view is None or (actions.changed is None and set(view.rows) != set(actions.rows)):
            self.pulses[pulse] = PulseView(actions)
            _settle_heap()
            if view is not None:
                await push.pulse_reshaped(self.hub, pulse)
            return
        if actions.current_phase != view.current_phase or phase_changed:
            view.current_phase = actions.current_phase
            self.pulses[pulse] = fresh = PulseView(actions)
            fresh.announced = view.announced
            await push.pulse_reshaped(self.hub, pulse)
            return
        changed = []
        # Only rows Redis changed since the last read, and those a message
        # changed (a hash that never follows its message must win in the end).
        paths = actions.rows if actions.changed is None else actions.changed | set(view.announced)
        for path in paths:
            row = actions.rows[path]
            old = view.rows[path]
            if row == old:
                view.announced.pop(path, None)
                continue
            announced = view.announced.get(path)
            if announced is not None and announced >= now:
                continue  # announced while this poll read: newer than what it read
            if (
                announced is not None
                and now - announced < 2 * self.poll_interval
                and STATE_STAGE.get(row.state, -1) < STATE_STAGE.get(old.state, -1)
            ):
                continue  # the hash lags the message that announced the change
            view.announced.pop(path, None)
            view.set_row(row)
            changed.append(row)
        for row in changed:  # out with the pending batch: one message, not two, per browser
            self._queue(pulse, row)

    def _mark(self, key: str, field: str, value: str) -> None:
        self._dirty.setdefault(key, {})[field] = value

    async def _flush_observations(self, client) -> None:
        state = {"polled_at": f"{self.clock():.3f}", "tables_seen": f"{self.tables_seen_at:.3f}"}
        if self.last_heartbeat is not None:
            state["last_heartbeat"] = f"{self.last_heartbeat:.3f}"
        self._mark_all(ck.reader_state_key(), state)
        dirty, self._dirty = self._dirty, {}
        pipe = client.pipeline(transaction=False)
        for key, mapping in dirty.items():
            pipe.hset(key, mapping=mapping)
        await pipe.execute()

    def _mark_all(self, key: str, mapping: dict[str, str]) -> None:
        self._dirty.setdefault(key, {}).update(mapping)

    # --- messages ------------------------------------------------------------------

    async def _listen(self, pubsub) -> None:
        while True:
            honour_cancel()
            message = await pubsub.get_message(timeout=None)
            if message is None or message.get("type") not in ("pmessage", "message"):
                continue
            await self.handle_message(text(message["channel"]), text(message["data"]))

    async def handle_message(self, channel: str, data: str) -> None:
        now = self.clock()
        if channel == p.MONITOR_PUBSUB:
            message = p.parse_monitor_message(data)
            if isinstance(message, p.Doing):
                await self._on_doing(message, now)
            elif isinstance(message, p.Done):
                await self._on_done(message, now)
            elif isinstance(message, p.EndPhase):
                self.wake()
        elif channel.startswith(p.SERVER_PUBSUB + ":"):
            message = p.parse_server_message(channel, data)
            if message is None:
                return
            self.message_seen[message.ident] = now
            self._mark(ck.server_message_seen_key(), message.ident, f"{now:.3f}")
            if message.verb == p.HEARTBEAT:
                await self._on_heartbeat(message, now)
        elif channel == p.DISPATCHER_COMMANDS:
            for cache in self._caches.values():
                cache.invalidate()  # build_tables rewrites what polls skip
            self.wake()  # tables are built and pulses created without a word
        elif channel == p.DISPATCHER_PUBSUB:
            completion = p.parse_completion(data)
            if completion is not None:
                self._touch(PulseRef(completion.tree, completion.shot), completion.path, now)

    async def _on_heartbeat(self, message: p.ServerMessage, now: float) -> None:
        key = f"{message.ident}:{message.argument}"
        self.heartbeat_seen[key] = now
        self.last_heartbeat = now
        self._mark(ck.heartbeat_seen_key(), key, f"{now:.3f}")
        row = self.servers.get(key)
        if row is not None:
            row = self.servers[key] = replace(row, heartbeat_seen=now)
            await push.servers_changed(self.hub, [row], now)
        if self.header is not None and self.header.watchdog_stopped:
            await self._emit_header()

    async def _on_doing(self, m: p.Doing, now: float) -> None:
        pulse = PulseRef(m.tree, m.shot)
        self._touch(pulse, m.path, now)
        stamp = f"{now:.3f}"  # the row holds what a poll reads back, or it differs
        # Written with the batch, not awaited here: a round trip per message
        # held up every message behind it.
        self._stamps.append((ck.doing_at_key(m.tree, m.shot), m.path, stamp))
        self._stamps.append((ck.done_at_key(m.tree, m.shot), m.path, None))
        # A DOING follows a dispatch, which wrote the "not finished" status:
        # ``None`` for a sequential action, ``none`` for a dependent one
        # (PROTOCOL.md). Most are sequential; the next poll corrects the
        # others. Left at the built ``none``, the poll would send almost every
        # started row a second time.
        self._announce(
            pulse,
            m.path,
            now,
            state=p.STATE_DOING,
            status=p.STATUS_RUNNING,
            doing_at=float(stamp),
            done_at=None,
        )

    async def _on_done(self, m: p.Done, now: float) -> None:
        pulse = PulseRef(m.tree, m.shot)
        self._touch(pulse, m.path, now)
        stamp = f"{now:.3f}"
        self._stamps.append((ck.done_at_key(m.tree, m.shot), m.path, stamp))
        self._announce(
            pulse,
            m.path,
            now,
            state=p.STATE_DONE,
            status=p.known_status(m.status),
            done_at=float(stamp),
        )

    def _touch(self, pulse: PulseRef, path: str, now: float) -> None:
        view = self.pulses.get(pulse)
        row = view.rows.get(path) if view else None
        phase = row.phase if row else self.pointers.phase_of(pulse.tree)
        self.activity[(pulse, phase)] = now

    def _announce(self, pulse: PulseRef, path: str, now: float, **changes) -> None:
        view = self.pulses.get(pulse)
        if view is None or path not in view.rows:
            self.wake()
            return
        if "status" in changes:
            changes["raw_status"] = changes["status"]
        changes["raw_state"] = changes["state"]
        row = replace(view.rows[path], **changes)
        view.set_row(row, announced_at=now)
        self._queue(pulse, row)

    def _queue(self, pulse: PulseRef, row: ActionRow) -> None:
        """Send ``row`` (already in the view) with the next batch."""
        self._pending.setdefault(pulse, {})[row.path] = row
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flush_announced())

    async def _flush_announced(self) -> None:
        # Until nothing is pending: what came during the awaits below found
        # this task still running and started none of its own.
        while True:
            honour_cancel()
            # A window between batches: a change after a quiet spell goes out
            # at once, and those that follow it wait for the window's end. It
            # counts from the end of the last batch's sends, so that the sends
            # of 200 sockets never run back to back.
            await asyncio.sleep(max(0.0, self._last_flush + BATCH_SECONDS - time.monotonic()))
            await self._push_pending(with_header=True)
            self._last_flush = time.monotonic()
            if self._stamps and (self._stamp_task is None or self._stamp_task.done()):
                self._stamp_task = asyncio.create_task(self._write_stamps_quietly())
            if not self._pending:
                return

    async def _push_pending(self, *, with_header: bool = False) -> None:
        """The pending rows of each pulse and, if asked, the header they
        moved: one message to each browser."""
        pending, self._pending = self._pending, {}
        changes = [
            push.actions_change(pulse, list(rows.values()), view.current_phase, view.summary)
            for pulse, rows in pending.items()
            if (view := self.pulses.get(pulse)) is not None
        ]
        if with_header:
            changes.extend(self._header_change())
        if changes:
            await self.hub.publish_many(changes)

    async def _write_stamps_quietly(self) -> None:
        """Beside the batches, so a slow round trip never holds the next one."""
        try:
            await self._write_stamps()
        except REDIS_ERRORS:
            pass  # kept for the next batch or poll; the poll reports the outage

    async def _write_stamps(self) -> None:
        """The DOING/DONE times noted since the last call, in one round trip
        (also before each poll, which reads them back)."""
        stamps, self._stamps = self._stamps, []
        if not stamps:
            return
        pipe = (self._client or async_client()).pipeline(transaction=False)
        for key, path, stamp in stamps:
            if stamp is None:
                pipe.hdel(key, path)
            else:
                pipe.hset(key, path, stamp)
        try:
            await pipe.execute()
        except REDIS_ERRORS:
            self._stamps[:0] = stamps  # kept, in order, for the next try
            raise
        for cache in self._caches.values():
            cache.note_written(stamps)

    # --- the header ----------------------------------------------------------------

    def header_now(self) -> HeaderState:
        now = self.clock()
        pulse = self.pointers.current
        phase = self.pointers.phase_of(pulse.tree) if pulse else ""
        view = self.pulses.get(pulse) if pulse else None
        return header_state(
            location=self.location,
            redis_ok=self.connected,
            redis_error=self.error,
            pulse=pulse,
            phase=phase,
            rows=view.tally if view else (),
            last_activity=self.activity.get((pulse, phase)) if pulse else None,
            servers=self.servers.values(),
            last_heartbeat=self.last_heartbeat,
            watching_since=max(self.started_at, self.tables_seen_at),
            tables_built=self.pointers.last_build is not None,
            now=now,
        )

    def _header_change(self) -> list[tuple[str, Render]]:
        header = self.header_now()
        if header == self.header:
            return []
        self.header = header
        return [push.header_change(header)]

    async def _emit_header(self) -> None:
        changes = self._header_change()
        if changes:
            await self.hub.publish_many(changes)


class LostLead(Exception):
    """Another process holds the reader's lock now."""


async def _quietly(coro) -> None:
    try:
        await asyncio.wait_for(coro, timeout=1.0)
    except Exception:  # noqa: BLE001,S110 - best effort on the way out
        pass


def _settle_heap() -> None:
    """Move what exists now (Django, a whole pulse of rows) out of the garbage
    collector's sight: a full collection walked 10^5+ long-lived objects and
    stalled every push for 100-300 ms. Rows hold no cycles; refcounting
    still frees them when replaced. The oldest generation is then collected
    a tenth as often: what stays unfrozen (connections, new rows) is small."""
    gc.freeze()
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, 100)


async def _close_quietly(*closables) -> None:
    """Close connections without waiting on a dead or half-read socket."""
    for item in closables:
        try:
            await asyncio.wait_for(item.aclose(), timeout=1.0)
        except (Exception, asyncio.CancelledError):  # noqa: BLE001,S110 - best effort
            pass


def _decoded(raw) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {text(k): text(v) for k, v in raw.items()}


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
