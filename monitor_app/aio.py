"""asyncio helpers for the console's long-running tasks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def honour_cancel() -> None:
    """Raise if this task was cancelled. A Redis client awaited inside a loop
    has been seen to swallow the CancelledError of a cancel that came during
    its round trip; without this check the loop would never stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class BackgroundLoop:
    """An event loop of its own, in a daemon thread, for work that must not
    queue behind the main loop's callbacks. The reader's big reads run here:
    on the main loop, every chunk of a megabyte-long reply waited for a turn
    between fan-outs to hundreds of sockets, and a poll took several times
    its own cost. Started on first use; a process has one per name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self.name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` run on the background loop; a cancel of the caller
        cancels it there too."""
        future = asyncio.run_coroutine_threadsafe(coro, self._running_loop())
        return await asyncio.wrap_future(future)
