#!/usr/bin/env python
"""The demo site's START/KILL command (``WEBMONITOR_SERVER_COMMAND``):
``demo_server_command.py IDENT START|KILL``.

START runs ``manage.py simulate_plant --servers IDENT`` for the class as its
own detached process and records its pid under ``var/``; KILL ends that
process (SIGTERM: it writes OFF for its servers) or, for a class running
inside the demo's main plant process, asks its servers to quit (QUIT+ID).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PLANT = ROOT / "plants" / "demo.toml"
#: A server that dies this soon did not start (a bad plant, Redis gone).
EARLY_EXIT_SECONDS = 1.0


def _pid_file(ident: str) -> Path:
    var = Path(os.environ.get("WEBMONITOR_DATA_DIR", ROOT / "var"))
    return var / "demo-servers" / f"{ident}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recorded_pid(ident: str) -> int | None:
    try:
        pid = int(_pid_file(ident).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _plant_classes(plant: Path) -> set[str]:
    with plant.open("rb") as f:
        return set(tomllib.load(f).get("servers", {}))


def start(ident: str, plant: Path) -> int:
    pid = _recorded_pid(ident)
    if pid is not None:
        print(f"{ident} is already running (pid {pid})")
        return 0
    if ident not in _plant_classes(plant):
        print(f"{ident} is not a server class of the demo plant {plant.name}", file=sys.stderr)
        return 2
    pid_file = _pid_file(ident)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log = (pid_file.parent / f"{ident}.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "simulate_plant",
            "--plant",
            str(plant),
            "--servers",
            ident,
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survives the console request that started it
    )
    try:
        code = process.wait(timeout=EARLY_EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        pid_file.write_text(f"{process.pid}\n")
        print(f"{ident} started (pid {process.pid})")
        return 0
    print(f"{ident} exited at once (status {code}); see {log.name}", file=sys.stderr)
    return 1


def kill(ident: str, plant: Path) -> int:
    pid = _recorded_pid(ident)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):  # up to 5 s for it to write OFF and exit
            if not _alive(pid):
                break
            time.sleep(0.1)
        _pid_file(ident).unlink(missing_ok=True)
        print(f"{ident} killed (pid {pid})")
        return 0
    return _quit_in_process(ident, plant)


def _quit_in_process(ident: str, plant_path: Path) -> int:
    """A class of the main plant process: its servers quit on request."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmonitor.settings")
    import django

    django.setup()
    from monitor_app import protocol
    from monitor_app.redis_client import REDIS_ERRORS, sync_client, text
    from monitor_app.simulator.plant import PlantError, load_plant

    try:
        ids = list(load_plant(plant_path).server_class(ident).ids)
    except PlantError:
        ids = []
    try:
        client = sync_client()
        ids += [
            value
            for value in (text(k) for k in client.hkeys(protocol.server_active_key(ident)))
            if value and value not in ids
        ]
        for server_id in ids:
            client.publish(
                protocol.server_channel(ident),
                protocol.server_control_message(protocol.QUIT, server_id),
            )
    except REDIS_ERRORS as exc:
        print(f"cannot reach Redis: {exc}", file=sys.stderr)
        return 1
    print(f"{ident}: asked ids {', '.join(ids) or '(none)'} to quit")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1].upper() not in ("START", "KILL"):
        print("usage: demo_server_command.py IDENT START|KILL", file=sys.stderr)
        return 2
    ident, verb = argv[0], argv[1].upper()
    if not ident.replace("_", "").isalnum():
        print(f"not a server class: {ident!r}", file=sys.stderr)
        return 2
    plant = Path(os.environ.get("DEMO_PLANT", DEFAULT_PLANT))
    return start(ident, plant) if verb == "START" else kill(ident, plant)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
