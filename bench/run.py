"""``make bench``: the console at plant scale, measured from outside.

For each pulse size a fresh daphne (DEBUG off, in-memory channel layer) runs
against a private Redis holding the synthetic pulse; for each client count
that many logged-in WebSockets watch the pulse's Actions Monitor while the
load generator changes 100 actions a second and writes silent changes.
Each change carries its send time, so each client measures its own arrival
latency; ``INFO commandstats`` around the window, less the load generator's
own commands, gives what the console asked of Redis."""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.asyncio as aredis

from bench import stats
from bench.load import Event, Load
from bench.procs import (
    Processes,
    console_env,
    install_signal_handlers,
    peak_rss_mb,
    prepare_database,
    start_daphne,
    start_redis,
)
from bench.pulse import BenchPulse, make_pulse, write_pulse
from bench.wsclient import HandshakeError, WSClient, http_get, login

HOST = "127.0.0.1"
USER = "bench-viewer"
SETTLE = 2.0  # after connecting: let the connect-time polls pass
GRACE = 2.0  # after the last change: let the last rows arrive
CONNECT_BATCH = 25
PARSE_CACHE_MAX = 2000

#: ``--profile``: record daphne with py-spy (if installed) into the work dir.
PROFILE: list[bool] = [False]

FULL_SIZES = ((1000, 20), (5000, 50), (20000, 200))
FULL_CLIENTS = (1, 50, 200)


@dataclass
class PointResult:
    actions: int
    classes: int
    clients: int
    processes: int = 1
    seconds: float = 0.0
    announced: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)  # earliest client per change
    silent: dict[str, float] = field(default_factory=dict)
    missed: float = 0.0  # fraction of (change, client) pairs never seen
    cmds_per_s: float = math.nan
    cmd_top: str = ""
    changes: int = 0
    bytes_per_change: float = math.nan
    kb_per_client_s: float = math.nan
    msgs_per_client_s: float = math.nan
    cpu_pct: float = math.nan
    harness_pct: float = math.nan  # this process: clients and load generator
    rss_mb: float = math.nan

    @property
    def label(self) -> str:
        if self.processes > 1:
            return f"{self.processes}x{self.clients // self.processes}"
        return str(self.clients)


class Watcher:
    """One browser tab: a WebSocket on the pulse's Actions Monitor."""

    def __init__(self, bench: Bench, ws: WSClient) -> None:
        self.bench = bench
        self.ws = ws
        self.bytes = 0
        self.messages = 0
        self.last: dict[tuple[str, str], int] = {}

    async def run(self) -> None:
        bench = self.bench
        while True:
            try:
                got = await self.ws.read_message()
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                return
            if got is None:
                return
            arrived, text, wire = got
            if not bench.counting:
                continue
            self.bytes += wire
            self.messages += 1
            load = bench.load
            if load is None:
                continue
            for key in bench.parsed(text):
                event = load.current.get(key)
                if event is None or self.last.get(key) == event.ident:
                    continue
                self.last[key] = event.ident
                event.latencies.append(arrived - event.sent)


