"""`berth capacity`, `berth top`, `berth usage`: capacity and usage from the CLI."""

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
from rich.live import Live
from rich.table import Table
from rich.text import Text

from coordinator.client import render, svg_chart
from coordinator.client.http import ApiClient, ApiError, ClientError, JsonObject, objects, text
from coordinator.client.workspace_cli import (
    find_environment,
    find_project,
    find_server,
    resource_id,
    segment,
)

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

BAR_WIDTH: Final = 12
_DURATION: Final = re.compile(r"^(\d+)([mhd])$")
_UNIT_SECONDS: Final = {"m": 60, "h": 3600, "d": 86400}
USAGE_KINDS: Final = ("server", "project", "environment", "resource", "deployment")
RESOURCE_COLUMNS: Final = (
    ("RESOURCE", "name"), ("ID", "scope.resourceId"), ("CPU %", "totals.cpu.containerCpuPercent"),
    ("MEMORY", "memory"), ("CONTAINERS", "artifactCount"), ("DEPLOYMENT", "currentDeploymentId"),
)  # fmt: skip
PRUNE_COLUMNS: Final = (
    ("ACTION", "action"), ("CATEGORY", "category"), ("TARGET", "target"), ("SIZE", "size"),
    ("REASON", "skippedReason"), ("UPDATED", "updatedAt"),
)  # fmt: skip


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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _block(data: object, *path: str) -> JsonObject:
    found = render.lookup(data, ".".join(path))
    return found if isinstance(found, dict) else {}


# ---- data gathering --------------------------------------------------------------------------


async def server_usages(
    api: ApiClient, only: str | None = None
) -> list[tuple[JsonObject, JsonObject | None]]:
    """Every visible server (or one) with its usage inspect (``None`` when it cannot be read)."""
    if only is not None:
        servers = [await find_server(api, only)]
    else:
        servers = objects(await api.get_all("/servers", 500), "items")

    async def one(server: JsonObject) -> tuple[JsonObject, JsonObject | None]:
        try:
            return server, await api.get("/runtime-usage/inspect", {"serverId": text(server, "id")})
        except ApiError:
            return server, None

    return list(await asyncio.gather(*(one(s) for s in servers)))


def host_figures(usage: JsonObject | None) -> tuple[float | None, float | None, float | None]:
    """CPU busy, memory used and disk used percentages of a server's usage answer."""
    if usage is None:
        return None, None, None
    totals = _block(usage, "totals")
    cpu = _block(totals, "cpu").get("busyPercent")
    memory = _block(totals, "memory")
    disk = _block(totals, "disk")
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
        count = _block(usage, "totals", "containers").get("count") if usage else None
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
    return _block(totals, "cpu").get("busyPercent")


def _memory_used(totals: JsonObject) -> object:
    memory = _block(totals, "memory")
    return percent(memory.get("usedBytes"), memory.get("totalBytes"))


def _disk_used(totals: JsonObject) -> object:
    disk = _block(totals, "disk")
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
            value = pick(_block(point, "totals"))
            if start is not None:
                found[signal].append(
                    (start, float(value) if isinstance(value, int | float) else None)
                )
    return [svg_chart.Series(wanted[signal][0], found[signal]) for signal in wanted]


async def fetch_rollup(
    api: ApiClient, window: timedelta, server: str | None
) -> tuple[JsonObject, str, datetime, datetime]:
    """The rollup of one server or of all, over the window ending now."""
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - window
    query: dict[str, str | int | None] = {
        "bucket": bucket_for(window),
        "window.from": _iso(start),
        "window.to": _iso(end),
        "signals": "cpu,memory,disk",
        "includeDeploymentMarkers": "false",
        "includeTopContributors": "false",
    }
    label = "all servers"
    if server is None:
        query["scope.kind"] = "all"
    else:
        found = await find_server(api, server)
        query["scope.kind"] = "server"
        query["scope.serverId"] = text(found, "id")
        label = text(found, "name")
    return await api.get("/runtime-monitoring/rollup", query), label, start, end


@click.group(invoke_without_command=True)
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write an SVG chart of CPU, memory and disk to this file.",
)
@click.option("--window", default="24h", show_default=True, help="Chart window: 30m, 6h, 7d...")
@click.option("--server", help="Chart one server (default: all servers together).")
@click.pass_context
def capacity(ctx: click.Context, chart_path: Path | None, window: str, server: str | None) -> None:
    """Every server's CPU, memory and disk at a glance (or a chart with --chart)."""
    if ctx.invoked_subcommand is not None:
        return
    opts: Options = ctx.obj
    if chart_path is not None:
        span = parse_window(window)
        rollup, label, start, end = opts.call(lambda api: fetch_rollup(api, span, server))
        series = chart_series(rollup)
        title = f"Berth capacity — {label}, last {window} ({text(rollup, 'bucket')} buckets)"
        chart_path.write_text(
            svg_chart.render(series, title=title, start=start, end=end), encoding="utf-8"
        )
        if opts.as_json:
            render.print_json(rollup)
        else:
            points = sum(len(s.points) for s in series)
            click.echo(f"Wrote {chart_path} ({points} points over {window}).")
        return
    rows = opts.call(lambda api: server_usages(api, server))
    if opts.as_json:
        render.print_json({"items": [{"server": s, "usage": u} for s, u in rows]})
        return
    if not rows:
        click.echo("No servers: add one with 'berth servers add NAME'.")
        return
    render.console().print(capacity_table(rows))


@capacity.command("inspect")
@click.argument("server")
@click.pass_obj
def capacity_inspect(opts: "Options", server: str) -> None:
    """Inspect a server live through its agent: disks, memory, Docker, reclaimable space."""

    async def run(api: ApiClient) -> JsonObject:
        found = await find_server(api, server)
        return await api.get(f"/servers/{segment(text(found, 'id'))}/capacity")

    answer = opts.call(run)

    def human(data: JsonObject) -> None:
        memory = _block(data, "memory")
        cpu = _block(data, "cpu")
        docker = _block(data, "docker")
        estimate = _block(data, "safeReclaimableEstimate")
        render.details(
            [
                ("Server", render.lookup(data, "server.name")),
                ("Inspected", data.get("inspectedAt")),
                (
                    "CPU",
                    f"{cpu.get('logicalCores')} cores, load "
                    f"{cpu.get('loadAverage1m')} / {cpu.get('loadAverage5m')} / "
                    f"{cpu.get('loadAverage15m')}",
                ),
                (
                    "Memory",
                    f"{human_bytes(memory.get('used'))} of {human_bytes(memory.get('total'))} "
                    f"({memory.get('usePercent')}%)",
                ),
                ("Docker images", human_bytes(docker.get("imagesSize"))),
                ("Build cache", human_bytes(docker.get("buildCacheSize"))),
                ("Reclaimable", human_bytes(estimate.get("total"))),
                ("Partial", data.get("partial")),
            ],
            title="Capacity",
        )
        click.echo()
        disks = [
            {
                **d,
                "sizeText": human_bytes(d.get("size")),
                "usedText": human_bytes(d.get("used")),
                "availableText": human_bytes(d.get("available")),
            }
            for d in objects(data, "disk")
        ]
        render.table(
            disks,
            (
                ("PATH", "path"),
                ("DEVICE", "mount"),
                ("SIZE", "sizeText"),
                ("USED", "usedText"),
                ("FREE", "availableText"),
                ("USE %", "usePercent"),
            ),
            empty="No disks reported.",
        )
        containers = [
            {**c, "writable": human_bytes(c.get("writableBytes"))}
            for c in objects(data, "appaloftContainers")
        ]
        if containers:
            click.echo()
            render.table(
                containers,
                (
                    ("CONTAINER", "name"),
                    ("RUNNING", "running"),
                    ("STATUS", "status"),
                    ("DEPLOYMENT", "deploymentId"),
                    ("WRITABLE", "writable"),
                ),
                empty="",
            )
        for warning in objects(data, "warnings"):
            render.warn(f"{text(warning, 'code')}: {text(warning, 'message')}")

    opts.show(answer, human)


@capacity.command("prune")
@click.argument("server")
@click.option("--yes", is_flag=True, help="Really prune (default: a dry run that deletes nothing).")
@click.option(
    "--before", help="Only what is older than this (ISO time, e.g. 2026-01-01T00:00:00Z)."
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    type=click.Choice(["stopped-containers", "dangling-images", "old-workspaces"]),
    help="Limit to these (repeatable; default: all three).",
)
@click.pass_obj
def capacity_prune(
    opts: "Options", server: str, yes: bool, before: str | None, categories: tuple[str, ...]
) -> None:
    """Prune Berth-managed leftovers (never volumes, running containers or rollback candidates)."""
    body: JsonObject = {"dryRun": not yes}
    if before:
        body["before"] = before
    if categories:
        body["categories"] = list(categories)

    async def run(api: ApiClient) -> JsonObject:
        found = await find_server(api, server)
        return await api.post(f"/servers/{segment(text(found, 'id'))}/capacity/prune", body)

    answer = opts.call(run)

    def human(data: JsonObject) -> None:
        summary = _block(data, "summary")
        candidates = [
            {**c, "size": human_bytes(c.get("size"))} for c in objects(data, "candidates")
        ]
        render.table(candidates, PRUNE_COLUMNS, empty="Nothing to prune.")
        counts = (
            f"{summary.get('matchedCount')} matched, {summary.get('prunedCount')} pruned, "
            f"{summary.get('skippedCount')} skipped; "
            f"{data.get('protectedDeploymentCount')} deployments protected"
        )
        if data.get("dryRun"):
            click.echo(f"Would free {human_bytes(sum_sizes(data))} ({counts}).")
            click.echo("Dry run: nothing was deleted. Add --yes to prune.")
        else:
            click.echo(f"Freed {human_bytes(summary.get('reclaimedBytes'))} ({counts}).")

    opts.show(answer, human)


def sum_sizes(prune: JsonObject) -> int:
    """Total size of the matched candidates of a dry run."""
    total = 0
    for candidate in objects(prune, "candidates"):
        size = candidate.get("size")
        if isinstance(size, int) and candidate.get("action") == "matched":
            total += size
    return total


# ---- berth top -------------------------------------------------------------------------------


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(0.5, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 200),
    default=10,
    show_default=True,
    help="Containers to show.",
)
@click.option(
    "--iterations",
    type=click.IntRange(1),
    hidden=True,
    help="Stop after this many refreshes (for scripts and tests).",
)
@click.pass_obj
def top(opts: "Options", interval: float, limit: int, iterations: int | None) -> None:
    """Live view of servers and their busiest containers, refreshed until Ctrl-C."""
    target = opts.target()

    async def run() -> None:
        async with ApiClient(target.url, target.token) as api:
            count = 0
            with Live(Text("loading..."), console=render.console(), auto_refresh=False) as live:
                while iterations is None or count < iterations:
                    rows = await server_usages(api)
                    view = Table.grid(padding=(1, 0))
                    view.add_row(
                        Text(
                            f"berth top — {datetime.now(UTC):%H:%M:%S} UTC, "
                            f"every {interval:g} s (Ctrl-C quits)",
                            style="bold",
                        )
                    )
                    view.add_row(capacity_table(rows))
                    view.add_row(top_table(rows, limit))
                    live.update(view, refresh=True)
                    count += 1
                    if iterations is not None and count >= iterations:
                        break
                    await asyncio.sleep(interval)

    # Ctrl-C is the way out of a live view, not an error.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


# ---- berth usage -----------------------------------------------------------------------------


async def scope_id(api: ApiClient, kind: str, ref: str) -> str:
    """Turn a reference (id or name; ``PROJECT/ENV`` for environments) into an id."""
    if kind == "server":
        return text(await find_server(api, ref), "id")
    if kind == "project":
        return text(await find_project(api, ref), "id")
    if kind == "environment":
        if ref.startswith("env_"):
            return ref
        project_ref, _, env_ref = ref.partition("/")
        if not env_ref:
            raise ClientError("name an environment as PROJECT/ENVIRONMENT or by its env_ id")
        project = await find_project(api, project_ref)
        return text(await find_environment(api, text(project, "id"), env_ref), "id")
    if kind == "resource":
        return await resource_id(api, ref)
    return ref


@click.command()
@click.argument("kind", type=click.Choice(USAGE_KINDS))
@click.argument("ref", metavar="ID")
@click.pass_obj
def usage(opts: "Options", kind: str, ref: str) -> None:
    """Current usage of a server, project, environment, resource or deployment."""

    async def run(api: ApiClient) -> JsonObject:
        target = await scope_id(api, kind, ref)
        return await api.get("/runtime-usage/inspect", {"scopeKind": kind, f"{kind}Id": target})

    answer = opts.call(run)

    def human(data: JsonObject) -> None:
        totals = _block(data, "totals")
        cpu = _block(totals, "cpu")
        memory = _block(totals, "memory")
        rows: list[tuple[str, object]] = [
            ("Scope", f"{kind} {ref}"),
            ("Observed", data.get("observedAt")),
            ("Freshness", data.get("freshness")),
            ("Partial", data.get("partial")),
            ("Container CPU %", cpu.get("containerCpuPercent")),
            ("Container memory", human_bytes(memory.get("containerUsedBytes"))),
        ]
        if kind == "server":
            rows[4:4] = [
                ("CPU busy %", cpu.get("busyPercent")),
                (
                    "Memory used",
                    f"{human_bytes(memory.get('usedBytes'))} of "
                    f"{human_bytes(memory.get('totalBytes'))}",
                ),
            ]
        render.details(rows, title="Usage")
        click.echo()
        groups = [
            {**g, "memory": human_bytes(render.lookup(g, "totals.memory.containerUsedBytes"))}
            for g in objects(data, "byResource")
        ]
        render.table(groups, RESOURCE_COLUMNS, empty="No containers attributed to a resource.")
        for error in objects(data, "sourceErrors"):
            render.warn(f"{text(error, 'code')}: {text(error, 'message')}")

    opts.show(answer, human)


COMMANDS: Final[tuple[click.Command, ...]] = (capacity, top, usage)
