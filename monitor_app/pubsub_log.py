"""The pub/sub log file: one line per message, ``YYYY-MM-DD HH:MM:SS -
CHANNEL | MESSAGE``, as today's tool writes it. Several processes append
to it (the recorder, commands, operators' notes), so each line is one
``O_APPEND`` write and only the recorder rotates the file."""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.conf import settings

#: Channel names the console uses for lines that are not Redis messages.
CONSOLE_COMMAND = "WEBMONITOR_COMMAND"
OPERATOR_NOTE = "WEBMONITOR_MESSAGE"


def format_line(channel: str, message: str, when: float | None = None) -> str:
    """One line, whatever the message holds: newlines are written as ``\\n``."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    flat = message.replace("\r", "\\r").replace("\n", "\\n")
    return f"{stamp} - {channel} | {flat}\n"


def append_line(channel: str, message: str, path: Path | None = None) -> None:
    path = Path(path or settings.WEBMONITOR_PUBSUB_LOG)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = format_line(channel, message).encode("utf-8", errors="replace")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def rotate_if_needed(path: Path, max_bytes: int, backups: int) -> bool:
    """Size-based rotation: ``log`` -> ``log.1`` -> ... -> ``log.N``."""
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    for index in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{index + 1}"))
    if backups > 0:
        path.replace(path.with_name(f"{path.name}.1"))
    else:
        path.unlink(missing_ok=True)
    return True
