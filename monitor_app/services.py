"""Every operator command, implemented once: validate, send exactly the Redis
operations of PROTOCOL.md ("What a client sends"), record it, return a result.

Views and management commands only call these functions. Each one takes
keyword-only arguments and an ``Actor`` (who, from where), and either returns
a ``CommandResult`` or raises ``CommandRefused`` (with per-field messages) when
nothing was sent. The operations of one command go out in one MULTI/EXEC
pipeline after a PING, so a Redis outage never leaves a command half-sent.
"""

from __future__ import annotations

import getpass
import logging
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from monitor_app import console_keys as ck
from monitor_app import protocol as p
from monitor_app import pubsub_log
from monitor_app import validation as v
from monitor_app.models import OPERATE_PERMISSION, CommandRecord
from monitor_app.redis_client import REDIS_ERRORS, redis_location, sync_client, text
from monitor_app.selectors import pulse_keys, pulse_rows_of
from monitor_app.state import ActionRow, decode_hash

logger = logging.getLogger(__name__)

SCAN_COUNT = 1000
OUTPUT_MAX = 20_000  # characters of site-command output kept in the record

NON_FIELD = "__all__"  # Django's key for errors that belong to no field


# --- who sends, what came of it -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sends a command: a web user, or the OS user of a shell."""

    username: str
    source: str
    user: Any = None  # a Django user for the web

    @classmethod
    def web(cls, user: Any) -> Actor:
        return cls(username=user.get_username(), source=CommandRecord.SOURCE_WEB, user=user)

    @classmethod
    def shell(cls) -> Actor:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, no LOGNAME
            name = "unknown"
        return cls(username=name or "unknown", source=CommandRecord.SOURCE_SHELL)

    def require_operator(self) -> None:
        """A web user needs the operator permission; the shell already has
        the machine, so it is not asked."""
        if self.user is not None and not self.user.has_perm(OPERATE_PERMISSION):
            raise PermissionDenied("Only operators may send commands.")


@dataclass(frozen=True, slots=True)
class Op:
    """One Redis operation exactly as sent (or one run of the site command)."""

    name: str
    key: str
    args: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " ".join([self.name, self.key, *self.args])


@dataclass(slots=True)
class CommandResult:
    """What a command did: ``message`` is for the operator, ``sent`` lists
    the operations, ``details`` holds command-specific data (a log, the
    output of the site command, ...)."""

    command: str
    ok: bool
    message: str
    sent: list[Op] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    record_id: int | None = None

    @property
    def sent_text(self) -> list[str]:
        return [str(op) for op in self.sent]


class CommandRefused(Exception):
    """Nothing was sent. ``errors`` maps a form field (or ``__all__``) to
    the messages to show next to it."""

    def __init__(self, errors: dict[str, list[str]] | str, *, field_name: str = NON_FIELD):
        if isinstance(errors, str):
            errors = {field_name: [errors]}
        self.errors = errors
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = []
        for name, messages in self.errors.items():
            prefix = "" if name == NON_FIELD else f"{name}: "
            parts.extend(prefix + m for m in messages)
        return " ".join(parts)

    def add_to_form(self, form: Any) -> None:
        """Put the messages next to the form's fields (non-field otherwise)."""
        for name, messages in self.errors.items():
            target = name if name in getattr(form, "fields", {}) else None
            for message in messages:
                form.add_error(target, message)


class RedisUnreachable(CommandRefused):
    """Redis could not be reached: nothing was sent."""


class ConfirmationRequired(CommandRefused):
    """The command would run, but the operator must confirm the warnings
    first (``check`` holds them as data); nothing was sent."""

    def __init__(self, check: PhaseCheck):
        self.check = check
        super().__init__({NON_FIELD: check.warnings})


# --- small helpers --------------------------------------------------------------


def _field(name: str, cleaner: Callable[[Any], Any], value: Any) -> Any:
    try:
        return cleaner(value)
    except ValidationError as exc:
        raise CommandRefused({name: list(exc.messages)}) from None


def _fields(**checks: tuple[Callable[[Any], Any], Any]) -> dict[str, Any]:
    """Validate every field and report every bad one at once."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, (cleaner, value) in checks.items():
        try:
            clean[name] = cleaner(value)
        except ValidationError as exc:
            errors[name] = list(exc.messages)
    if errors:
        raise CommandRefused(errors)
    return clean


def unreachable_error(exc: BaseException) -> RedisUnreachable:
    return RedisUnreachable(
        f"Redis at {redis_location()} cannot be reached ({exc or exc.__class__.__name__}); "
        "nothing was sent."
    )


@contextmanager
def _reading() -> Iterator[None]:
    """Reads turn an outage into ``RedisUnreachable`` and a key of the wrong
    type into a refusal, never a traceback."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise unreachable_error(exc) from exc
    except redis.ResponseError as exc:
        raise CommandRefused(f"Redis holds unexpected data: {exc}") from exc


