"""The processes a benchmark run starts, and the guarantee that it stops
them: every child is registered here and ``stop_all`` runs in ``finally``
and on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from monitor_app.localproc import daphne_argv, free_port, redis_server_argv, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD_VAR = "BENCH_VIEWER_PASSWORD"  # noqa: S105 - a variable name, not a secret


class Processes:
    """Children of this run, stopped in reverse order of start."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[subprocess.Popen] = []

    def spawn(
        self, argv: list[str], *, log_name: str, env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> subprocess.Popen:
        log = (self.workdir / log_name).open("ab")
        try:
            child = subprocess.Popen(  # noqa: S603 - an argument list, no shell
                argv,
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen, timeout: float = 10.0) -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=timeout)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            try:
                self.stop(child)
            except (OSError, subprocess.SubprocessError):
                pass


def install_signal_handlers() -> None:
    """SIGTERM behaves like Ctrl-C, so ``finally`` blocks stop the children."""

    def interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def start_redis(procs: Processes) -> tuple[str, subprocess.Popen]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench: redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = procs.workdir / "redis"
    workdir.mkdir(exist_ok=True)
    child = procs.spawn(redis_server_argv(binary, port, workdir), log_name="redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url, socket_timeout=1).ping():
                return url, child
        except redis.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the private redis-server did not come up")


def console_env(redis_url: str, workdir: Path, poll_interval: float) -> dict[str, str]:
    """The console's environment: DEBUG off, one process, its own SQLite."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="webmonitor.settings",
        DJANGO_SECRET_KEY="bench-secret-key-not-for-production-" + "x" * 20,
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        REDIS_URL=redis_url,
        WEBMONITOR_DATA_DIR=str(workdir),
        DATABASE_URL=f"sqlite:///{workdir}/db.sqlite3",
        WEBMONITOR_CHANNEL_LAYER="memory",
        WEBMONITOR_POLL_INTERVAL=str(poll_interval),
        WEBMONITOR_READER_AUTOSTART="1",
        WEBMONITOR_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        PYTHONUNBUFFERED="1",
    )
    return env


def prepare_database(env: dict[str, str], username: str, password: str) -> None:
    """Migrate the temporary database and create the viewer the clients use."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--noinput"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=180,
        capture_output=True,
    )
    subprocess.run(
        [*manage, "console_user", username, "--role", "viewer", "--password-env", PASSWORD_VAR],
        env={**env, PASSWORD_VAR: password},
        cwd=ROOT,
        check=True,
        timeout=120,
        capture_output=True,
    )


def start_daphne(
    procs: Processes, env: dict[str, str], name: str = "daphne"
) -> tuple[int, subprocess.Popen]:
    port = free_port()
    child = procs.spawn(daphne_argv(port), log_name=f"{name}.log", env=env)
    wait_for_port(port, process=child)
    return port, child


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process, in MiB (``/proc/PID/status``)."""
    from bench.stats import proc_status_kb

    kb = proc_status_kb(Path(f"/proc/{pid}/status").read_text(), "VmHWM")
    return (kb or 0) / 1024
