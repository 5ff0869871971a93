"""How the demo, the benchmark and the tests start the console's local
processes: a free loopback port, a private redis-server that keeps nothing
on disk, daphne serving the console, and waiting until one listens."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def redis_server_argv(binary: str, port: int, workdir: Path | str) -> list[str]:
    """A private redis-server on loopback, without persistence."""
    return [
        binary,
        "--port", str(port),
        "--bind", LOOPBACK,
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
    ]  # fmt: skip


def daphne_argv(port: int, host: str = LOOPBACK) -> list[str]:
    """daphne serving the console, with this interpreter, on uvloop."""
    return [sys.executable, "-m", "webmonitor.serve", "-b", host, "-p", str(port),
            "webmonitor.asgi:application"]  # fmt: skip


def wait_for_port(
    port: int,
    *,
    process: subprocess.Popen | None = None,
    host: str = LOOPBACK,
    timeout: float = 30.0,
) -> None:
    """Until something listens on ``port``; raises if ``process`` exits
    first or nothing listens in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