def _client() -> redis.Redis:
    """A client on a Redis known to answer: checked before anything is sent."""
    client = sync_client()
    with _reading():
        client.ping()
    return client


def _send(client: redis.Redis, ops: Sequence[Op]) -> None:
    """All operations in one MULTI/EXEC: all of them reach Redis or none."""
    try:
        pipe = client.pipeline(transaction=True)
        for op in ops:
            pipe.execute_command(op.name, op.key, *op.args)
        pipe.execute()
    except REDIS_ERRORS as exc:
        raise unreachable_error(exc) from exc
    except redis.ResponseError as exc:  # bad data in a key: Redis ran the others
        raise CommandRefused(f"Redis refused part of the command: {exc}") from exc


def _log_line(message: str, channel: str = pubsub_log.CONSOLE_COMMAND) -> None:
    """One line in the pub/sub log file, so the Log Viewer shows what the
    console did. Never fails a command: an unwritable file is only logged."""
    try:
        pubsub_log.append_line(channel, " ".join(message.split()))
    except OSError as exc:
        logger.warning("cannot write %s: %s", settings.WEBMONITOR_PUBSUB_LOG, exc)


class _Command:
    """Book-keeping of one command: its audit record and log line."""

    def __init__(self, actor: Actor, name: str, arguments: dict[str, Any], reason: str):
        self.actor = actor
        self.name = name
        self.arguments = arguments
        self.reason = reason
        self.tree = ""
        self.shot = ""
        self.sent: list[Op] = []

    def pulse(self, tree: str, shot: int | str) -> None:
        self.tree, self.shot = tree, str(shot)

    def summary(self) -> str:
        values = dict(self.arguments)
        if self.tree:  # as sent: upper-cased, the default pulse filled in
            values.update(tree=self.tree, shot=self.shot)
        shown = [  # a list (the site command's argv) as a shell would show it
            shlex.join(map(str, a)) if isinstance(a, list) else str(a)
            for a in values.values()
            if a not in (None, "", [])
        ]
        return " ".join([self.name, *shown])

    def record(self, ok: bool, result: str, *, refused: bool = False) -> CommandRecord:
        record = CommandRecord.objects.create(
            user=self.actor.user if getattr(self.actor.user, "pk", None) else None,
            username=self.actor.username,
            source=self.actor.source,
            command=self.name,
            arguments=self.arguments,
            tree=self.tree,
            shot=self.shot,
            reason=self.reason,
            ok=ok,
            refused=refused,
            result=result,
        )
        if ok:
            outcome = "ok"
        else:
            first = result.splitlines()[0] if result else ""
            outcome = ("refused: " if refused else "failed: ") + first
        _log_line(f"{self.actor.username}: {self.summary()} -> {outcome}")
        return record

    def send(self, client: redis.Redis, ops: Sequence[Op]) -> None:
        _send(client, ops)
        self.sent.extend(ops)

    def done(
        self,
        message: str,
        *,
        ok: bool = True,
        warnings: Iterable[str] = (),
        details: dict[str, Any] | None = None,
        extra: str = "",
    ) -> CommandResult:
        lines = [message, *(f"sent: {op}" for op in self.sent), *warnings]
        if extra:
            lines.append(extra)
        record = self.record(ok, "\n".join(lines))
        return CommandResult(
            command=self.name,
            ok=ok,
            message=message,
            sent=list(self.sent),
            warnings=list(warnings),
            details=details or {},
            record_id=record.pk,
        )


@contextmanager
def _command(
    actor: Actor, name: str, arguments: dict[str, Any], reason: str = ""
) -> Iterator[_Command]:
    """Run one command body: a refusal is recorded with its reason and
    re-raised; so is anything unexpected."""
    actor.require_operator()
    try:
        reason = v.clean_reason(reason)
    except ValidationError as exc:
        raise CommandRefused({"reason": list(exc.messages)}) from None
    cmd = _Command(actor, name, {k: _jsonable(a) for k, a in arguments.items()}, reason)
    try:
        yield cmd
    except CommandRefused as exc:
        if not isinstance(exc, ConfirmationRequired):  # a question, not an outcome
            cmd.record(False, exc.message, refused=True)
        raise
    except Exception as exc:
        cmd.record(False, f"internal error: {exc.__class__.__name__}: {exc}")
        raise


#: What a refused attempt keeps of the request: enough to see what was tried.
DENIED_FIELDS_MAX = 20
DENIED_VALUES_MAX = 50


