"""Reads of dispatcher state: SCAN and pipelines, never KEYS, one round trip
per kind of key. Async, so the page views and the reader share them.

Every function raises ``RedisUnavailable`` when Redis cannot be reached, and
nothing else for anything Redis holds: a key of the wrong type reads as
empty, bad bytes are replaced, unknown values become ``unknown``."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
import redis.asyncio as aredis

from monitor_app import console_keys as ck
from monitor_app import protocol as p
from monitor_app.redis_client import REDIS_ERRORS, async_client, text
from monitor_app.state import (
    ActionRow,
    PulseRef,
    ServerRow,
    action_row,
    action_rows,
    decode_hash,
    server_rows,
    sort_servers,
)

SCAN_COUNT = 1000
#: With a ``PulseCache``, the hashes only ``build_tables`` writes (phase and
#: server of each action) are read in full this often, else when their
#: length changes or the cache is invalidated (a dispatcher command was seen).
FULL_READ_EVERY = 30


class RedisUnavailable(Exception):
    """Redis could not be reached; the message says why."""


@dataclass(slots=True)
class Pointers:
    """The keys that say which pulse and phase the dispatcher is on."""

    last_build: PulseRef | None = None
    dispatch_info: PulseRef | None = None
    dispatch_phase: str = ""
    dispatch_default: PulseRef | None = None
    current_phase: dict[str, str] = field(default_factory=dict)

    @property
    def current(self) -> PulseRef | None:
        return self.last_build or self.dispatch_info

    def phase_of(self, tree: str) -> str:
        return self.current_phase.get(tree, "")


@dataclass(slots=True)
class PulseActions:
    pulse: PulseRef
    rows: dict[str, ActionRow]
    idents: list[str]
    current_phase: str = ""
    #: Paths whose row may differ from the previous read through the same
    #: ``PulseCache``; ``None``: unknown, compare every row.
    changed: set[str] | None = None


@dataclass(slots=True)
class PulseCache:
    """One reader's last read of one pulse: the hashes as Redis returned
    them and the rows built from them. The next read compares hashes as
    bytes (in C) and rebuilds only the rows whose fields changed: at 20,000
    actions, decoding and building every row each poll cost more than all
    else the reader does.

    Reads run on the reader's own thread while the main loop may call
    ``invalidate`` and ``note_written``; those two only bump a counter and
    queue, and the next read takes them in."""

    raw: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    rows: dict[str, ActionRow] = field(default_factory=dict)
    ident_of: dict[bytes, str] = field(default_factory=dict)
    idents: list[str] = field(default_factory=list)
    queued: frozenset[str] = frozenset()
    classes: set[str] = field(default_factory=set)
    reads: int = 0
    #: ``invalidate`` counts here; a read done at an older count reads all.
    generation: int = 1
    read_generation: int = 0

    #: Hashes only the owner writes (the DOING/DONE times): read in full only
    #: when stale or every ``FULL_READ_EVERY`` reads; between, what the owner
    #: wrote (``note_written``) stands for them.
    own: tuple[str, ...] = ()
    notes: deque[tuple[str, str, str | None]] = field(default_factory=deque)

    @property
    def stale(self) -> bool:
        return self.read_generation != self.generation

    def invalidate(self) -> None:
        """Read everything next time (the tables may have been rebuilt)."""
        self.generation += 1

    def note_written(self, writes: Iterable[tuple[str, str, str | None]]) -> None:
        """The owner wrote (key, field, value) to hashes of ``own``; ``None``
        deleted the field."""
        self.notes.extend(writes)

    def take_notes(self, fetched: dict[str, dict[bytes, bytes]]) -> set[bytes]:
        """Apply the queued writes to the hashes just fetched (or kept) for
        ``own``; the fields they touched."""
        touched = set()
        while self.notes:
            key, path, value = self.notes.popleft()
            raw = fetched.get(key) if key in self.own else None
            if raw is None:
                continue
            field_ = path.encode()
            if value is None:
                raw.pop(field_, None)
            else:
                raw[field_] = value.encode()
            touched.add(field_)
        return touched


async def _scan(client: aredis.Redis, pattern: str) -> list[str]:
    names = []
    async for name in client.scan_iter(match=pattern, count=SCAN_COUNT):
        names.append(text(name))
    return names


def _client(client: aredis.Redis | None) -> aredis.Redis:
    return client if client is not None else async_client()


async def _guard(coro):
    try:
        return await coro
    except REDIS_ERRORS as exc:
        raise RedisUnavailable(str(exc) or exc.__class__.__name__) from exc


async def redis_ping(*, client: aredis.Redis | None = None) -> bool:
    try:
        return bool(await _client(client).ping())
    except REDIS_ERRORS:
        return False


async def pointers_get(*, client: aredis.Redis | None = None) -> Pointers:
    return await _guard(_pointers_get(_client(client)))


async def _pointers_get(client: aredis.Redis) -> Pointers:
    pipe = client.pipeline(transaction=False)
    pipe.get(p.LAST_BUILD_TABLE)
    pipe.hgetall(p.DISPATCH_INFO)
    pipe.hgetall(p.DISPATCH_DEFAULT)
    pipe.hgetall(p.CURRENT_PHASE)
    last, info, default, phases = await pipe.execute(raise_on_error=False)
    info, default = decode_hash(info), decode_hash(default)
    built = p.parse_last_build_table(text(last) if isinstance(last, bytes) else None)
    return Pointers(
        last_build=PulseRef(*built) if built else None,
        dispatch_info=_pulse_or_none(
            info.get(p.DISPATCH_INFO_TREE), info.get(p.DISPATCH_INFO_SHOT)
        ),
        dispatch_phase=info.get(p.DISPATCH_INFO_PHASE, ""),
        dispatch_default=_pulse_or_none(
            default.get(p.DISPATCH_DEFAULT_TREE), default.get(p.DISPATCH_DEFAULT_SHOT)
        ),
        current_phase=decode_hash(phases),
    )


def _pulse_or_none(tree: str | None, shot: str | None) -> PulseRef | None:
    if not tree or not shot:
        return None
    ref = p.parse_key(p.action_status_key(tree, shot))
    return PulseRef(ref.tree, ref.shot) if ref else None


async def pulses_list(*, client: aredis.Redis | None = None) -> list[PulseRef]:
    """Every tree/shot with tables in Redis, newest shot first per tree."""
    return await _guard(_pulses_list(_client(client)))


async def _pulses_list(client: aredis.Redis) -> list[PulseRef]:
    found: set[PulseRef] = set()
    for family in (p.ACTION_STATUS, p.ACTION_PHASE_INFO):
        for name in await _scan(client, family + ":*"):
            ref = p.parse_key(name)
            if ref is not None and ref.family == family:
                found.add(PulseRef(ref.tree, ref.shot))
    return sorted(found, key=lambda r: (r.tree, -r.shot_number))


def default_pulse(pulses: list[PulseRef], pointers: Pointers) -> PulseRef | None:
    """LAST_BUILD_TABLE, else DISPATCH_INFO's pulse, else the most recent."""
    for candidate in (pointers.last_build, pointers.dispatch_info):
        if candidate is not None:
            return candidate
    if not pulses:
        return None
    return max(pulses, key=lambda r: r.shot_number)


