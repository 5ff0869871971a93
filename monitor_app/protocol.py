"""The Redis protocol of the MDSplus Redis action dispatcher.

Every key name, channel name, message layout and state value that the
dispatcher and its action servers use is spelled here and nowhere else, so
that the contract with the real system (PROTOCOL.md) can be read in one file.
Parsers never raise on bad input: the dispatcher's data is not ours, and a
malformed message or key simply yields ``None``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

# --- keys ---------------------------------------------------------------------

ACTION_INFO: Final = "ACTION_INFO"  # ACTION_INFO:TREE:SHOT:IDENT  PATH -> state
ACTION_STATUS: Final = "ACTION_STATUS"  # ACTION_STATUS:TREE:SHOT  PATH -> status
ACTION_PHASE_INFO: Final = "ACTION_PHASE_INFO"  # PATH -> phase
ACTION_SERVER_INFO: Final = "ACTION_SERVER_INFO"  # PATH -> IDENT
ACTION_LOG: Final = "ACTION_LOG"  # PATH -> captured output
CURRENT_PHASE: Final = "CURRENT_PHASE"  # TREE -> phase
DISPATCH_INFO: Final = "DISPATCH_INFO"  # CURR_TREE, CURR_SHOT, CURR_PHASE
DISPATCH_DEFAULT: Final = "DISPATCH_DEFAULT"  # TREE, SHOT
LAST_BUILD_TABLE: Final = "LAST_BUILD_TABLE"  # JSON {"tree": .., "shot": ..}
SERVER_ACTIVE: Final = "ACTION_SERVER_ACTIVE"  # :IDENT  ID -> ON/OFF
SERVER_HEARTBEAT: Final = "ACTION_SERVER_HEARTBEAT"  # :IDENT  ID -> counter
SERVER_DOING: Final = "ACTION_SERVER_DOING"  # :IDENT  ID -> count
SERVER_IP: Final = "ACTION_SERVER_IP"  # :IDENT  ID -> address
SERVER_TODO: Final = "ACTION_SERVER_TODO"  # :IDENT  list of work items
ABORT_REQUESTS: Final = "ABORT_REQUESTS"  # :IDENT  PATH -> 1/0

DISPATCH_INFO_TREE: Final = "CURR_TREE"
DISPATCH_INFO_SHOT: Final = "CURR_SHOT"
DISPATCH_INFO_PHASE: Final = "CURR_PHASE"
DISPATCH_DEFAULT_TREE: Final = "TREE"
DISPATCH_DEFAULT_SHOT: Final = "SHOT"

# --- channels -----------------------------------------------------------------

DISPATCHER_COMMANDS: Final = "ACTION_DISPATCHER_COMMANDS"
SERVER_PUBSUB: Final = "ACTION_SERVER_PUBSUB"  # :IDENT
MONITOR_PUBSUB: Final = "DISPATCH_MONITOR_PUBSUB"
DISPATCHER_PUBSUB: Final = "ACTION_DISPATCHER_PUBSUB"

#: Patterns that cover every channel family the dispatcher system uses,
#: including server channels that only appear later.
CHANNEL_PATTERNS: Final = (
    DISPATCHER_COMMANDS,
    MONITOR_PUBSUB,
    DISPATCHER_PUBSUB,
    SERVER_PUBSUB + ":*",
)

#: Channel names of the console's own lines in the pub/sub log file (no
#: dispatcher process publishes on them): commands the console ran, and
#: messages typed by operators.

# --- values -------------------------------------------------------------------

STATE_NOT_DISPATCHED: Final = "NOT_DISPATCHED"
STATE_DISPATCHED: Final = "DISPATCHED"
STATE_DOING: Final = "DOING"
STATE_DONE: Final = "DONE"
STATE_SERVER_OFF: Final = "SERVER_OFF"
STATE_OFF: Final = "OFF"
STATES: Final = frozenset(
    {
        STATE_NOT_DISPATCHED,
        STATE_DISPATCHED,
        STATE_DOING,
        STATE_DONE,
        STATE_SERVER_OFF,
        STATE_OFF,
    }
)

STATUS_BUILT: Final = "none"  # built and not run; also dependent dispatch
STATUS_RUNNING: Final = "None"  # sequential dispatch, not finished
STATUS_SUCCESS: Final = "Success"
STATUS_FAILURE: Final = "Failure"
STATUS_ABORTED: Final = "Aborted"
STATUS_NOT_EXECUTED: Final = "NotExecuted"
STATUS_CRASHED: Final = "ServerCrashed"
STATUS_UNKNOWN_ERROR: Final = "Unknown Error"
STATUSES: Final = frozenset(
    {
        STATUS_BUILT,
        STATUS_RUNNING,
        STATUS_SUCCESS,
        STATUS_FAILURE,
        STATUS_ABORTED,
        STATUS_NOT_EXECUTED,
        STATUS_CRASHED,
        STATUS_UNKNOWN_ERROR,
    }
)
UNFINISHED_STATUSES: Final = frozenset({STATUS_BUILT, STATUS_RUNNING})

SERVER_ON: Final = "ON"
SERVER_OFF: Final = "OFF"

UNKNOWN: Final = "unknown"

# Server-channel verbs.
DO: Final = "DO"
ABORT: Final = "ABORT"
HEARTBEAT: Final = "HEARTBEAT"
STOP: Final = "STOP"
RESTART: Final = "RESTART"
QUIT: Final = "QUIT"
SERVER_CONTROL_VERBS: Final = (STOP, RESTART, QUIT)

# Verbs appended to the site command (WEBMONITOR_SERVER_COMMAND) after IDENT:
# starting and killing a server is site-specific, nothing in Redis does it.
SITE_START: Final = "START"
SITE_KILL: Final = "KILL"
SITE_VERBS: Final = (SITE_START, SITE_KILL)

# Dispatcher commands.
CMD_CREATE_PULSE: Final = "create_pulse"
CMD_BUILD_TABLES: Final = "build_tables"
CMD_DO_PHASE: Final = "do_phase"
CMD_DO_SEQUENCE: Final = "do_sequence"
CMD_ABORT: Final = "abort"
CMD_ABORT_PENDING: Final = "abort_pending"
CMD_PRINT_PENDING: Final = "print_pending"
CMD_QUIT: Final = "quit"

#: How many ``:``-separated arguments follow each dispatcher command.
DISPATCHER_COMMAND_ARITY: Final = {
    CMD_CREATE_PULSE: 2,
    CMD_BUILD_TABLES: 2,
    CMD_DO_PHASE: 3,
    CMD_DO_SEQUENCE: 5,
    CMD_ABORT: 0,
    CMD_ABORT_PENDING: 0,
    CMD_PRINT_PENDING: 0,
    CMD_QUIT: 0,
}

# Monitor-channel verbs.
MSG_DOING: Final = "DOING"
MSG_DONE: Final = "DONE"
MSG_END_PHASE: Final = "END_PHASE"

# Validation of names that go into keys and messages (``+`` and ``:`` are
# separators, so no name may contain them).
TREE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
NAME_RE: Final = re.compile(r"[A-Za-z0-9_]+")  # phase, server class
SERVER_ID_RE: Final = re.compile(r"[0-9]+")
SHOT_MAX: Final = 2**31 - 1


# --- key names ----------------------------------------------------------------


def action_info_key(tree: str, shot: str | int, ident: str) -> str:
    return f"{ACTION_INFO}:{tree}:{shot}:{ident}"


def action_info_pattern(tree: str, shot: str | int) -> str:
    return f"{ACTION_INFO}:{_glob_escape(tree)}:{_glob_escape(str(shot))}:*"


def action_status_key(tree: str, shot: str | int) -> str:
    return f"{ACTION_STATUS}:{tree}:{shot}"


def action_phase_key(tree: str, shot: str | int) -> str:
    return f"{ACTION_PHASE_INFO}:{tree}:{shot}"


def action_server_key(tree: str, shot: str | int) -> str:
    return f"{ACTION_SERVER_INFO}:{tree}:{shot}"


def action_log_key(tree: str, shot: str | int) -> str:
    return f"{ACTION_LOG}:{tree}:{shot}"


def server_active_key(ident: str) -> str:
    return f"{SERVER_ACTIVE}:{ident}"


def server_heartbeat_key(ident: str) -> str:
    return f"{SERVER_HEARTBEAT}:{ident}"


def server_doing_key(ident: str) -> str:
    return f"{SERVER_DOING}:{ident}"


def server_ip_key(ident: str) -> str:
    return f"{SERVER_IP}:{ident}"


def server_todo_key(ident: str) -> str:
    return f"{SERVER_TODO}:{ident}"


def abort_requests_key(ident: str) -> str:
    return f"{ABORT_REQUESTS}:{ident}"


def server_channel(ident: str) -> str:
    return f"{SERVER_PUBSUB}:{ident}"


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A dispatcher key name taken apart; fields not in the key are ``""``."""

    family: str
    tree: str = ""
    shot: str = ""
    ident: str = ""