def attempt_record(
    *, actor: Actor, name: str, fields: dict[str, list[str]], result: str
) -> CommandRecord:
    """An attempt stopped before any service ran: by someone who is not an
    operator (a forged POST, a page left open after the role was taken
    away), or with input the form refused. Nothing is sent, but a control
    room wants to know who tried what, as it was posted."""
    arguments = {
        key: _jsonable(unique[:DENIED_VALUES_MAX] if len(unique) > 1 else unique[0])
        for key, values in list(fields.items())[:DENIED_FIELDS_MAX]
        if values and key != "csrfmiddlewaretoken"
        # a row is in both tables of the page, so its path comes twice
        for unique in [list(dict.fromkeys(values))]
    }
    reason = str(arguments.pop("reason", "") or "")[: v.REASON_MAX]
    cmd = _Command(actor, name, arguments, reason)
    try:  # for the Audit's pulse column and filters; a bad one stays in the arguments
        cmd.pulse(v.clean_tree(arguments.get("tree")), v.clean_shot(arguments.get("shot")))
    except ValidationError:
        pass
    return cmd.record(False, result[: v.PATH_MAX], refused=True)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(x) for x in value]
    return str(value)[: v.PATH_MAX]


# --- sync reads (selectors are async; these are the few a command needs) --------


@dataclass(frozen=True, slots=True)
class Pulse:
    tree: str
    shot: int

    def __str__(self) -> str:
        return f"{self.tree} {self.shot}"


def default_pulse_get() -> Pulse | None:
    """The pulse in ``DISPATCH_DEFAULT`` (set by create pulse), which
    ``build_tables`` and ``do_phase`` without TREE/SHOT refer to."""
    client = _client()
    with _reading():
        raw = decode_hash(client.hgetall(p.DISPATCH_DEFAULT))
    try:
        return Pulse(
            v.clean_tree(raw.get(p.DISPATCH_DEFAULT_TREE)),
            v.clean_shot(raw.get(p.DISPATCH_DEFAULT_SHOT)),
        )
    except ValidationError:
        return None


def _pulse_or_default(tree: Any, shot: Any) -> Pulse:
    if tree in (None, "") and shot in (None, ""):
        pulse = default_pulse_get()
        if pulse is None:
            raise CommandRefused(
                f"No default pulse: {p.DISPATCH_DEFAULT} is not set. Create a pulse first "
                "or give the tree and shot.",
            )
        return pulse
    clean = _fields(tree=(v.clean_tree, tree), shot=(v.clean_shot, shot))
    return Pulse(clean["tree"], clean["shot"])


def _last_build(client: redis.Redis) -> Pulse | None:
    with _reading():
        raw = client.get(p.LAST_BUILD_TABLE)
    parsed = p.parse_last_build_table(text(raw))
    return Pulse(parsed[0], int(parsed[1])) if parsed else None


def _scan(client: redis.Redis, pattern: str) -> list[str]:
    with _reading():
        return [text(n) for n in client.scan_iter(match=pattern, count=SCAN_COUNT)]


def pulse_rows(
    *, tree: str, shot: int | str, client: redis.Redis | None = None
) -> dict[str, ActionRow]:
    """Every action of a pulse (state, status, phase, server), read in one
    pipeline after a SCAN of its ``ACTION_INFO`` keys."""
    client = client or _client()
    idents = p.pulse_idents(_scan(client, p.action_info_pattern(tree, shot)), tree, shot)
    keys = pulse_keys(tree, str(shot), idents)
    with _reading():
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        results = pipe.execute(raise_on_error=False)
    return pulse_rows_of(tree, str(shot), idents, results)


def phases_list(*, tree: str, shot: int | str) -> list[str]:
    """The phases of a pulse's actions, to offer in the Do Phase field."""
    clean = _fields(tree=(v.clean_tree, tree), shot=(v.clean_shot, shot))
    client = _client()
    with _reading():
        phases = decode_hash(client.hgetall(p.action_phase_key(clean["tree"], clean["shot"])))
    return sorted({ph for ph in phases.values() if ph and p.NAME_RE.fullmatch(ph)})


def _action_of_pulse(client: redis.Redis, tree: str, shot: int, path: str) -> tuple[str, str]:
    """``(server class, state)`` of an action of the pulse, or a refusal that
    names the stored spelling when only the spelling differs."""
    with _reading():
        ident = text(client.hget(p.action_server_key(tree, shot), path))
    if not ident:
        hint = ""
        with _reading():
            stored = decode_hash(client.hgetall(p.action_server_key(tree, shot)))
        wanted = path.lstrip("\\").upper()
        for candidate in stored:
            if candidate.lstrip("\\").upper() == wanted:
                hint = f" Did you mean {candidate}?"
                break
        raise CommandRefused(
            {"path": [f"{path} is not an action of {tree} {shot} in Redis.{hint}"]}
        )
    if not p.NAME_RE.fullmatch(ident):
        raise CommandRefused({"path": [f"{path} has an unusable server class {ident!r}."]})
    with _reading():
        state = text(client.hget(p.action_info_key(tree, shot, ident), path)) or ""
    return ident, state


# --- the phase check (warnings before Do Phase) ---------------------------------