async def server_idents(*, client: aredis.Redis | None = None) -> list[str]:
    return await _guard(_server_idents(_client(client)))


async def _server_idents(client: aredis.Redis) -> list[str]:
    idents = set()
    for name in await _scan(client, p.SERVER_ACTIVE + ":*"):
        ref = p.parse_key(name)
        if ref is not None and ref.family == p.SERVER_ACTIVE:
            idents.add(ref.ident)
    return sorted(idents)


async def servers_list(
    *, client: aredis.Redis | None = None, idents: list[str] | None = None
) -> list[ServerRow]:
    """Every server class and id of ``ACTION_SERVER_ACTIVE:*``, ON first."""
    return await _guard(_servers_list(_client(client), idents))


#: Every server class's four hashes and queue length, and the reader's two
#: observation hashes, in one round trip: as a pipeline, 1,000 commands at
#: 200 classes cost the client more than all the rest of a poll but the
#: pulse. A key of the wrong type gives an error in its place (``pcall``),
#: read as empty. Blocks Redis about a millisecond at 200 classes.
_SERVERS_SCRIPT = """
local out = {}
local n = tonumber(ARGV[1])
for i = 1, n * 5, 5 do
  for j = 0, 3 do
    out[#out + 1] = redis.pcall('HGETALL', KEYS[i + j])
  end
  out[#out + 1] = redis.pcall('LLEN', KEYS[i + 4])
end
for i = n * 5 + 1, #KEYS do
  out[#out + 1] = redis.pcall('HGETALL', KEYS[i])
end
return out
"""