_PULSE_FAMILIES = (ACTION_STATUS, ACTION_PHASE_INFO, ACTION_SERVER_INFO, ACTION_LOG)
_SERVER_FAMILIES = (
    SERVER_ACTIVE,
    SERVER_HEARTBEAT,
    SERVER_DOING,
    SERVER_IP,
    SERVER_TODO,
    ABORT_REQUESTS,
)


def parse_key(name: str) -> KeyRef | None:
    """Split a key name into its family and names, or ``None`` if it is not
    one of the dispatcher's keys (an extra ``:`` makes a key not ours)."""
    parts = name.split(":")
    family = parts[0]
    if family == ACTION_INFO and len(parts) == 4:
        tree, shot, ident = parts[1:]
        if _valid_tree(tree) and _valid_shot(shot) and _valid_name(ident):
            return KeyRef(family, tree, shot, ident)
    elif family in _PULSE_FAMILIES and len(parts) == 3:
        tree, shot = parts[1:]
        if _valid_tree(tree) and _valid_shot(shot):
            return KeyRef(family, tree, shot)
    elif family in _SERVER_FAMILIES and len(parts) == 2:
        if _valid_name(parts[1]):
            return KeyRef(family, ident=parts[1])
    elif len(parts) == 1 and family in (
        CURRENT_PHASE,
        DISPATCH_INFO,
        DISPATCH_DEFAULT,
        LAST_BUILD_TABLE,
    ):
        return KeyRef(family)
    return None


