"""The background loop the reader's polls read on."""

from __future__ import annotations

import asyncio
import threading

import pytest

from monitor_app.aio import BackgroundLoop


async def test_runs_on_its_own_thread_and_returns():
    loop = BackgroundLoop("test-background")

    async def where():
        await asyncio.sleep(0)
        return threading.current_thread().name, asyncio.get_running_loop()

    name, bg_loop = await loop.run(where())
    assert name == "test-background"
    assert bg_loop is not asyncio.get_running_loop()
    assert (await loop.run(where()))[1] is bg_loop  # one loop, kept


async def test_errors_come_back_to_the_caller():
    async def fail():
        raise ConnectionError("Redis went away")

    with pytest.raises(ConnectionError, match="went away"):
        await BackgroundLoop("test-errors").run(fail())


async def test_a_cancel_reaches_the_background_work():
    cancelled = threading.Event()
    started = threading.Event()

    async def long():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.ensure_future(BackgroundLoop("test-cancel").run(long()))
    while not started.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(cancelled.wait, 5)
