"""The recording of the genuine dispatcher (``tests/fixtures/``) as data: its
key snapshots written back into a Redis, for tests and for a look."""

from __future__ import annotations

from collections.abc import Mapping


def snapshot_write(client, keys: Mapping[str, dict]) -> None:
    """Write a snapshot's keys (``{name: {"type", "value"}}``) in one
    transaction, each replacing what Redis held under that name."""
    pipe = client.pipeline(transaction=True)
    for name, entry in keys.items():
        pipe.delete(name)
        value = entry["value"]
        if entry["type"] == "hash" and value:
            pipe.hset(name, mapping=value)
        elif entry["type"] == "list" and value:
            pipe.rpush(name, *value)
        elif entry["type"] == "string":
            pipe.set(name, value)
    pipe.execute()
