"""A console served by a real daphne process, and headless Chromium to use it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from monitor_app.localproc import daphne_argv, free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "browser-test-pass"


@dataclass
class LiveConsole:
    url: str
    process: subprocess.Popen
    workdir: str
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def console_env(redis_url: str, workdir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="webmonitor.settings",
        DJANGO_SECRET_KEY="browser-test-secret",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        REDIS_URL=redis_url,
        WEBMONITOR_DATA_DIR=workdir,
        DATABASE_URL=f"sqlite:///{workdir}/db.sqlite3",
        WEBMONITOR_CHANNEL_LAYER="memory",
        WEBMONITOR_POLL_INTERVAL="0.3",
        WEBMONITOR_READER_AUTOSTART="1",
        CONSOLE_TEST_PASSWORD=PASSWORD,
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
        capture_output=True,
    )


def start_console(redis_url: str) -> LiveConsole:
    workdir = tempfile.mkdtemp(prefix="webmonitor-browser-")
    env = console_env(redis_url, workdir)
    manage(env, "migrate", "--noinput")
    manage(
        env, "console_user", "otto", "--role", "operator", "--password-env", "CONSOLE_TEST_PASSWORD"
    )
    manage(
        env, "console_user", "vera", "--role", "viewer", "--password-env", "CONSOLE_TEST_PASSWORD"
    )
    port = free_port()
    log = Path(workdir) / "daphne.log"
    process = subprocess.Popen(
        daphne_argv(port), env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, process=process)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}: {log.read_text()}") from None
    return LiveConsole(url=f"http://127.0.0.1:{port}", process=process, workdir=workdir, log=log)


def login(page, base: str, username: str) -> None:
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/servers/")
