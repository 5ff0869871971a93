"""Names of the keys the console writes itself, all under its own prefix so
that no dispatcher key is ever touched (``WEBMONITOR_KEY_PREFIX``)."""

from __future__ import annotations

from django.conf import settings


def _p() -> str:
    return settings.WEBMONITOR_KEY_PREFIX


def doing_at_key(tree: str, shot: str) -> str:
    """Hash PATH -> when its DOING message was seen (the Duration column)."""
    return f"{_p()}:DOING_AT:{tree}:{shot}"


def done_at_key(tree: str, shot: str) -> str:
    """Hash PATH -> when its DONE message was seen; cleared by a new DOING."""
    return f"{_p()}:DONE_AT:{tree}:{shot}"


def heartbeat_seen_key() -> str:
    """Hash ``IDENT:ID`` -> time of the last ``HEARTBEAT+ID`` seen."""
    return f"{_p()}:HEARTBEAT_SEEN"


def heartbeat_advanced_key() -> str:
    """Hash ``IDENT:ID`` -> ``"counter ts"``: when the counter last moved."""
    return f"{_p()}:HEARTBEAT_ADVANCED"


def server_message_seen_key() -> str:
    """Hash IDENT -> time of the last message of any kind on its channel."""
    return f"{_p()}:SERVER_MESSAGE_SEEN"


def reader_state_key() -> str:
    """Hash of the reader's own observations (``last_heartbeat``,
    ``tables_seen``, ``activity:TREE:SHOT``, ``end_phase:TREE:SHOT``)."""
    return f"{_p()}:READER"


def reader_lock_key() -> str:
    return f"{_p()}:READER_LOCK"


def watched_pulses_key() -> str:
    """Sorted set ``TREE:SHOT`` -> expiry time: pulses someone is looking at."""
    return f"{_p()}:WATCHED"
