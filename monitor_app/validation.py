"""One set of validators for every operator input, shared by the forms and
the services, so the browser and the shell refuse exactly the same things.

Each ``clean_*`` function takes what a user typed (or an int) and returns the
value as it is sent to Redis, or raises Django's ``ValidationError`` with a
message that says what is wrong. ``+`` and ``:`` separate fields in keys and
messages, so they never get through.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from monitor_app import protocol as p

NAME_MAX = 64  # CommandRecord.tree is 64 characters; no MDSplus name is longer
PATH_MAX = 512
REASON_MAX = 500
MESSAGE_MAX = 1000
COMMAND_TEXT_MAX = 300
SERVER_ID_MAX = 6


def _as_text(value: object, what: str) -> str:
    if value is None:
        raise ValidationError(f"{what} is required.", code="required")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(f"{what} must be text.", code="invalid")
    text = str(value).strip()
    if not text:
        raise ValidationError(f"{what} is required.", code="required")
    return text


def _printable(text: str) -> bool:
    return text.isascii() and text.isprintable()


def clean_tree(value: object) -> str:
    """A tree name: a letter, then letters, digits or ``_``; sent upper-cased."""
    text = _as_text(value, "Tree")
    if len(text) > NAME_MAX:
        raise ValidationError(f"Tree name is longer than {NAME_MAX} characters.", code="invalid")
    if p.TREE_RE.fullmatch(text) is None:
        raise ValidationError(
            f"Tree {_show(text)} is not a tree name: use a letter followed by letters, "
            "digits or _.",
            code="invalid",
        )
    return text.upper()


def clean_shot(value: object) -> int:
    """A shot number: a positive integer that fits 32 bits (signed, as MDSplus)."""
    text = _as_text(value, "Shot")
    if not (text.isascii() and text.isdigit()):
        raise ValidationError(
            f"Shot {_show(text)} is not a shot number: use a positive whole number.",
            code="invalid",
        )
    if len(text) > 12 or not 1 <= int(text) <= p.SHOT_MAX:
        raise ValidationError(
            f"Shot {_show(text)} is out of range: use 1 to {p.SHOT_MAX}.", code="invalid"
        )
    return int(text)


def _clean_name(value: object, what: str) -> str:
    text = _as_text(value, what)
    if len(text) > NAME_MAX:
        raise ValidationError(f"{what} is longer than {NAME_MAX} characters.", code="invalid")
    if p.NAME_RE.fullmatch(text) is None:
        raise ValidationError(
            f"{what} {_show(text)} may hold only letters, digits and _.", code="invalid"
        )
    return text


def clean_phase(value: object) -> str:
    """A phase name; sent upper-cased, as the tables hold it."""
    return _clean_name(value, "Phase").upper()


def clean_server_class(value: object) -> str:
    """A server class (IDENT), kept as typed: the keys are case-sensitive."""
    return _clean_name(value, "Server class")


def clean_server_id(value: object) -> str:
    """A server id: digits, without leading zeros (``01`` is not the key ``1``)."""
    text = _as_text(value, "Server id")
    if not (text.isascii() and text.isdigit()) or len(text) > SERVER_ID_MAX:
        raise ValidationError(
            f"Server id {_show(text)} is not a server id: use digits, such as 1.",
            code="invalid",
        )
    return str(int(text))


def clean_sequence_number(value: object, what: str = "Sequence number") -> int:
    text = _as_text(value, what)
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > p.SHOT_MAX:
        raise ValidationError(
            f"{what} {_show(text)} is not a sequence number: use 0 to {p.SHOT_MAX}.",
            code="invalid",
        )
    return int(text)


def clean_action_path(value: object) -> str:
    """The shape of an action path only; whether it is an action of the pulse
    is checked against Redis by the service. Kept exactly as given, since the
    server ignores any other spelling of the stored path."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Action path is required.", code="required")
    if value != value.strip():
        raise ValidationError("Action path has spaces around it.", code="invalid")
    if len(value) > PATH_MAX:
        raise ValidationError(f"Action path is longer than {PATH_MAX} characters.", code="invalid")
    if not _printable(value) or " " in value:
        raise ValidationError(
            f"Action path {_show(value)} holds characters no MDSplus path has.", code="invalid"
        )
    if "+" in value:
        raise ValidationError("Action path may not contain + (a field separator).", code="invalid")
    return value