async def _servers_list(client: aredis.Redis, idents: list[str] | None) -> list[ServerRow]:
    if idents is None:
        idents = await _server_idents(client)
    keys = []
    for ident in idents:
        keys += (
            p.server_active_key(ident),
            p.server_ip_key(ident),
            p.server_doing_key(ident),
            p.server_heartbeat_key(ident),
            p.server_todo_key(ident),
        )
    keys += (ck.heartbeat_seen_key(), ck.heartbeat_advanced_key())
    results = await client.register_script(_SERVERS_SCRIPT)(keys=keys, args=[len(idents)])
    if not isinstance(results, list) or len(results) != len(keys):
        results = [None] * len(keys)
    seen, advanced = _flat_hash(results[-2]), _flat_hash(results[-1])
    rows: list[ServerRow] = []
    for i, ident in enumerate(idents):
        active, ip, doing, beat, todo = results[5 * i : 5 * i + 5]
        rows.extend(
            server_rows(
                ident,
                _flat_hash(active),
                _flat_hash(ip),
                _flat_hash(doing),
                _flat_hash(beat),
                queued=todo if isinstance(todo, int) else 0,
                seen=seen,
                advanced=advanced,
            )
        )
    return sort_servers(rows)


def _flat_hash(raw: object) -> dict[str, str]:
    """A hash as a script returns it (field, value, field, value...) made
    into text; an error in its place (a key of the wrong type) is empty."""
    if not isinstance(raw, list):
        return {}
    it = iter(raw)
    return decode_hash(dict(zip(it, it, strict=False)))


async def pulse_actions(
    tree: str,
    shot: str,
    *,
    client: aredis.Redis | None = None,
    live_idents: set[str] | None = None,
) -> PulseActions:
    """Every action of one pulse with state, status, phase, server, times
    and whether a work item for it waits in a queue no live server reads."""
    return await _guard(_pulse_actions(_client(client), tree, shot, live_idents))


async def pulse_actions_cached(
    tree: str,
    shot: str,
    cache: PulseCache,
    *,
    client: aredis.Redis | None = None,
    live_idents: set[str] | None = None,
) -> PulseActions:
    """``pulse_actions`` for a poller: the same rows, read through ``cache``,
    with ``changed`` naming the rows that may differ from the last read."""
    return await _guard(_pulse_actions_cached(_client(client), tree, shot, live_idents, cache))


async def _pulse_actions_cached(
    client: aredis.Redis,
    tree: str,
    shot: str,
    live_idents: set[str] | None,
    cache: PulseCache,
) -> PulseActions:
    generation = cache.generation
    stale = cache.read_generation != generation
    idents = await _pulse_idents(client, tree, shot)
    keys = pulse_keys(tree, shot, idents)
    info_keys = keys[: len(idents)]
    status_key, phase_key, server_key, doing_key, done_key = keys[len(idents) :]
    rare = (phase_key, server_key)
    full = stale or idents != cache.idents or cache.reads % FULL_READ_EVERY == 0
    cache.own = (doing_key, done_key)
    every = [*info_keys, status_key, *(cache.own if full else ())]
    pipe = client.pipeline(transaction=False)
    for key in every:
        pipe.hgetall(key)
    for key in rare:
        if full:
            pipe.hgetall(key)
        else:
            pipe.hlen(key)
    pipe.hget(p.CURRENT_PHASE, tree)
    results = await pipe.execute(raise_on_error=False)
    fetched = {key: _raw_hash(value) for key, value in zip(every, results, strict=False)}
    tail = results[len(every) : len(every) + 2]
    if full:
        fetched.update((key, _raw_hash(value)) for key, value in zip(rare, tail, strict=True))
    else:
        moved = [
            key
            for key, length in zip(rare, tail, strict=True)
            if not isinstance(length, int) or length != len(cache.raw.get(key, {}))
        ]
        if moved:
            pipe = client.pipeline(transaction=False)
            for key in moved:
                pipe.hgetall(key)
            again = await pipe.execute(raise_on_error=False)
            fetched.update((key, _raw_hash(value)) for key, value in zip(moved, again, strict=True))
        fetched.update((key, cache.raw.get(key, {})) for key in rare if key not in fetched)
        fetched.update((key, cache.raw.get(key, {})) for key in cache.own)
    current = results[-1]
    if fetched[server_key] is not cache.raw.get(server_key) or stale:
        cache.classes = {text(v) for v in fetched[server_key].values()}
    needed = set(idents) | cache.classes
    queued = frozenset(await _queued_paths(client, tree, shot, needed, live_idents))

    structural = stale
    changed_raw = cache.take_notes(fetched)
    for key, new in fetched.items():
        old = cache.raw.get(key)
        if structural or new is old:
            continue
        if old is None or new.keys() != old.keys():
            if key not in (doing_key, done_key):  # the set of actions may differ
                structural = True
                continue
            changed_raw.update((old or {}).keys() ^ new.keys())
        if new != old:
            changed_raw.update(k for k, v in new.items() if old is not None and old.get(k) != v)
    cache.raw = fetched
    cache.idents = idents
    cache.reads += 1
    cache.read_generation = generation
    if structural:
        cache.ident_of = {}
        for ident, key in zip(idents, info_keys, strict=True):
            cache.ident_of.update(dict.fromkeys(fetched[key], ident))
        cache.rows = pulse_rows_of(tree, shot, idents, [fetched[k] for k in keys], queued)
        changed = None
    else:
        by_text = {text(path): path for path in changed_raw}
        for path in queued ^ cache.queued:
            by_text.setdefault(path, path.encode())
        changed = {path for path in by_text if path in cache.rows}
        status, phase, server, doing_at, done_at = (
            fetched[k] for k in (status_key, phase_key, server_key, doing_key, done_key)
        )
        for path in changed:
            raw_path = by_text[path]
            ident = cache.ident_of.get(raw_path, "")
            info = fetched[p.action_info_key(tree, shot, ident)] if ident else {}
            cache.rows[path] = action_row(
                tree,
                shot,
                path,
                raw_state=text(info.get(raw_path)) or "",
                ident=ident,
                raw_status=text(status.get(raw_path)) or "",
                phase=text(phase.get(raw_path)) or "",
                server=text(server.get(raw_path)) or "",
                doing_at=text(doing_at.get(raw_path)),
                done_at=text(done_at.get(raw_path)),
                queued=path in queued,
            )
    cache.queued = queued
    return PulseActions(
        pulse=PulseRef(tree, shot),
        rows=dict(cache.rows),
        idents=idents,
        current_phase=text(current) if isinstance(current, bytes) else "",
        changed=changed,
    )


async def pulses_read(
    caches: dict[PulseRef, PulseCache], live_idents: set[str]
) -> list[PulseActions]:
    """Each pulse of ``caches`` read through its cache, on one connection."""
    client = async_client()
    return [
        await pulse_actions_cached(
            pulse.tree, pulse.shot, cache, client=client, live_idents=live_idents
        )
        for pulse, cache in caches.items()
    ]


