"""Reads of dispatcher state: SCAN and pipelines, never KEYS, one round trip
per kind of key. Async, so the page views and the reader share them.

Every function raises ``RedisUnavailable`` when Redis cannot be reached, and
nothing else for anything Redis holds: a key of the wrong type reads as
empty, bad bytes are replaced, unknown values become ``unknown``."""

from __future__ import annotations

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
    action_rows,
    decode_hash,
    server_rows,
    sort_servers,
)

SCAN_COUNT = 1000


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


async def _servers_list(client: aredis.Redis, idents: list[str] | None) -> list[ServerRow]:
    if idents is None:
        idents = await _server_idents(client)
    pipe = client.pipeline(transaction=False)
    for ident in idents:
        pipe.hgetall(p.server_active_key(ident))
        pipe.hgetall(p.server_ip_key(ident))
        pipe.hgetall(p.server_doing_key(ident))
        pipe.hgetall(p.server_heartbeat_key(ident))
        pipe.llen(p.server_todo_key(ident))
    pipe.hgetall(ck.heartbeat_seen_key())
    pipe.hgetall(ck.heartbeat_advanced_key())
    results = await pipe.execute(raise_on_error=False)
    seen, advanced = decode_hash(results[-2]), decode_hash(results[-1])
    rows: list[ServerRow] = []
    for i, ident in enumerate(idents):
        active, ip, doing, beat, todo = results[5 * i : 5 * i + 5]
        rows.extend(
            server_rows(
                ident,
                decode_hash(active),
                decode_hash(ip),
                decode_hash(doing),
                decode_hash(beat),
                queued=todo if isinstance(todo, int) else 0,
                seen=seen,
                advanced=advanced,
            )
        )
    return sort_servers(rows)


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


async def _pulse_actions(
    client: aredis.Redis, tree: str, shot: str, live_idents: set[str] | None
) -> PulseActions:
    pulse = PulseRef(tree, shot)
    idents = p.pulse_idents(await _scan(client, p.action_info_pattern(tree, shot)), tree, shot)
    pipe = client.pipeline(transaction=False)
    for ident in idents:
        pipe.hgetall(p.action_info_key(tree, shot, ident))
    pipe.hgetall(p.action_status_key(tree, shot))
    pipe.hgetall(p.action_phase_key(tree, shot))
    pipe.hgetall(p.action_server_key(tree, shot))
    pipe.hgetall(ck.doing_at_key(tree, shot))
    pipe.hgetall(ck.done_at_key(tree, shot))
    pipe.hget(p.CURRENT_PHASE, tree)
    results = await pipe.execute(raise_on_error=False)
    n = len(idents)
    info = {ident: decode_hash(results[i]) for i, ident in enumerate(idents)}
    status, phase, server, doing_at, done_at = (decode_hash(r) for r in results[n : n + 5])
    current = results[n + 5]
    needed = set(idents) | set(server.values())
    queued = await _queued_paths(client, tree, shot, needed, live_idents)
    rows = action_rows(tree, shot, info, status, phase, server, doing_at, done_at, queued)
    return PulseActions(
        pulse=pulse,
        rows=rows,
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
