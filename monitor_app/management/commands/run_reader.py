"""``manage.py run_reader``: the console's Redis reader as a worker of its
own, for deployments with several web processes started with
``WEBMONITOR_READER_AUTOSTART=0`` (they then only relay what it reads)."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from monitor_app.hub import hub
from monitor_app.reader import Reader
from monitor_app.redis_client import redis_location


class Command(BaseCommand):
    help = (
        "Read the dispatcher's Redis (subscriptions and polls) and send every "
        "change through the channel layer to the console's web processes. "
        "Several may run: one leads, the others wait to take over."
    )

    def handle(self, *args, **options) -> None:
        if settings.WEBMONITOR_CHANNEL_LAYER == "memory":
            raise CommandError(
                "run_reader needs the Redis channel layer to reach the web processes "
                "(unset WEBMONITOR_CHANNEL_LAYER=memory)"
            )
        self.stdout.write(f"Reading Redis at {redis_location()}; Ctrl-C stops.")
        asyncio.run(self._run())
        self.stdout.write("Stopped.")

    async def _run(self) -> None:
        reader = Reader(hub, elect=True)
        task = asyncio.create_task(reader.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass
