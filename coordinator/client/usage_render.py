"""Figures for the usage CLI: byte and percent formatting, bars, freshness, windows, tables
and chart series built from API answers (no I/O)."""

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import click
from rich.table import Table
from rich.text import Text

from coordinator.client import render, svg_chart
from coordinator.client.http import JsonObject, objects, text

BAR_WIDTH: Final = 12
_DURATION: Final = re.compile(r"^(\d+)([mhd])$")
_UNIT_SECONDS: Final = {"m": 60, "h": 3600, "d": 86400}


# ---- small formatting helpers ----------------------------------------------------------------


def human_bytes(value: object) -> str:
    """``1.5 GiB`` style sizes; ``-`` for anything that is not a number."""
    if not isinstance(value, int | float):
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def percent(used: object, total: object) -> float | None:
    """``used / total`` in percent, or None when either is missing."""
    if isinstance(used, int | float) and isinstance(total, int | float) and total > 0:
        return float(used) / float(total) * 100
    return None


def bar(value: float | None) -> Text:
    """A fixed-width bar with the percentage, coloured by how full it is."""
    if value is None:
        return Text("-", style="dim")
    clamped = min(max(value, 0.0), 100.0)
    filled = round(clamped / 100 * BAR_WIDTH)
    style = "red" if clamped >= 90 else "yellow" if clamped >= 75 else "green"
    shown = Text("█" * filled, style=style)
    shown.append("░" * (BAR_WIDTH - filled), style="dim")
    shown.append(f" {clamped:3.0f}%")
    return shown


def freshness(usage: JsonObject | None, now: datetime | None = None) -> Text:
    """``12 s ago`` while live, ``stale (3m ago)`` past three intervals, ``no samples`` else."""
    if usage is None:
        return Text("-", style="dim")
    observed = render.parse_time(str(usage.get("observedAt") or ""))
    if observed is None:
        return Text("no samples", style="yellow")
    age = int(((now or datetime.now(UTC)) - observed).total_seconds())
    if usage.get("freshness") == "stale":
        return Text(f"stale ({render.relative(observed)})", style="red")
    return Text(f"{max(age, 0)} s ago" if age < 120 else render.relative(observed), style="green")


def parse_window(value: str) -> timedelta:
    """``30m``, ``6h``, ``2d`` as a duration."""
    match = _DURATION.match(value.strip())
    if match is None:
        raise click.BadParameter("use a number and m, h or d, e.g. 30m, 24h, 7d")
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def bucket_for(window: timedelta) -> str:
    """The rollup bucket that keeps a chart readable: minute up to 6 h, five-minute up to 2 d."""
    if window <= timedelta(hours=6):
        return "minute"
    if window <= timedelta(days=2):
        return "five-minute"
    return "hour"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def block(data: object, *path: str) -> JsonObject:
    found = render.lookup(data, ".".join(path))
    return found if isinstance(found, dict) else {}


def host_figures(usage: JsonObject | None) -> tuple[float | None, float | None, float | None]:
    """CPU busy, memory used and disk used percentages of a server's usage answer."""
    if usage is None:
        return None, None, None
    totals = block(usage, "totals")
    cpu = block(totals, "cpu").get("busyPercent")
    memory = block(totals, "memory")
    disk = block(totals, "disk")
    return (
        float(cpu) if isinstance(cpu, int | float) else None,
        percent(memory.get("usedBytes"), memory.get("totalBytes")),
        percent(disk.get("usedBytes"), disk.get("totalBytes")),
    )


def capacity_table(rows: Sequence[tuple[JsonObject, JsonObject | None]]) -> Table:
    """One row per server: agent status, CPU/memory/disk bars, containers, freshness."""
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for header in ("SERVER", "AGENT", "CPU", "MEMORY", "DISK", "CONTAINERS", "FRESHNESS"):
        grid.add_column(header, no_wrap=True)
    for server, usage in rows:
        cpu, memory, disk = host_figures(usage)
        count = block(usage, "totals", "containers").get("count") if usage else None
        grid.add_row(
            text(server, "name"),
            render.cell(render.lookup(server, "agent.status")),
            bar(cpu),
            bar(memory),
            bar(disk),
            str(int(count)) if isinstance(count, int | float) else "-",
            freshness(usage),
        )
    return grid


def top_table(rows: Sequence[tuple[JsonObject, JsonObject | None]], limit: int) -> Table:
    """The busiest containers over every server, by CPU."""
    containers: list[tuple[str, JsonObject]] = []
    for server, usage in rows:
        for artifact in objects(usage or {}, "artifacts"):
            containers.append((text(server, "name"), artifact))
    containers.sort(key=lambda item: float(str(item[1].get("cpuPercent") or 0)), reverse=True)
    grid = Table(box=None, pad_edge=False, header_style="bold")
    for header in ("SERVER", "CONTAINER", "RESOURCE", "CPU %", "MEMORY"):
        grid.add_column(header, no_wrap=True)
    for server_name, artifact in containers[:limit]:
        grid.add_row(
            server_name,
            text(artifact, "name") or text(artifact, "runtimeId")[:12],
            render.cell(artifact.get("resourceId")),
            render.cell(artifact.get("cpuPercent")),
            human_bytes(artifact.get("memoryBytes")),
        )
    return grid


# ---- berth capacity --------------------------------------------------------------------------


def _cpu_busy(totals: JsonObject) -> object:
    return block(totals, "cpu").get("busyPercent")


def _memory_used(totals: JsonObject) -> object:
    memory = block(totals, "memory")
    return percent(memory.get("usedBytes"), memory.get("totalBytes"))


def _disk_used(totals: JsonObject) -> object:
    disk = block(totals, "disk")
    return percent(disk.get("usedBytes"), disk.get("totalBytes"))


def chart_series(rollup: JsonObject) -> list[svg_chart.Series]:
    """CPU busy, memory used and disk used percent per rollup point."""
    wanted: dict[str, tuple[str, Callable[[JsonObject], object]]] = {
        "cpu": ("CPU busy %", _cpu_busy),
        "memory": ("memory used %", _memory_used),
        "disk": ("disk used %", _disk_used),
    }
    found: dict[str, list[tuple[datetime, float | None]]] = {name: [] for name in wanted}
    for series in objects(rollup, "series"):
        signal = text(series, "signal")
        if signal not in wanted:
            continue
        _, pick = wanted[signal]
        for point in objects(series, "points"):
            start = render.parse_time(str(point.get("from") or ""))
            value = pick(block(point, "totals"))
            if start is not None:
                found[signal].append(
                    (start, float(value) if isinstance(value, int | float) else None)
                )
    return [svg_chart.Series(wanted[signal][0], found[signal]) for signal in wanted]