@dataclass(frozen=True, slots=True)
class ServerProblem:
    """A server class the phase needs that cannot run it now."""

    ident: str
    problem: str  # "off" (no id ON, or no server at all) or "stale"
    server_ids: tuple[str, ...]
    actions: int

    def __str__(self) -> str:
        ids = ", ".join(self.server_ids) or "none registered"
        if self.problem == "stale":
            return f"{self.ident} (ids {ids}) is ON but its heartbeat has stopped"
        return f"{self.ident} is OFF (ids: {ids})"


@dataclass(slots=True)
class PhaseCheck:
    """What the UI shows before Do Phase, and asks to confirm."""

    tree: str
    shot: int
    phase: str
    tables_built: bool
    last_build: Pulse | None
    actions: int
    servers_off: list[ServerProblem] = field(default_factory=list)
    servers_stale: list[ServerProblem] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        out = []
        if not self.tables_built:
            built = str(self.last_build) if self.last_build else "no pulse"
            out.append(
                f"The tables of {self.tree} {self.shot} have not been built "
                f"({p.LAST_BUILD_TABLE} is {built}): the dispatcher will not run the phase "
                "and will not answer."
            )
        elif self.actions == 0:
            out.append(f"No action of {self.tree} {self.shot} is in phase {self.phase}.")
        if self.servers_off:
            out.append(
                "Servers needed by the phase are OFF: " + "; ".join(map(str, self.servers_off))
            )
        if self.servers_stale:
            out.append(
                "Servers needed by the phase look dead: " + "; ".join(map(str, self.servers_stale))
            )
        return out

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.warnings)


def phase_check(*, tree: Any = None, shot: Any = None, phase: Any) -> PhaseCheck:
    """Check a Do Phase before sending it: tables built for that pulse
    (``LAST_BUILD_TABLE``), and the servers its actions need ON and alive."""
    pulse = _pulse_or_default(tree, shot)
    clean_phase = _field("phase", v.clean_phase, phase)
    client = _client()
    built = _last_build(client)
    rows = pulse_rows(tree=pulse.tree, shot=pulse.shot, client=client)
    needed: dict[str, int] = {}
    for row in rows.values():
        if (
            row.phase.upper() == clean_phase
            and row.state != p.STATE_OFF
            and row.server != p.UNKNOWN
        ):
            needed[row.server] = needed.get(row.server, 0) + 1
    idents = sorted(i for i in needed if p.NAME_RE.fullmatch(i))
    with _reading():
        pipe = client.pipeline(transaction=False)
        for ident in idents:
            pipe.hgetall(p.server_active_key(ident))
        pipe.hgetall(ck.heartbeat_advanced_key())
        results = pipe.execute(raise_on_error=False)
    advanced = decode_hash(results[-1])
    now = time.time()
    check = PhaseCheck(
        tree=pulse.tree,
        shot=pulse.shot,
        phase=clean_phase,
        tables_built=built == pulse,
        last_build=built,
        actions=sum(needed.values()),
    )
    for ident, raw in zip(idents, results[:-1], strict=True):
        active = decode_hash(raw)
        on = sorted(i for i, state in active.items() if state == p.SERVER_ON)
        if not on:
            check.servers_off.append(
                ServerProblem(ident, "off", tuple(sorted(active)), needed[ident])
            )
        elif all(_stale(advanced.get(f"{ident}:{i}"), now) for i in on):
            check.servers_stale.append(ServerProblem(ident, "stale", tuple(on), needed[ident]))
    return check


def _stale(advanced: str | None, now: float) -> bool:
    """The reader notes when each heartbeat counter last moved; without
    that note nothing is known, which is not "stale"."""
    if not advanced:
        return False
    try:
        moved = float(advanced.rpartition(" ")[2])
    except ValueError:
        return False
    return now - moved > settings.WEBMONITOR_STALE_SECONDS


# --- dispatcher commands ----------------------------------------------------------


def pulse_create(*, tree: Any, shot: Any, actor: Actor, reason: str = "") -> CommandResult:
    """Create pulse SHOT of TREE; it also becomes the default pulse."""
    with _command(actor, p.CMD_CREATE_PULSE, {"tree": tree, "shot": shot}, reason) as cmd:
        clean = _fields(tree=(v.clean_tree, tree), shot=(v.clean_shot, shot))
        t, s = clean["tree"], clean["shot"]
        cmd.pulse(t, s)
        client = _client()
        cmd.send(
            client,
            [
                Op(
                    "HSET",
                    p.DISPATCH_DEFAULT,
                    (p.DISPATCH_DEFAULT_TREE, t, p.DISPATCH_DEFAULT_SHOT, str(s)),
                ),
                Op("PUBLISH", p.DISPATCHER_COMMANDS, (p.create_pulse_message(t, s),)),
            ],
        )
        return cmd.done(f"Create pulse {t} {s} sent to the dispatcher.")


