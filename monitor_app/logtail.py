"""Following the pub/sub log file for the Log Viewer: the last lines for a
first page, then new lines as they are written. The file may be missing,
truncated or rotated at any moment; each of those just starts it afresh."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from pathlib import Path

from monitor_app import push
from monitor_app.hub import TOPIC_LOGS, Hub

log = logging.getLogger(__name__)

TAIL_LINES = 200
CHECK_SECONDS = 0.25
MAX_READ = 1024 * 1024


def last_lines(path: Path, count: int = TAIL_LINES) -> list[str]:
    """The last ``count`` lines, read from the end so a big file costs little."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            block, data = 64 * 1024, b""
            while size > 0 and data.count(b"\n") <= count:
                step = min(block, size)
                size -= step
                handle.seek(size)
                data = handle.read(step) + data
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:]


class LogTail:
    def __init__(self, hub: Hub, path: Path) -> None:
        self.hub = hub
        self.path = Path(path)
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""

    async def run(self) -> None:
        self._start_at_end()
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                lines, reset = self.read_new()
            except OSError as exc:  # unreadable for now: try again later
                log.debug("log tail: %s", exc)
                continue
            if not self.hub.has(TOPIC_LOGS):
                continue
            if reset:
                await push.log_reset(self.hub)
            elif lines:
                await push.log_appended(self.hub, lines)

    def _start_at_end(self) -> None:
        try:
            stat = self.path.stat()
        except OSError:
            self._inode, self._offset = None, 0
            return
        self._inode, self._offset = stat.st_ino, stat.st_size

    def read_new(self) -> tuple[list[str], bool]:
        """New complete lines since the last call, and whether the file was
        replaced or truncated (the viewer then reloads its last lines)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            reset = self._inode is not None
            self._inode, self._offset, self._partial = None, 0, b""
            return [], reset
        reset = False
        if stat.st_ino != self._inode or stat.st_size < self._offset:
            reset = self._inode is not None or self._offset > 0
            self._inode, self._offset, self._partial = stat.st_ino, 0, b""
        if stat.st_size == self._offset:
            return [], reset
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read(MAX_READ)
        self._offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        lines = deque((c.decode("utf-8", errors="replace") for c in complete), maxlen=TAIL_LINES)
        return list(lines), reset
