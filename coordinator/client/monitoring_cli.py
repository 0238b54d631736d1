"""`berth capacity`, `berth top`, `berth usage`: capacity and usage from the CLI."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
from rich.live import Live
from rich.table import Table
from rich.text import Text

from coordinator.client import render, svg_chart
from coordinator.client.http import ApiClient, ApiError, ClientError, JsonObject, objects, text
from coordinator.client.usage_render import (
    block,
    bucket_for,
    capacity_table,
    chart_series,
    human_bytes,
    iso,
    parse_window,
    top_table,
)
from coordinator.client.workspace_cli import (
    find_environment,
    find_project,
    find_server,
    resource_id,
    segment,
)

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

USAGE_KINDS: Final = ("server", "project", "environment", "resource", "deployment")
RESOURCE_COLUMNS: Final = (
    ("RESOURCE", "name"), ("ID", "scope.resourceId"), ("CPU %", "totals.cpu.containerCpuPercent"),
    ("MEMORY", "memory"), ("CONTAINERS", "artifactCount"), ("DEPLOYMENT", "currentDeploymentId"),
)  # fmt: skip
PRUNE_COLUMNS: Final = (
    ("ACTION", "action"), ("CATEGORY", "category"), ("TARGET", "target"), ("SIZE", "size"),
    ("REASON", "skippedReason"), ("UPDATED", "updatedAt"),
)  # fmt: skip


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


async def fetch_rollup(
    api: ApiClient, window: timedelta, server: str | None
) -> tuple[JsonObject, str, datetime, datetime]:
    """The rollup of one server or of all, over the window ending now."""
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - window
    query: dict[str, str | int | None] = {
        "bucket": bucket_for(window),
        "window.from": iso(start),
        "window.to": iso(end),
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
        memory = block(data, "memory")
        cpu = block(data, "cpu")
        docker = block(data, "docker")
        estimate = block(data, "safeReclaimableEstimate")
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
        summary = block(data, "summary")
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
        totals = block(data, "totals")
        cpu = block(totals, "cpu")
        memory = block(totals, "memory")
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