def clean_reason(value: object) -> str:
    """An optional reason for a destructive command, one line."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("Reason must be text.", code="invalid")
    text = " ".join(value.split())
    if len(text) > REASON_MAX:
        raise ValidationError(f"Reason is longer than {REASON_MAX} characters.", code="invalid")
    return text


def clean_log_message(value: object) -> str:
    """A message typed into the Log Viewer: one line of text."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Message is required.", code="required")
    text = " ".join(value.split())
    if len(text) > MESSAGE_MAX:
        raise ValidationError(f"Message is longer than {MESSAGE_MAX} characters.", code="invalid")
    return text


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A dispatcher command checked against the grammar, with clean values."""

    verb: str
    tree: str | None = None
    shot: int | None = None
    phase: str | None = None
    start: int | None = None
    end: int | None = None

    @property
    def message(self) -> str:
        """The message as the protocol builders spell it, never the raw text."""
        if self.verb == p.CMD_CREATE_PULSE:
            return p.create_pulse_message(self.tree, self.shot)
        if self.verb == p.CMD_BUILD_TABLES:
            return p.build_tables_message(self.tree, self.shot)
        if self.verb == p.CMD_DO_PHASE:
            return p.do_phase_message(self.tree, self.shot, self.phase)
        if self.verb == p.CMD_DO_SEQUENCE:
            return p.do_sequence_message(self.tree, self.shot, self.phase, self.start, self.end)
        return p.dispatcher_command_message(self.verb)


def _grammar() -> str:
    return ", ".join(":".join([verb, *_ARG_NAMES[verb]]) for verb in p.DISPATCHER_COMMAND_ARITY)


_ARG_NAMES = {
    p.CMD_CREATE_PULSE: ("TREE", "SHOT"),
    p.CMD_BUILD_TABLES: ("TREE", "SHOT"),
    p.CMD_DO_PHASE: ("TREE", "SHOT", "PHASE"),
    p.CMD_DO_SEQUENCE: ("TREE", "SHOT", "PHASE", "START", "END"),
    p.CMD_ABORT: (),
    p.CMD_ABORT_PENDING: (),
    p.CMD_PRINT_PENDING: (),
    p.CMD_QUIT: (),
}


def clean_dispatcher_command(value: object) -> ParsedCommand:
    """Parse a free-text dispatcher command against the grammar of
    PROTOCOL.md; every argument goes through its own validator."""
    text = _as_text(value, "Command")
    if len(text) > COMMAND_TEXT_MAX:
        raise ValidationError("Command is too long.", code="invalid")
    verb, *args = text.split(":")
    verb = verb.strip().lower()
    if verb not in p.DISPATCHER_COMMAND_ARITY:
        raise ValidationError(
            f"Unknown dispatcher command {_show(verb)}. Commands: {_grammar()}.", code="invalid"
        )
    names = _ARG_NAMES[verb]
    if len(args) != len(names):
        if not names:
            raise ValidationError(f"{verb} takes no arguments: send {verb} alone.", code="invalid")
        usage = ":".join([verb, *names])
        count = "1 argument" if len(names) == 1 else f"{len(names)} arguments"
        raise ValidationError(f"{verb} takes {count}: {usage}.", code="invalid")
    if verb in (p.CMD_CREATE_PULSE, p.CMD_BUILD_TABLES):
        return ParsedCommand(verb, tree=clean_tree(args[0]), shot=clean_shot(args[1]))
    if verb == p.CMD_DO_PHASE:
        return ParsedCommand(
            verb, tree=clean_tree(args[0]), shot=clean_shot(args[1]), phase=clean_phase(args[2])
        )
    if verb == p.CMD_DO_SEQUENCE:
        start = clean_sequence_number(args[3], "START")
        end = clean_sequence_number(args[4], "END")
        check_sequence_range(start, end)
        return ParsedCommand(
            verb,
            tree=clean_tree(args[0]),
            shot=clean_shot(args[1]),
            phase=clean_phase(args[2]),
            start=start,
            end=end,
        )
    return ParsedCommand(verb)


def check_sequence_range(start: int, end: int) -> None:
    if start > end:
        raise ValidationError(f"START {start} is after END {end}.", code="invalid")


def _show(text: str) -> str:
    """Quote user input for a message, escaping what does not print."""
    shown = text if len(text) <= 40 else text[:40] + "..."
    return repr(shown)