def pulse_idents(names, tree: str, shot: str | int) -> list[str]:
    """The server classes of a pulse, from the names a SCAN of
    ``action_info_pattern`` returned (a glob may match more than it should)."""
    idents = set()
    for name in names:
        ref = parse_key(name)
        if (
            ref is not None
            and ref.family == ACTION_INFO
            and (ref.tree, ref.shot) == (tree, str(shot))
        ):
            idents.add(ref.ident)
    return sorted(idents)


def _valid_tree(text: str) -> bool:
    return TREE_RE.fullmatch(text) is not None


def _valid_name(text: str) -> bool:
    return NAME_RE.fullmatch(text) is not None


def _valid_shot(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 <= int(text) <= SHOT_MAX


# --- messages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Doing:
    """Server ``server_id`` of class ``ident`` accepted the action."""

    tree: str
    shot: str
    ident: str
    server_id: str
    path: str
    nid: str


@dataclass(frozen=True, slots=True)
class Done:
    """The action finished with ``status``."""

    tree: str
    shot: str
    ident: str
    server_id: str
    path: str
    nid: str
    status: str


@dataclass(frozen=True, slots=True)
class EndPhase:
    """Nothing is pending right now (not: the phase is over)."""

    tree: str
    shot: str
    phase: str


@dataclass(frozen=True, slots=True)
class Completion:
    """Server to dispatcher: an action finished; ``log`` may hold ``+``."""

    tree: str
    shot: str
    ident: str
    path: str
    status: str
    log: str


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """A message on ``ACTION_SERVER_PUBSUB:IDENT``: ``DO``, ``ABORT+PATH``,
    ``HEARTBEAT+ID``, ``STOP+ID``, ``RESTART+ID``, ``QUIT+ID``."""

    ident: str
    verb: str
    argument: str = ""


@dataclass(frozen=True, slots=True)
class DispatcherCommand:
    """A command on ``ACTION_DISPATCHER_COMMANDS``; ``args`` as sent."""

    verb: str
    args: tuple[str, ...] = ()


def parse_monitor_message(data: str) -> Doing | Done | EndPhase | None:
    """Parse a ``DISPATCH_MONITOR_PUBSUB`` message (split on ``+`` only)."""
    parts = data.split("+")
    verb = parts[0]
    if verb == MSG_DOING and len(parts) == 7:
        return Doing(*parts[1:])
    if verb == MSG_DONE and len(parts) == 8:
        return Done(*parts[1:])
    if verb == MSG_END_PHASE and len(parts) == 4:
        return EndPhase(*parts[1:])
    return None


def parse_completion(data: str) -> Completion | None:
    """Parse an ``ACTION_DISPATCHER_PUBSUB`` message; the log keeps its ``+``."""
    parts = data.split("+", 5)
    if len(parts) < 5:
        return None
    if len(parts) == 5:
        parts.append("")
    return Completion(*parts)


def parse_server_message(channel: str, data: str) -> ServerMessage | None:
    """Parse a message on a server channel; ``None`` for anything else."""
    prefix = SERVER_PUBSUB + ":"
    if not channel.startswith(prefix):
        return None
    ident = channel[len(prefix) :]
    if not ident:
        return None
    verb, _, argument = data.partition("+")
    if verb == DO and not argument:
        return ServerMessage(ident, DO)
    if verb == ABORT and argument:
        return ServerMessage(ident, ABORT, argument)
    if verb in (HEARTBEAT, *SERVER_CONTROL_VERBS) and SERVER_ID_RE.fullmatch(argument):
        return ServerMessage(ident, verb, argument)
    return None


def parse_dispatcher_command(data: str) -> DispatcherCommand | None:
    """Parse a dispatcher command; the verb is matched without regard to case
    (the reference command-line tool sends ``ABORT`` in capitals)."""
    verb, *args = data.split(":")
    verb = verb.lower()
    arity = DISPATCHER_COMMAND_ARITY.get(verb)
    if arity is None or len(args) != arity:
        return None
    return DispatcherCommand(verb, tuple(args))


def is_heartbeat(channel: str, data: str) -> bool:
    return channel.startswith(SERVER_PUBSUB + ":") and data.startswith(HEARTBEAT + "+")


# --- builders -------------------------------------------------------------------


def create_pulse_message(tree: str, shot: str | int) -> str:
    return f"{CMD_CREATE_PULSE}:{tree}:{shot}"


def build_tables_message(tree: str, shot: str | int) -> str:
    return f"{CMD_BUILD_TABLES}:{tree}:{shot}"


def do_phase_message(tree: str, shot: str | int, phase: str) -> str:
    return f"{CMD_DO_PHASE}:{tree}:{shot}:{phase}"


def do_sequence_message(tree: str, shot: str | int, phase: str, start: int, end: int) -> str:
    return f"{CMD_DO_SEQUENCE}:{tree}:{shot}:{phase}:{start}:{end}"


def dispatcher_command_message(verb: str, *args: str | int) -> str:
    return ":".join([verb, *(str(a) for a in args)])


def work_item(
    tree: str,
    shot: str | int,
    path: str,
    *,
    nid: int = 0,
    timeout: int = 0,
    notify: str | None = "0",
) -> str:
    """A work item for ``ACTION_SERVER_TODO:IDENT``; ``notify=None`` leaves the
    sixth field out, as the dispatcher itself does."""
    fields = [tree, str(shot), path, str(nid), str(timeout)]
    if notify is not None:
        fields.append(notify)
    return "+".join(fields)


def parse_work_item(item: str) -> tuple[str, str, str, str, str, str] | None:
    """``(tree, shot, path, nid, timeout, notify)``; notify ``"1"`` if absent."""
    parts = item.split("+")
    if len(parts) == 5:
        parts.append("1")
    if len(parts) != 6:
        return None
    return tuple(parts)  # type: ignore[return-value]


def abort_message(path: str) -> str:
    return f"{ABORT}+{path}"


def heartbeat_message(server_id: str | int) -> str:
    return f"{HEARTBEAT}+{server_id}"


def server_control_message(verb: str, server_id: str | int) -> str:
    if verb not in SERVER_CONTROL_VERBS:
        raise ValueError(f"not a server control verb: {verb!r}")
    return f"{verb}+{server_id}"


def doing_message(
    tree: str, shot: str | int, ident: str, server_id: str | int, path: str, nid: int | str
) -> str:
    return "+".join([MSG_DOING, tree, str(shot), ident, str(server_id), path, str(nid)])


def done_message(
    tree: str,
    shot: str | int,
    ident: str,
    server_id: str | int,
    path: str,
    nid: int | str,
    status: str,
) -> str:
    return "+".join([MSG_DONE, tree, str(shot), ident, str(server_id), path, str(nid), status])


def end_phase_message(tree: str, shot: str | int, phase: str) -> str:
    return f"{MSG_END_PHASE}+{tree}+{shot}+{phase}"


def completion_message(
    tree: str, shot: str | int, ident: str, path: str, status: str, log: str
) -> str:
    return "+".join([tree, str(shot), ident, path, status, log])


def last_build_table_value(tree: str, shot: str | int) -> str:
    return json.dumps({"tree": tree, "shot": str(shot)})


def parse_last_build_table(value: str | None) -> tuple[str, str] | None:
    """``(tree, shot)`` from ``LAST_BUILD_TABLE``, ``None`` if not usable JSON."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    tree, shot = data.get("tree"), data.get("shot")
    if not isinstance(tree, str) or not isinstance(shot, (str, int)):
        return None
    shot = str(shot)
    if not _valid_tree(tree) or not _valid_shot(shot):
        return None
    return tree, shot


# --- presentation categories ------------------------------------------------------

CATEGORY_WAITING: Final = "waiting"  # blue
CATEGORY_SUCCESS: Final = "success"  # green
CATEGORY_FAILED: Final = "failed"  # red
CATEGORY_OFF: Final = "off"  # grey
CATEGORY_BUSY: Final = "busy"  # orange: dispatched, doing, anything else


def action_category(state: str, status: str) -> str:
    """The colour class of an action row, as the reference console colours it."""
    if state == STATE_NOT_DISPATCHED:
        return CATEGORY_WAITING
    if state == STATE_DONE and status == STATUS_SUCCESS:
        return CATEGORY_SUCCESS
    if state == STATE_DONE and status in (STATUS_FAILURE, STATUS_ABORTED):
        return CATEGORY_FAILED
    if state in (STATE_OFF, STATE_SERVER_OFF):
        return CATEGORY_OFF
    return CATEGORY_BUSY


def known_state(value: str | None) -> str:
    return value if value in STATES else UNKNOWN


def known_status(value: str | None) -> str:
    return value if value in STATUSES else UNKNOWN
