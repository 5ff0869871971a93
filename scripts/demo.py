#!/usr/bin/env python
"""``make demo``: the console on a live simulated plant, in one command.

Migrates, creates a demo operator and viewer, finds a Redis (``REDIS_URL``
if it answers, else a private redis-server, else an in-process fakeredis
server for demonstration only), starts the simulated servers, the simulated
dispatcher with its cycle (a process of its own, so that ``quit`` ends only
it), the pub/sub recorder (when that command exists) and daphne, prints the
URL and the two logins, writes ``var/demo.env`` for a shell, and stops
everything it started on Ctrl-C or SIGTERM.

A child that exits is started again after a short pause (the console shows
its outage banner meanwhile and recovers by itself), at most
``MAX_RESTARTS`` times a minute each; only daphne exiting ends the demo.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for monitor_app, when run as scripts/demo.py

from monitor_app.localproc import daphne_argv, free_port, redis_server_argv  # noqa: E402

PLANT = ROOT / "plants" / "demo.toml"
SITE_COMMAND = ROOT / "scripts" / "demo_server_command.py"
MAX_RESTARTS = 5  # per child and RESTART_WINDOW_S; then it is given up
RESTART_WINDOW_S = 60.0
RESTART_PAUSE_S = 1.0  # long enough for the console to notice the outage
ENV_NAMES = (
    "REDIS_URL",
    "DJANGO_SECRET_KEY",
    "WEBMONITOR_DATA_DIR",
    "WEBMONITOR_SERVER_COMMAND",
    "WEBMONITOR_CHANNEL_LAYER",
    "DEMO_PLANT",
)


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


@dataclass
class Child:
    """A process of the demo, with what it takes to start it again."""

    name: str
    argv: list[str]
    process: subprocess.Popen
    log: IO[bytes] | None
    restarts: deque[float] = field(default_factory=deque)
    restart_at: float | None = None  # exited: start again at this time
    given_up: bool = False
    #: A clean exit is the end of it, not a fault to repair: the main plant's
    #: servers all quit on request (Kill, Kill all, QUIT), and restarting
    #: them would undo what the operator just did.
    final_when_clean: bool = False


class Demo:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.fake_server = None
        self.stopping = threading.Event()
        self.data_dir = Path(os.environ.get("WEBMONITOR_DATA_DIR", ROOT / "var"))

    # -- environment ---------------------------------------------------------------

    def prepare_env(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmonitor.settings")
        if not os.environ.get("DJANGO_SECRET_KEY"):
            os.environ["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
        os.environ["WEBMONITOR_DATA_DIR"] = str(self.data_dir)
        os.environ["WEBMONITOR_SERVER_COMMAND"] = shlex.join([sys.executable, str(SITE_COMMAND)])
        os.environ["DEMO_PLANT"] = str(PLANT)
        # One web process: the in-memory channel layer is enough, and it also
        # works on the embedded fallback Redis.
        os.environ.setdefault("WEBMONITOR_CHANNEL_LAYER", "memory")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(ROOT))

    def find_redis(self) -> str:
        """REDIS_URL if it answers; else a private redis-server; else fakeredis."""
        import redis  # only to probe candidates before Django is set up

        wanted = os.environ.get("REDIS_URL")
        if wanted and _answers(redis, wanted):
            say(f"using the Redis at REDIS_URL ({wanted.rsplit('@', 1)[-1]})")
            return wanted
        if wanted:
            say("REDIS_URL does not answer; starting a Redis of our own")
        binary = shutil.which("redis-server")
        if os.environ.get("DEMO_REDIS") == "embedded":
            binary = None
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        if binary:
            workdir = self.data_dir / "redis"
            workdir.mkdir(parents=True, exist_ok=True)
            self.spawn(
                "redis-server",
                redis_server_argv(binary, port, workdir),
            )
            say(f"started a private redis-server on port {port}")
        else:
            from fakeredis import TcpFakeServer

            self.fake_server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
            threading.Thread(target=self.fake_server.serve_forever, daemon=True).start()
            say(
                f"no redis-server installed: an embedded fakeredis on port {port}, "
                "for demonstration only"
            )
        for _ in range(100):
            if _answers(redis, url):
                return url
            time.sleep(0.1)
        raise SystemExit("demo: the Redis did not come up")

    # -- Django --------------------------------------------------------------------------

    def setup_django(self) -> tuple[tuple[str, str], tuple[str, str]]:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        users = []
        for role, group in (("operator", "operators"), ("viewer", "viewers")):
            name = os.environ.get(f"DEMO_{role.upper()}_USER", role)
            password = os.environ.get(f"DEMO_{role.upper()}_PASSWORD") or secrets.token_urlsafe(9)
            user, _ = get_user_model().objects.get_or_create(username=name)
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=group))
            users.append((name, password))
        return users[0], users[1]

    # -- processes -------------------------------------------------------------------------

    def _popen(self, name: str, argv: list[str]) -> tuple[subprocess.Popen, IO[bytes]]:
        """Each process writes to its own file under var/demo-logs/, so the
        terminal keeps only what the operator needs to read."""
        log_dir = self.data_dir / "demo-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        out = (log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        return process, out

    def spawn(
        self, name: str, argv: list[str], *, final_when_clean: bool = False
    ) -> subprocess.Popen:
        process, out = self._popen(name, argv)
        self.children.append(Child(name, argv, process, out, final_when_clean=final_when_clean))
        return process

    def start_services(self, host: str, port: int, *, cycle: bool = True) -> None:
        manage = [sys.executable, str(ROOT / "manage.py")]
        plant = [*manage, "simulate_plant", "--plant", str(PLANT)]
        self.spawn("servers", [*plant, "--no-dispatcher"], final_when_clean=True)
        self.spawn("dispatcher", [*plant, "--dispatcher-only", *(["--cycle"] if cycle else [])])
        if (ROOT / "monitor_app" / "management" / "commands" / "record_pubsub.py").exists():
            self.spawn("recorder", [*manage, "record_pubsub"])
        else:
            say("no record_pubsub command yet: the log viewer stays empty")
        self.spawn("daphne", daphne_argv(port, host))

    def wait_for_port(self, host: str, port: int, timeout: float = 90.0) -> bool:
        probe = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a probe
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if self.supervise():
                return False
            try:
                with socket.create_connection((probe, port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.2)
        return False

    def supervise(self) -> str | None:
        """Start exited children again (after a pause, a bounded number of
        times); the name of a child whose exit ends the demo (daphne)."""
        now = time.monotonic()
        for child in self.children:
            if child.given_up or self.stopping.is_set():
                continue
            if child.restart_at is None:
                code = child.process.poll()
                if code is None:
                    continue
                if child.name == "daphne":
                    return child.name
                self._exited(child, code, now)
            elif now >= child.restart_at:
                child.restart_at = None
                if child.log is not None:
                    child.log.close()
                child.process, child.log = self._popen(child.name, child.argv)
        return None

    def _exited(self, child: Child, code: int, now: float) -> None:
        if code == 0 and child.final_when_clean:
            child.given_up = True
            say(
                f"{child.name}: every server of the main plant quit; Start (or Start all "
                "OFF classes) in the console brings each class back"
            )
            return
        while child.restarts and now - child.restarts[0] > RESTART_WINDOW_S:
            child.restarts.popleft()
        if len(child.restarts) >= MAX_RESTARTS:
            child.given_up = True
            say(
                f"{child.name} exited {len(child.restarts) + 1} times within "
                f"{RESTART_WINDOW_S:.0f} s; giving up on it (see "
                f"{self.data_dir / 'demo-logs' / (child.name + '.log')})"
            )
            return
        child.restarts.append(now)
        child.restart_at = now + RESTART_PAUSE_S
        if child.name == "dispatcher" and code == 0:
            say("the dispatcher quit; starting it again")
        else:
            say(f"{child.name} exited (code {code}); starting it again")

    def write_env_file(self) -> Path:
        """``var/demo.env`` (0600: it holds the secret key), for a shell that
        runs ``manage.py do_phase ...`` against this demo."""
        path = self.data_dir / "demo.env"
        lines = [
            f"{name}={shlex.quote(os.environ[name])}\n"
            for name in ENV_NAMES
            if os.environ.get(name)
        ]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # also when it existed already
            handle.writelines(lines)
        return path

    def stop(self) -> None:
        """Every process this demo started, the console-started servers too."""
        self.stopping.set()
        pid_dir = self.data_dir / "demo-servers"
        for pid_file in pid_dir.glob("*.pid") if pid_dir.is_dir() else []:
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
            pid_file.unlink(missing_ok=True)
        # One by one, last started first: the plant writes OFF for its
        # servers before the Redis it writes to goes away.
        for child in reversed(self.children):
            process = child.process
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if child.log is not None:
                child.log.close()
        if self.fake_server is not None:
            self.fake_server.shutdown()


def _free_or_any(preferred: int) -> int:
    """The preferred port when nothing listens there, else any free one."""
    with socket.socket() as sock:
        # As the server will bind: a port whose last connections linger in
        # TIME_WAIT after a quick restart is free all the same.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def _shown_path(path: Path) -> str:
    """Relative to the checkout (where ``make demo`` runs) when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return shlex.quote(str(path))