class Bench:
    def __init__(self, redis_url: str, pulse: BenchPulse, cookie: str) -> None:
        self.redis_url = redis_url
        self.pulse = pulse
        self.cookie = cookie
        self.counting = False
        self.load: Load | None = None
        self._parsed: dict[str, list[tuple[str, str]]] = {}

    def parsed(self, text: str) -> list[tuple[str, str]]:
        """Rows of a fragment; every client gets the same text, so parse it once."""
        rows = self._parsed.get(text)
        if rows is None:
            if len(self._parsed) > PARSE_CACHE_MAX:
                self._parsed.clear()
            rows = self._parsed[text] = stats.fragment_rows(text)
        return rows

    async def connect(self, port: int, count: int) -> list[Watcher]:
        path = f"/ws/monitor/?page=actions&tree={self.pulse.tree}&shot={self.pulse.shot}"
        headers = {"Origin": f"http://{HOST}:{port}", "Cookie": self.cookie}
        watchers: list[Watcher] = []
        while len(watchers) < count:
            batch = min(CONNECT_BATCH, count - len(watchers))
            sockets = await asyncio.gather(
                *(WSClient.connect(HOST, port, path, headers) for _ in range(batch))
            )
            watchers.extend(Watcher(self, ws) for ws in sockets)
        return watchers

    async def point(
        self, ports: list[int], pids: list[int], clients: int, seconds: float
    ) -> PointResult:
        share = [clients // len(ports) + (i < clients % len(ports)) for i in range(len(ports))]
        watchers: list[Watcher] = []
        for port, n in zip(ports, share, strict=True):
            watchers += await self.connect(port, n)
        tasks = [asyncio.create_task(w.run()) for w in watchers]
        info = aredis.Redis.from_url(self.redis_url)
        loader_client = aredis.Redis.from_url(self.redis_url)
        try:
            await loader_client.ping()
            await info.ping()
            await asyncio.sleep(SETTLE)
            load = Load(loader_client, self.pulse)
            before = stats.parse_commandstats(await info.info("commandstats"))
            cpu_before = [_cpu(pid) for pid in pids]
            own_before = time.process_time()
            started = time.time()
            self.load, self.counting = load, True
            gc.disable()  # our own collections would delay reading the sockets
            try:
                await load.run(seconds)
                await asyncio.sleep(GRACE)
            finally:
                gc.enable()
            elapsed = time.time() - started
            after = stats.parse_commandstats(await info.info("commandstats"))
            cpu_after = [_cpu(pid) for pid in pids]
            own = time.process_time() - own_before
            self.counting = False
            load.stop_tracking()
            await load.restore()
        finally:
            self.load, self.counting = None, False
            for w in watchers:
                await w.ws.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await info.aclose()
            await loader_client.aclose()
        console = stats.commands_delta(before, after, own=load.commands)
        result = self._result(
            load.events, watchers, console, elapsed, cpu_before, cpu_after, len(ports), pids
        )
        result.harness_pct = 100 * own / elapsed
        return result

    def _result(
        self,
        events: list[Event],
        watchers: list[Watcher],
        console: dict[str, int],
        elapsed: float,
        cpu_before: list[float],
        cpu_after: list[float],
        processes: int,
        pids: list[int],
    ) -> PointResult:
        clients = len(watchers)
        announced = [x for e in events if not e.silent for x in e.latencies]
        silent = [x for e in events if e.silent for x in e.latencies]
        expected = len(events) * clients
        seen = sum(len(e.latencies) for e in events)
        received = sum(w.bytes for w in watchers)
        top = sorted(console.items(), key=lambda kv: -kv[1])[:3]
        return PointResult(
            actions=len(self.pulse.actions),
            classes=len(self.pulse.idents),
            clients=clients,
            processes=processes,
            seconds=elapsed,
            announced=stats.summary_ms(announced),
            first=stats.summary_ms(
                [min(e.latencies) for e in events if e.latencies and not e.silent]
            ),
            silent=stats.summary_ms(silent),
            missed=1 - seen / expected if expected else math.nan,
            cmds_per_s=sum(console.values()) / elapsed,
            cmd_top=",".join(f"{k}:{v / elapsed:.0f}" for k, v in top),
            changes=len(events),
            bytes_per_change=received / clients / len(events) if events else math.nan,
            kb_per_client_s=received / clients / elapsed / 1024,
            msgs_per_client_s=sum(w.messages for w in watchers) / clients / elapsed,
            cpu_pct=100
            * sum(a - b for a, b in zip(cpu_after, cpu_before, strict=True))
            / elapsed
            / processes,
            rss_mb=max(peak_rss_mb(pid) for pid in pids),
        )


def _cpu(pid: int) -> float:
    return stats.proc_cpu_seconds(Path(f"/proc/{pid}/stat").read_text(), os.sysconf("SC_CLK_TCK"))


def page_timing(port: int, cookie: str, pulse: BenchPulse, tries: int) -> dict[str, float]:
    """Server time and size of the Actions Monitor: whole page, a filtered
    and sorted view (filter and search run over the whole pulse), a far page."""
    base = f"/actions/?tree={pulse.tree}&shot={pulse.shot}"
    views = {
        "page": base,
        "filtered": base + "&q=UNIT0001&state=NOT_DISPATCHED&sort=-node",
        "last_page": base + f"&page={max(1, len(pulse.actions) // 200)}",
    }
    out: dict[str, float] = {}
    for name, path in views.items():
        status, _, size = http_get(HOST, port, path, cookie)  # warm the caches once
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}")
        times = [http_get(HOST, port, path, cookie)[1] for _ in range(tries)]
        out[f"{name}_ms"] = stats.percentile(times, 50) * 1000
        out[f"{name}_max_ms"] = max(times) * 1000
        out[f"{name}_kb"] = size / 1024
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, load {load}"


async def run_size(
    procs: Processes,
    workdir: Path,
    redis_url: str,
    actions: int,
    classes: int,
    client_counts: tuple[int, ...],
    seconds: float,
    poll: float,
    password: str,
    multi: int,
    page_tries: int,
) -> tuple[list[PointResult], dict[str, float]]:
    sync = redis.Redis.from_url(redis_url)
    sync.flushall()
    pulse = make_pulse(actions, classes)
    write_pulse(sync, pulse)
    sync.close()
    env = console_env(redis_url, workdir, poll)
    port, daphne = start_daphne(procs, env, name=f"daphne-{actions}")
    profiler = _profile(procs, daphne.pid, f"daphne-{actions}")
    results: list[PointResult] = []
    try:
        cookie = await asyncio.to_thread(login, HOST, port, USER, password)
        bench = Bench(redis_url, pulse, cookie)
        pages = await asyncio.to_thread(page_timing, port, cookie, pulse, page_tries)
        for clients in client_counts:
            result = await bench.point([port], [daphne.pid], clients, seconds)
            results.append(result)
            _progress(result)
        if multi > 1:
            procs.stop(daphne)  # a fresh set of processes sharing one reader
            shared = dict(env, WEBMONITOR_CHANNEL_LAYER="redis", WEBMONITOR_READER_SHARED="1")
            pairs = [
                start_daphne(procs, shared, name=f"daphne-{actions}-m{i}") for i in range(multi)
            ]
            try:
                result = await bench.point(
                    [p for p, _ in pairs], [c.pid for _, c in pairs], max(client_counts), seconds
                )
                results.append(result)
                _progress(result)
            finally:
                for _, child in pairs:
                    procs.stop(child)
    finally:
        procs.stop(daphne)
        if profiler is not None:
            try:
                profiler.wait(timeout=60)  # it writes its file when daphne is gone
            except subprocess.TimeoutExpired:
                pass
            procs.stop(profiler)
    return results, pages


def _profile(procs: Processes, pid: int, name: str):
    """py-spy on daphne, collapsed stacks in the work dir (a developer's aid)."""
    spy = Path(sys.executable).parent / "py-spy"
    if not PROFILE[0] or not spy.exists():
        return None
    out = procs.workdir / f"{name}.pyspy.txt"
    argv = [str(spy), "record", "--pid", str(pid), "--format", "raw", "-o", str(out)]
    return procs.spawn([*argv, "--rate", "200"], log_name=f"{name}.pyspy.log")


def _progress(r: PointResult) -> None:
    print(
        f"bench: {r.actions} actions, {r.label} clients: announced p50 "
        f"{r.announced['p50']:.0f} ms p99 {r.announced['p99']:.0f} ms, silent p99 "
        f"{r.silent['p99']:.0f} ms, {r.cmds_per_s:.0f} Redis cmds/s, "
        f"{r.bytes_per_change:.0f} B/change, daphne {r.cpu_pct:.0f}% CPU",
        flush=True,
    )


def report(
    results: list[PointResult], pages: dict[int, dict[str, float]], poll: float, quick: bool
) -> tuple[str, bool]:
    headers = [
        "actions",
        "classes",
        "clients",
        "ann_p50",
        "ann_p95",
        "ann_p99",
        "ann_max",
        "first_p50",
        "miss%",
        "sil_p50",
        "sil_p99",
        "redis/s",
        "B/change",
        "msg/s/cl",
        "kB/s/cl",
        "cpu%",
        "bench%",
        "rss_MB",
    ]
    rows = [
        [
            r.actions,
            r.classes,
            r.label,
            r.announced["p50"],
            r.announced["p95"],
            r.announced["p99"],
            r.announced["max"],
            r.first["p50"],
            100 * r.missed,
            r.silent["p50"],
            r.silent["p99"],
            r.cmds_per_s,
            r.bytes_per_change,
            r.msgs_per_client_s,
            r.kb_per_client_s,
            r.cpu_pct,
            r.harness_pct,
            r.rss_mb,
        ]
        for r in results
    ]
    lines = [stats.format_table(headers, rows), ""]
    lines.append("Redis commands of the console per point (top 3, per second):")
    lines += [f"  {r.actions:>6} x {r.label:>5}: {r.cmd_top}" for r in results]
    lines.append("")
    page_headers = [
        "actions",
        "page_ms",
        "page_max",
        "page_kB",
        "filtered_ms",
        "filtered_kB",
        "last_page_ms",
    ]
    lines.append(
        stats.format_table(
            page_headers,
            [
                [
                    n,
                    v["page_ms"],
                    v["page_max_ms"],
                    v["page_kb"],
                    v["filtered_ms"],
                    v["filtered_kb"],
                    v["last_page_ms"],
                ]
                for n, v in sorted(pages.items())
            ],
        )
    )
    single = [r for r in results if r.processes == 1]
    biggest = max(r.actions for r in single)
    at_size = [r for r in single if r.actions == biggest]
    key = max(at_size, key=lambda r: r.clients)
    one = next((r for r in at_size if r.clients == 1), None)
    ratio = key.cmds_per_s / one.cmds_per_s if one and key.clients > 1 else math.nan
    page = pages[biggest]
    multi = next((r for r in results if r.processes > 1), None)
    targets = {
        "announced": key.announced["p99"] <= 250 and key.announced["p50"] <= 50,
        "silent": key.silent["p99"] <= poll * 1000 + 250,
        "redis": None if math.isnan(ratio) else ratio <= 1.2,
        "bytes": key.bytes_per_change < 2048,
        "page": max(page["page_ms"], page["filtered_ms"]) <= 500,
        "rss": key.rss_mb <= 250,
    }
    lines.append("")
    lines.append(
        f"targets at {key.actions} actions x {key.label} clients"
        + (" (quick: a CI-sized point, not the plant-scale one)" if quick else "")
        + ":"
    )
    lines += [
        f"  announced p50 {key.announced['p50']:.1f} ms <= 50, p99 {key.announced['p99']:.1f}"
        f" ms <= 250: {stats.verdict(targets['announced'])}",
        f"  silent p99 {key.silent['p99']:.1f} ms <= {poll * 1000 + 250:.0f}:"
        f" {stats.verdict(targets['silent'])}",
        f"  Redis cmds/s {key.clients} vs 1 client: ratio {ratio:.2f} <= 1.2:"
        f" {stats.verdict(targets['redis'])}",
        f"  bytes per change {key.bytes_per_change:.0f} < 2048: {stats.verdict(targets['bytes'])}",
        f"  Actions Monitor page {page['page_ms']:.0f} ms (filtered {page['filtered_ms']:.0f}"
        f" ms) <= 500: {stats.verdict(targets['page'])}",
        f"  daphne peak RSS {key.rss_mb:.0f} MB <= 250: {stats.verdict(targets['rss'])}",
    ]
    if multi is not None:
        lines.append(
            f"  (not a target) {multi.label} processes: {multi.cmds_per_s:.0f} Redis cmds/s vs"
            f" {key.cmds_per_s:.0f} for 1x{key.clients}: ratio"
            f" {multi.cmds_per_s / key.cmds_per_s:.2f}"
        )
    pairs: dict[str, object] = {
        "mode": "quick" if quick else "full",
        "actions": key.actions,
        "clients": key.clients,
        "announced_p50_ms": key.announced["p50"],
        "announced_p95_ms": key.announced["p95"],
        "announced_p99_ms": key.announced["p99"],
        "announced_max_ms": key.announced["max"],
        "silent_p50_ms": key.silent["p50"],
        "silent_p99_ms": key.silent["p99"],
        "missed_pct": 100 * key.missed,
        "redis_cmds_s": key.cmds_per_s,
        "redis_cmds_ratio_200_1": ratio,
        "bytes_per_change": key.bytes_per_change,
        "page_ms_20k": page["page_ms"],
        "page_filtered_ms_20k": page["filtered_ms"],
        "page_kb_20k": page["page_kb"],
        "rss_mb": key.rss_mb,
    }
    if multi is not None:
        pairs["redis_cmds_ratio_2x100_1x200"] = multi.cmds_per_s / key.cmds_per_s
    pairs.update(
        {
            f"target_{k}": "not_measured" if ok is None else "met" if ok else "not_met"
            for k, ok in targets.items()
        }
    )
    lines.append("")
    lines.append(stats.key_values(pairs))
    return "\n".join(lines), all(ok is not False for ok in targets.values())


