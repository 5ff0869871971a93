"""asyncio helpers for the console's long-running tasks."""

from __future__ import annotations

import asyncio


def honour_cancel() -> None:
    """Raise if this task was cancelled. A Redis client awaited inside a loop
    has been seen to swallow the CancelledError of a cancel that came during
    its round trip; without this check the loop would never stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