def _answers(redis_module, url: str) -> bool:
    try:
        return bool(
            redis_module.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        )
    except (redis_module.RedisError, OSError, ValueError):
        return False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make demo", description="The console on a live simulated plant."
    )
    parser.add_argument(
        "--manual",
        action="store_true",
        help="no pulse after pulse: the dispatcher waits for the operator's commands "
        "(make demo DEMO_ARGS=--manual)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    demo = Demo()

    def on_signal(signum: int, frame: object) -> None:
        demo.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    host = os.environ.get("DEMO_HOST", "127.0.0.1")
    port = int(os.environ.get("DEMO_PORT") or _free_or_any(8000))
    try:
        demo.prepare_env()
        os.environ["REDIS_URL"] = demo.find_redis()
        (op_user, op_password), (view_user, view_password) = demo.setup_django()
        demo.start_services(host, port, cycle=not args.manual)
        if not demo.wait_for_port(host, port):
            if not demo.stopping.is_set():
                say("the console did not come up (daphne exited or timed out)")
            return 1
        env_file = demo.write_env_file()
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
        print(f"URL: http://{shown}:{port}/", flush=True)
        print(f"Operator login: {op_user} / {op_password}", flush=True)
        print(f"Viewer login: {view_user} / {view_password}", flush=True)
        print(f"Shell: set -a; . {_shown_path(env_file)}; set +a", flush=True)
        say(f"each process logs to {demo.data_dir / 'demo-logs'}/; Ctrl-C stops them all")
        if args.manual:
            say("manual: the dispatcher runs no pulse by itself; create one from the console")
        while not demo.stopping.wait(0.5):
            if demo.supervise():
                say("daphne exited; stopping the demo")
                return 1
        return 0
    finally:
        say("stopping")
        demo.stop()


if __name__ == "__main__":
    raise SystemExit(main())