def _raw_hash(value: object) -> dict[bytes, bytes]:
    """A hash as Redis returned it; an error (a key of the wrong type) is empty."""
    return value if isinstance(value, dict) else {}


async def _pulse_idents(client: aredis.Redis, tree: str, shot: str) -> list[str]:
    return p.pulse_idents(await _scan(client, p.action_info_pattern(tree, shot)), tree, shot)


def pulse_keys(tree: str, shot: str, idents: list[str]) -> list[str]:
    """The hashes a pulse's rows are made of, in the order ``pulse_rows_of``
    takes their replies (for a sync or an async pipeline alike)."""
    return [
        *(p.action_info_key(tree, shot, ident) for ident in idents),
        p.action_status_key(tree, shot),
        p.action_phase_key(tree, shot),
        p.action_server_key(tree, shot),
        ck.doing_at_key(tree, shot),
        ck.done_at_key(tree, shot),
    ]


def pulse_rows_of(
    tree: str, shot: str, idents: list[str], replies: list, queued: Iterable[str] = ()
) -> dict[str, ActionRow]:
    """The rows from the replies to ``pulse_keys``; an error reads as empty."""
    n = len(idents)
    info = {ident: decode_hash(replies[i]) for i, ident in enumerate(idents)}
    status, phase, server, doing_at, done_at = (decode_hash(r) for r in replies[n : n + 5])
    return action_rows(tree, shot, info, status, phase, server, doing_at, done_at, queued)


async def _pulse_actions(
    client: aredis.Redis, tree: str, shot: str, live_idents: set[str] | None
) -> PulseActions:
    pulse = PulseRef(tree, shot)
    idents = await _pulse_idents(client, tree, shot)
    keys = pulse_keys(tree, shot, idents)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    pipe.hget(p.CURRENT_PHASE, tree)
    results = await pipe.execute(raise_on_error=False)
    current = results[len(keys)]
    server = _raw_hash(results[len(idents) + 2])
    needed = set(idents) | {text(ident) for ident in server.values()}
    queued = await _queued_paths(client, tree, shot, needed, live_idents)
    return PulseActions(
        pulse=pulse,
        rows=pulse_rows_of(tree, shot, idents, results, queued),
        idents=idents,
        current_phase=text(current) if isinstance(current, bytes) else "",
    )


async def _queued_paths(
    client: aredis.Redis,
    tree: str,
    shot: str,
    idents: set[str],
    live_idents: set[str] | None,
) -> list[str]:
    """Paths of this pulse waiting in the queue of a class with no live server."""
    if live_idents is None:
        live_idents = {r.ident for r in await _servers_list(client, None) if r.is_on}
    dead = sorted(i for i in idents if i and i not in live_idents and p.NAME_RE.fullmatch(i))
    if not dead:
        return []
    pipe = client.pipeline(transaction=False)
    for ident in dead:
        pipe.lrange(p.server_todo_key(ident), 0, -1)
    paths = []
    for items in await pipe.execute(raise_on_error=False):
        if not isinstance(items, list):
            continue
        for item in items:
            parsed = p.parse_work_item(text(item))
            if parsed and parsed[0] == tree and parsed[1] == shot:
                paths.append(parsed[2])
    return paths


async def action_log_get(
    tree: str, shot: str, path: str, *, client: aredis.Redis | None = None
) -> str | None:
    """The captured output of one action, ``None`` when it has none."""

    async def read():
        value = await _client(client).hget(p.action_log_key(tree, shot), path)
        return text(value) if isinstance(value, bytes) else None

    try:
        return await _guard(read())
    except redis.ResponseError:  # a key of the wrong type: no log, not a 500
        return None


async def reader_observations(*, client: aredis.Redis | None = None) -> dict[str, str]:
    """What the reader noted in Redis (last heartbeat, activity times)."""

    async def read():
        return decode_hash(await _client(client).hgetall(ck.reader_state_key()))

    try:
        return await _guard(read())
    except redis.ResponseError:
        return {}