async def main_async(args: argparse.Namespace, workdir: Path, procs: Processes) -> int:
    password = secrets.token_urlsafe(16)
    redis_url, _ = start_redis(procs)
    env = console_env(redis_url, workdir, args.poll)
    await asyncio.to_thread(prepare_database, env, USER, password)
    if args.quick:
        plan = [(1000, 20, (5,))]
        seconds, multi, tries = args.seconds or 10.0, 0, 3
    else:
        only = {int(x) for x in args.only.split(",") if x}
        counts = tuple(int(x) for x in args.clients.split(",") if x) or FULL_CLIENTS
        plan = [(n, m, counts) for n, m in FULL_SIZES if not only or n in only]
        seconds, multi, tries = args.seconds or 20.0, args.multi, 5
    print(f"bench: {machine()}", flush=True)
    print(f"bench: poll {args.poll} s, {seconds:.0f} s per point, 100 actions/s", flush=True)
    results: list[PointResult] = []
    pages: dict[int, dict[str, float]] = {}
    started = time.monotonic()
    for actions, classes, client_counts in plan:
        size_multi = multi if actions == plan[-1][0] else 0
        got, page = await run_size(
            procs,
            workdir,
            redis_url,
            actions,
            classes,
            client_counts,
            seconds,
            args.poll,
            password,
            size_multi,
            tries,
        )
        results += got
        pages[actions] = page
    text, ok = report(results, pages, args.poll, args.quick)
    print()
    print(
        f"bench: {time.strftime('%Y-%m-%d %H:%M')}, {machine()}, {time.monotonic() - started:.0f} s"
    )
    print(text, flush=True)
    return 0 if ok or not args.strict else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the console at plant scale")
    parser.add_argument("--quick", action="store_true", help="one small point (CI-sized)")
    parser.add_argument("--seconds", type=float, default=0.0, help="load time per point")
    parser.add_argument("--poll", type=float, default=1.0, help="WEBMONITOR_POLL_INTERVAL")
    parser.add_argument(
        "--multi",
        type=int,
        default=2,
        help="daphne processes for the shared-reader point (0: skip)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--profile", action="store_true", help="py-spy daphne (implies --keep)")
    parser.add_argument("--only", default="", help="full run restricted to sizes, e.g. 20000")
    parser.add_argument("--clients", default="", help="client counts instead of 1,50,200")
    args = parser.parse_args(argv)
    PROFILE[0] = args.profile
    args.keep = args.keep or args.profile
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="webmonitor-bench-"))
    procs = Processes(workdir)
    try:
        return asyncio.run(main_async(args, workdir, procs))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except (HandshakeError, RuntimeError) as exc:
        print(f"bench: failed: {exc} (logs in {workdir})", file=sys.stderr)
        args.keep = True
        return 1
    finally:
        procs.stop_all()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"bench: logs in {workdir}", file=sys.stderr)
