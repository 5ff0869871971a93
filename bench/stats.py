"""Pure helpers of the benchmark: percentiles, Redis ``INFO commandstats``,
``/proc`` memory figures, the printed table. No I/O, so they are unit-tested."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between the
    closest ranks, as numpy's default does; NaN for no values."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile out of range: {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values: Sequence[float], qs: Iterable[float] = (50, 95, 99)) -> dict[str, float]:
    """Seconds in, milliseconds out: ``p50``/``p95``/``p99``/``max`` and ``n``."""
    ordered = sorted(values)
    out = {f"p{q:g}": percentile(ordered, q) * 1000 for q in qs}
    out["max"] = ordered[-1] * 1000 if ordered else math.nan
    out["n"] = float(len(ordered))
    return out


def parse_commandstats(info: str | Mapping[str, object]) -> dict[str, int]:
    """Calls per command from ``INFO commandstats``: the raw text reply
    (``cmdstat_hset:calls=3,usec=...``) or redis-py's parsed dict."""
    counts: dict[str, int] = {}
    if isinstance(info, Mapping):
        for key, value in info.items():
            name = str(key).removeprefix("cmdstat_")
            if isinstance(value, Mapping) and "calls" in value:
                counts[name] = int(value["calls"])  # type: ignore[arg-type]
        return counts
    for line in info.splitlines():
        line = line.strip()
        if not line.startswith("cmdstat_"):
            continue
        name, _, fields = line.partition(":")
        for part in fields.split(","):
            key, _, value = part.partition("=")
            if key == "calls":
                counts[name.removeprefix("cmdstat_")] = int(value)
    return counts


def commands_delta(
    before: Mapping[str, int],
    after: Mapping[str, int],
    *,
    own: Mapping[str, int] | None = None,
    ignore: Iterable[str] = ("info",),
) -> dict[str, int]:
    """Commands issued between two snapshots, less the ones we sent ourselves
    (``own``, counted by the load generator) and the ones we asked for the
    snapshots (``info``). Redis names subcommands ``client|list``; the whole
    name is kept. Negative results (a miscount of our own) clamp to 0."""
    own = own or {}
    skip = {name.lower() for name in ignore}
    delta: dict[str, int] = {}
    for name in set(before) | set(after):
        if name.lower() in skip:
            continue
        diff = after.get(name, 0) - before.get(name, 0) - own.get(name.lower(), 0)
        if diff > 0:
            delta[name] = diff
    return delta


def proc_status_kb(status_text: str, field: str) -> int | None:
    """A ``kB`` figure such as ``VmHWM`` from the text of ``/proc/PID/status``."""
    for line in status_text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == field:
            parts = value.split()
            if parts and parts[0].isdigit():
                return int(parts[0])
    return None


def verdict(ok: bool | None) -> str:
    """``None``: the run did not measure it (e.g. one client count only)."""
    if ok is None:
        return "not measured"
    return "met" if ok else "NOT met"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain fixed-width table; floats with one decimal, NaN as ``-``."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.1f}"
        return str(value)

    body = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def key_values(pairs: Mapping[str, object]) -> str:
    """The last line a script reads: ``key=value`` separated by spaces."""

    def show(value: object) -> str:
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.1f}"
        return str(value).replace(" ", "_")

    return " ".join(f"{key}={show(value)}" for key, value in pairs.items())


_ROW = re.compile(
    r'<tr id="v?(act-[0-9a-f]+)"[^>]*>.*?<span class="state"[^>]*>([A-Za-z_]+)</span>', re.S
)


def fragment_rows(html: str) -> list[tuple[str, str]]:
    """``(dom id, state)`` of every action row in a pushed fragment, each once
    (a row of the current phase comes twice: *Active* and *All actions*)."""
    return list(dict.fromkeys(_ROW.findall(html)))


def proc_cpu_seconds(stat_text: str, ticks_per_second: int = 100) -> float:
    """User + system CPU seconds from the text of ``/proc/PID/stat``."""
    after_name = stat_text.rpartition(")")[2].split()
    # after the name: state is field 3, utime field 14 and stime field 15
    utime, stime = int(after_name[11]), int(after_name[12])
    return (utime + stime) / ticks_per_second