def tables_build(
    *, tree: Any = None, shot: Any = None, actor: Actor, reason: str = ""
) -> CommandResult:
    """Build the dispatch tables of a pulse (default: ``DISPATCH_DEFAULT``)."""
    with _command(actor, p.CMD_BUILD_TABLES, {"tree": tree, "shot": shot}, reason) as cmd:
        pulse = _pulse_or_default(tree, shot)
        cmd.pulse(pulse.tree, pulse.shot)
        client = _client()
        msg = p.build_tables_message(pulse.tree, pulse.shot)
        cmd.send(client, [Op("PUBLISH", p.DISPATCHER_COMMANDS, (msg,))])
        return cmd.done(f"Build tables of {pulse} sent to the dispatcher.")


def phase_do(
    *,
    tree: Any = None,
    shot: Any = None,
    phase: Any,
    actor: Actor,
    confirm: bool = False,
    reason: str = "",
) -> CommandResult:
    """Run a phase. When the check finds problems (tables not built, servers
    OFF or dead) it raises ``ConfirmationRequired`` unless ``confirm``; with
    ``confirm`` it sends and returns the warnings in the result."""
    arguments = {"tree": tree, "shot": shot, "phase": phase}
    with _command(actor, p.CMD_DO_PHASE, arguments, reason) as cmd:
        check = phase_check(tree=tree, shot=shot, phase=phase)
        cmd.pulse(check.tree, check.shot)
        cmd.arguments.update(tree=check.tree, shot=check.shot, phase=check.phase)
        if check.needs_confirmation and not confirm:
            raise ConfirmationRequired(check)
        client = _client()
        msg = p.do_phase_message(check.tree, check.shot, check.phase)
        cmd.send(client, [Op("PUBLISH", p.DISPATCHER_COMMANDS, (msg,))])
        return cmd.done(
            f"Do phase {check.phase} of {check.tree} {check.shot} sent to the dispatcher.",
            warnings=check.warnings,
            details={"check": check},
        )


def sequence_do(
    *,
    tree: Any = None,
    shot: Any = None,
    phase: Any,
    start: Any,
    end: Any,
    actor: Actor,
    confirm: bool = False,
    reason: str = "",
) -> CommandResult:
    """Run the sequential actions of PHASE numbered START..END (and the
    dependents that fire). Same checks as Do Phase."""
    arguments = {"tree": tree, "shot": shot, "phase": phase, "start": start, "end": end}
    with _command(actor, p.CMD_DO_SEQUENCE, arguments, reason) as cmd:
        numbers = _fields(
            start=(lambda x: v.clean_sequence_number(x, "START"), start),
            end=(lambda x: v.clean_sequence_number(x, "END"), end),
        )
        try:
            v.check_sequence_range(numbers["start"], numbers["end"])
        except ValidationError as exc:
            raise CommandRefused({"end": list(exc.messages)}) from None
        check = phase_check(tree=tree, shot=shot, phase=phase)
        cmd.pulse(check.tree, check.shot)
        cmd.arguments.update(tree=check.tree, shot=check.shot, phase=check.phase, **numbers)
        if check.needs_confirmation and not confirm:
            raise ConfirmationRequired(check)
        client = _client()
        msg = p.do_sequence_message(
            check.tree, check.shot, check.phase, numbers["start"], numbers["end"]
        )
        cmd.send(client, [Op("PUBLISH", p.DISPATCHER_COMMANDS, (msg,))])
        return cmd.done(
            f"Do sequence {numbers['start']}..{numbers['end']} of phase {check.phase} of "
            f"{check.tree} {check.shot} sent to the dispatcher.",
            warnings=check.warnings,
            details={"check": check},
        )


def _plain_dispatcher_command(verb: str, actor: Actor, reason: str, what: str) -> CommandResult:
    with _command(actor, verb, {}, reason) as cmd:
        client = _client()
        cmd.send(
            client, [Op("PUBLISH", p.DISPATCHER_COMMANDS, (p.dispatcher_command_message(verb),))]
        )
        return cmd.done(what)


def sequence_abort(*, actor: Actor, reason: str = "") -> CommandResult:
    """Abandon the running sequence (running actions go on: abort them one by one)."""
    return _plain_dispatcher_command(
        p.CMD_ABORT, actor, reason, "Abort sent: the dispatcher abandons the running sequence."
    )


def pending_abort(*, actor: Actor, reason: str = "") -> CommandResult:
    """Mark every pending action Aborted and abandon the sequence."""
    return _plain_dispatcher_command(
        p.CMD_ABORT_PENDING, actor, reason, "Abort pending sent to the dispatcher."
    )


def pending_print(*, actor: Actor, reason: str = "") -> CommandResult:
    """Ask the dispatcher to print its pending actions on its own terminal."""
    return _plain_dispatcher_command(
        p.CMD_PRINT_PENDING,
        actor,
        reason,
        "Print pending sent (the output is on the dispatcher's terminal).",
    )


def dispatcher_quit(*, actor: Actor, reason: str = "") -> CommandResult:
    """Make the dispatcher exit."""
    return _plain_dispatcher_command(p.CMD_QUIT, actor, reason, "Quit sent: the dispatcher exits.")


