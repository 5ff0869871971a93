"""``manage.py record_pubsub``: the writer of the Log Viewer's file."""

from __future__ import annotations

import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from monitor_app.recorder import PubsubRecorder
from monitor_app.redis_client import redis_location, sync_pubsub_client


class Command(BaseCommand):
    help = (
        "Subscribe to every channel of the dispatcher system (also channels that "
        "appear later) and append one line per message to the pub/sub log, "
        "heartbeats left out, rotating the file by size."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--file",
            type=Path,
            default=None,
            help=f"log file (default WEBMONITOR_PUBSUB_LOG: {settings.WEBMONITOR_PUBSUB_LOG})",
        )
        parser.add_argument(
            "--max-bytes",
            type=int,
            default=settings.WEBMONITOR_PUBSUB_LOG_MAX_BYTES,
            help="rotate when the file grows past this size (default %(default)s)",
        )
        parser.add_argument(
            "--backups",
            type=int,
            default=settings.WEBMONITOR_PUBSUB_LOG_BACKUPS,
            help="rotated files to keep (default %(default)s)",
        )

    def handle(self, *args, **options) -> None:
        path = options["file"] or settings.WEBMONITOR_PUBSUB_LOG
        recorder = PubsubRecorder(
            sync_pubsub_client,
            path,
            max_bytes=options["max_bytes"],
            backups=options["backups"],
        )
        signal.signal(signal.SIGTERM, recorder.stop)
        signal.signal(signal.SIGINT, recorder.stop)
        self.stdout.write(f"Recording the pub/sub traffic of Redis at {redis_location()} to {path}")
        recorder.run()
        self.stdout.write(f"Stopped after {recorder.recorded} messages.")
