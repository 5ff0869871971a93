"""``manage.py load_recording``: put the dispatcher state recorded from the
genuine dispatcher into a Redis, to look at it in the console."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from monitor_app.recording import snapshot_write
from monitor_app.redis_client import REDIS_ERRORS, redis_location, sync_client

DEFAULT_FILE = Path(settings.BASE_DIR) / "tests" / "fixtures" / "upstream_transcript.jsonl"


class Command(BaseCommand):
    help = (
        "Write the keys recorded after one step of the genuine dispatcher's run "
        "(tests/fixtures/upstream_transcript.jsonl) into REDIS_URL. Refuses a Redis "
        "that already holds dispatcher keys unless --force: never aim it at a live plant."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
        parser.add_argument("--step", default="do_phase_STORE", help="default %(default)s")
        parser.add_argument(
            "--list", dest="list_steps", action="store_true", help="list the recorded steps"
        )
        parser.add_argument("--force", action="store_true", help="overwrite existing keys")

    def handle(
        self, *args, file: Path, step: str, list_steps: bool, force: bool, **options
    ) -> None:
        try:
            records = [json.loads(line) for line in file.open(encoding="utf-8")]
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        snapshots = {r["step"]: r["keys"] for r in records if r.get("kind") == "snapshot"}
        if list_steps:
            self.stdout.write("\n".join(snapshots))
            return
        if step not in snapshots:
            raise CommandError(f"no step {step!r}; --list shows them")
        client = sync_client()
        try:
            taken = next(client.scan_iter(match="ACTION_*", count=1000), None)
            if taken is not None and not force:
                raise CommandError(
                    f"Redis at {redis_location()} already holds dispatcher keys "
                    f"({taken.decode(errors='replace')}, ...); add --force to overwrite"
                )
            snapshot_write(client, snapshots[step])
        except REDIS_ERRORS as exc:
            raise CommandError(f"Redis at {redis_location()} unreachable: {exc}") from exc
        count = len(snapshots[step])
        self.stdout.write(f"Wrote {count} keys of step {step} to Redis at {redis_location()}.")