def dispatcher_command_send(
    *, text: Any, actor: Actor, confirm: bool = False, reason: str = ""
) -> CommandResult:
    """A free-text dispatcher command (``do_sequence:DEMO:42:INIT:10:20``,
    ``abort_pending``, ...), parsed against the grammar and then run by the
    service of that command: never passed on raw."""
    actor.require_operator()
    try:
        parsed = v.clean_dispatcher_command(text)
    except ValidationError as exc:
        with _command(actor, "dispatcher_command", {"text": text}, reason):
            raise CommandRefused({"text": list(exc.messages)}) from None
    if parsed.verb == p.CMD_CREATE_PULSE:
        return pulse_create(tree=parsed.tree, shot=parsed.shot, actor=actor, reason=reason)
    if parsed.verb == p.CMD_BUILD_TABLES:
        return tables_build(tree=parsed.tree, shot=parsed.shot, actor=actor, reason=reason)
    if parsed.verb == p.CMD_DO_PHASE:
        return phase_do(
            tree=parsed.tree,
            shot=parsed.shot,
            phase=parsed.phase,
            actor=actor,
            confirm=confirm,
            reason=reason,
        )
    if parsed.verb == p.CMD_DO_SEQUENCE:
        return sequence_do(
            tree=parsed.tree,
            shot=parsed.shot,
            phase=parsed.phase,
            start=parsed.start,
            end=parsed.end,
            actor=actor,
            confirm=confirm,
            reason=reason,
        )
    if parsed.verb == p.CMD_ABORT:
        return sequence_abort(actor=actor, reason=reason)
    if parsed.verb == p.CMD_ABORT_PENDING:
        return pending_abort(actor=actor, reason=reason)
    if parsed.verb == p.CMD_PRINT_PENDING:
        return pending_print(actor=actor, reason=reason)
    return dispatcher_quit(actor=actor, reason=reason)


# --- single actions -------------------------------------------------------------

RUNNING_STATES = (p.STATE_DISPATCHED, p.STATE_DOING)


def _one_action(tree: Any, shot: Any, path: Any) -> tuple[str, int, str]:
    clean = _fields(
        tree=(v.clean_tree, tree), shot=(v.clean_shot, shot), path=(v.clean_action_path, path)
    )
    return clean["tree"], clean["shot"], clean["path"]


def action_dispatch(*, tree: Any, shot: Any, path: Any, actor: Actor) -> CommandResult:
    """Re-dispatch one action outside the dispatcher's sequence: a work item
    with NOTIFY ``0`` on its class's queue, then DO. The result lands only in
    ``ACTION_STATUS``/``ACTION_INFO``."""
    with _command(actor, "dispatch_action", {"tree": tree, "shot": shot, "path": path}) as cmd:
        t, s, path_ = _one_action(tree, shot, path)
        cmd.pulse(t, s)
        client = _client()
        ident, state = _action_of_pulse(client, t, s, path_)
        if state in RUNNING_STATES:
            raise CommandRefused(
                {"path": [f"{path_} is {state}: abort it before dispatching it again."]}
            )
        if state == p.STATE_OFF:
            raise CommandRefused({"path": [f"{path_} is switched off in the tree."]})
        cmd.arguments["server"] = ident
        cmd.send(
            client,
            [
                Op("LPUSH", p.server_todo_key(ident), (p.work_item(t, s, path_, notify="0"),)),
                Op("PUBLISH", p.server_channel(ident), (p.DO,)),
            ],
        )
        warnings = _server_warnings(client, ident)
        return cmd.done(f"{path_} dispatched to {ident}.", warnings=warnings)


def action_abort(
    *, tree: Any, shot: Any, path: Any, actor: Actor, reason: str = ""
) -> CommandResult:
    """Abort one running action: ABORT with the path exactly as stored, on
    the channel of the class that ``ACTION_SERVER_INFO`` names."""
    arguments = {"tree": tree, "shot": shot, "path": path}
    with _command(actor, "abort_action", arguments, reason) as cmd:
        t, s, path_ = _one_action(tree, shot, path)
        cmd.pulse(t, s)
        client = _client()
        ident, state = _action_of_pulse(client, t, s, path_)
        if state not in RUNNING_STATES:
            # An ABORT for a path no server runs stays in ABORT_REQUESTS for ever.
            raise CommandRefused(
                {
                    "path": [
                        f"{path_} is not running (state {state or 'unknown'}): nothing to abort."
                    ]
                }
            )
        cmd.arguments["server"] = ident
        cmd.send(client, [Op("PUBLISH", p.server_channel(ident), (p.abort_message(path_),))])
        return cmd.done(f"Abort of {path_} sent to {ident}.")


def actions_dispatch(
    *, tree: Any, shot: Any, paths: Sequence[Any], actor: Actor
) -> list[CommandResult | CommandRefused]:
    """Re-dispatch several actions; each is its own command (and record), so
    one refused path does not stop the others."""
    return _each(paths, lambda path: action_dispatch(tree=tree, shot=shot, path=path, actor=actor))


def actions_abort(
    *, tree: Any, shot: Any, paths: Sequence[Any], actor: Actor, reason: str = ""
) -> list[CommandResult | CommandRefused]:
    """Abort several actions, each on its own (see ``actions_dispatch``)."""
    return _each(
        paths,
        lambda path: action_abort(tree=tree, shot=shot, path=path, actor=actor, reason=reason),
    )


def _each(
    paths: Sequence[Any], run: Callable[[Any], CommandResult]
) -> list[CommandResult | CommandRefused]:
    if not paths:
        raise CommandRefused({"path": ["Select at least one action."]})
    out: list[CommandResult | CommandRefused] = []
    for path in paths:
        try:
            out.append(run(path))
        except RedisUnreachable:
            raise
        except CommandRefused as exc:
            out.append(exc)
    return out


@dataclass(frozen=True, slots=True)
class ActionLog:
    tree: str
    shot: int
    path: str
    server: str
    log: str | None  # None: the action never reported to the dispatcher


def action_log_read(*, tree: Any, shot: Any, path: Any) -> ActionLog:
    """The output captured while the action ran (``ACTION_LOG``). A read:
    no permission needed, nothing recorded."""
    t, s, path_ = _one_action(tree, shot, path)
    client = _client()
    ident, _state = _action_of_pulse(client, t, s, path_)
    with _reading():
        log = text(client.hget(p.action_log_key(t, s), path_))
    return ActionLog(t, s, path_, ident, log)


# --- servers ----------------------------------------------------------------------


def _server_warnings(client: redis.Redis, ident: str, server_id: str | None = None) -> list[str]:
    with _reading():
        active = decode_hash(client.hgetall(p.server_active_key(ident)))
    if server_id is not None:
        state = active.get(server_id)
        if state != p.SERVER_ON:
            return [
                f"Server {ident} {server_id} is {state or 'not registered'}: no one may hear it."
            ]
        return []
    if not any(state == p.SERVER_ON for state in active.values()):
        return [f"No server of {ident} is ON: the work item waits in its queue until one starts."]
    return []


def server_control(
    *, ident: Any, server_id: Any = "1", verb: str, actor: Actor, reason: str = ""
) -> CommandResult:
    """STOP, RESTART or QUIT one server (``VERB+ID`` on its class's channel)."""
    verb = str(verb).upper()
    if verb not in p.SERVER_CONTROL_VERBS:
        raise CommandRefused(f"Unknown server command {verb!r}: use STOP, RESTART or QUIT.")
    arguments = {"ident": ident, "server_id": server_id}
    with _command(actor, f"server_{verb.lower()}", arguments, reason) as cmd:
        clean = _fields(
            ident=(v.clean_server_class, ident), server_id=(v.clean_server_id, server_id)
        )
        client = _client()
        warnings = _server_warnings(client, clean["ident"], clean["server_id"])
        msg = p.server_control_message(verb, clean["server_id"])
        cmd.send(client, [Op("PUBLISH", p.server_channel(clean["ident"]), (msg,))])
        return cmd.done(
            f"{verb} sent to server {clean['ident']} {clean['server_id']}.", warnings=warnings
        )


def server_stop(
    *, ident: Any, server_id: Any = "1", actor: Actor, reason: str = ""
) -> CommandResult:
    return server_control(ident=ident, server_id=server_id, verb=p.STOP, actor=actor, reason=reason)


def server_restart(
    *, ident: Any, server_id: Any = "1", actor: Actor, reason: str = ""
) -> CommandResult:
    return server_control(
        ident=ident, server_id=server_id, verb=p.RESTART, actor=actor, reason=reason
    )


def server_quit(
    *, ident: Any, server_id: Any = "1", actor: Actor, reason: str = ""
) -> CommandResult:
    return server_control(ident=ident, server_id=server_id, verb=p.QUIT, actor=actor, reason=reason)


def _site_command(ident: str, verb: str) -> list[str]:
    base = settings.WEBMONITOR_SERVER_COMMAND
    if not base:
        raise CommandRefused(
            "No site command for starting and killing servers is configured: set "
            "WEBMONITOR_SERVER_COMMAND (IDENT and START or KILL are appended)."
        )
    if isinstance(base, str):  # a misconfigured setting; never hand it to a shell
        raise CommandRefused("WEBMONITOR_SERVER_COMMAND must be a list of arguments.")
    return [*map(str, base), ident, verb]


@dataclass(frozen=True, slots=True)
class SiteRun:
    """What one run of the site command gave; made without the database,
    so several can run at once in threads."""

    argv: list[str]
    returncode: int | None  # None: killed at the timeout
    output: str
    seconds: float
    error: OSError | None = None


def _site_process(argv: list[str]) -> SiteRun:
    timeout = settings.WEBMONITOR_SERVER_COMMAND_TIMEOUT
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - an argument list, no shell
            argv,
            capture_output=True,
            timeout=timeout,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return SiteRun(argv, None, _joined(exc.stdout, exc.stderr), time.monotonic() - started)
    except OSError as exc:
        return SiteRun(argv, None, "", time.monotonic() - started, error=exc)
    output = _joined(done.stdout, done.stderr)
    return SiteRun(argv, done.returncode, output, time.monotonic() - started)


def _run_site(
    ident: Any, verb: str, actor: Actor, reason: str, ran: SiteRun | None = None
) -> CommandResult:
    """One START or KILL, recorded; ``ran`` is a run already made for it
    (by ``servers_site_all``), else the command runs now."""
    with _command(actor, f"server_{verb.lower()}", {"ident": ident}, reason) as cmd:
        clean_ident = _field("ident", v.clean_server_class, ident)
        argv = _site_command(clean_ident, verb)
        cmd.arguments["argv"] = argv
        run = ran if ran is not None and ran.argv == argv else _site_process(argv)
        if run.error is not None:
            raise CommandRefused(f"The site command {argv[0]!r} cannot be run: {run.error}.")
        cmd.sent.append(Op("RUN", argv[0], tuple(argv[1:])))
        details = {"returncode": run.returncode, "output": run.output, "argv": argv}
        if run.returncode is None:
            timeout = settings.WEBMONITOR_SERVER_COMMAND_TIMEOUT
            return cmd.done(
                f"{verb} of {clean_ident}: the site command did not finish within {timeout:g} s "
                "and was killed.",
                ok=False,
                details={**details, "timed_out": True},
                extra=run.output,
            )
        ok = run.returncode == 0
        message = (
            f"{verb} of {clean_ident}: the site command "
            + ("succeeded" if ok else f"failed with exit status {run.returncode}")
            + f" ({run.seconds:.1f} s)."
        )
        return cmd.done(message, ok=ok, details={**details, "timed_out": False}, extra=run.output)


def servers_site_all(
    *, idents: Sequence[str], verb: str, actor: Actor, reason: str = ""
) -> list[CommandResult | CommandRefused]:
    """START or KILL of many classes (Start all, Kill all): the site
    commands run side by side, at most WEBMONITOR_SERVER_COMMAND_PARALLEL at
    a time, so 200 classes take about 200 / that many runs rather than 200;
    each class is still its own command and record, in the order given."""
    actor.require_operator()
    try:
        v.clean_reason(reason)
    except ValidationError as exc:
        raise CommandRefused({"reason": list(exc.messages)}) from None
    argvs: dict[str, list[str]] = {}
    for ident in idents:
        try:
            argvs[ident] = _site_command(v.clean_server_class(ident), verb)
        except (ValidationError, CommandRefused):
            pass  # refused and recorded below, without running anything
    runs: dict[str, SiteRun] = {}
    if argvs:
        workers = max(1, min(settings.WEBMONITOR_SERVER_COMMAND_PARALLEL, len(argvs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="site") as pool:
            runs = dict(zip(argvs, pool.map(_site_process, argvs.values()), strict=True))
    out: list[CommandResult | CommandRefused] = []
    for ident in idents:
        try:
            out.append(_run_site(ident, verb, actor, reason, ran=runs.get(ident)))
        except CommandRefused as exc:
            out.append(exc)
    return out


def _joined(stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    parts = [text(x) if isinstance(x, bytes) else x for x in (stdout, stderr)]
    return "".join(x for x in parts if x)[-OUTPUT_MAX:]


def server_start(*, ident: Any, actor: Actor, reason: str = "") -> CommandResult:
    """Start the servers of a class with the site command (``IDENT START``)."""
    return _run_site(ident, p.SITE_START, actor, reason)


def server_kill(*, ident: Any, actor: Actor, reason: str = "") -> CommandResult:
    """Kill the servers of a class with the site command (``IDENT KILL``)."""
    return _run_site(ident, p.SITE_KILL, actor, reason)


def last_site_output(*, ident: str) -> CommandRecord | None:
    """The record of the last START or KILL of a class (its output is in
    ``result``), for the Server log."""
    return (
        CommandRecord.objects.filter(
            command__in=[f"server_{verb.lower()}" for verb in p.SITE_VERBS],
            arguments__ident=ident,
        )
        .order_by("-created")
        .first()
    )


# --- the Log Viewer ---------------------------------------------------------------


def log_message_write(*, message: Any, actor: Actor) -> str:
    """Append a message typed by a user to the pub/sub log; returns the
    line's message. Any signed-in user may write one."""
    clean = _field("message", v.clean_log_message, message)
    line = f"{actor.username}: {clean}"
    _log_line(line, pubsub_log.OPERATOR_NOTE)
    return line
