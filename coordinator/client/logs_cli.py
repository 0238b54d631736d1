"""`berth logs`: a resource's runtime logs, history or followed live."""

from contextlib import aclosing
from typing import TYPE_CHECKING, Final

import click
import orjson

from coordinator.client.http import ApiClient, ClientError, JsonObject, Query, objects, text
from coordinator.client.sse import read_events
from coordinator.client.workspace_cli import find_resource, segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

EXIT_INTERRUPTED: Final = 130


def format_line(line: JsonObject, *, show_container: bool) -> str:
    """``HH:MM:SS.mmm [container] message``; stderr lines in red (plain when not a terminal)."""
    stamp = text(line, "timestamp")[11:23]
    where = f" [{text(line, 'runtimeInstanceId')}]" if show_container else ""
    out = f"{stamp}{where} {text(line, 'message')}"
    return click.style(out, fg="red") if line.get("stream") == "stderr" else out


def gap_marker(dropped: int) -> str:
    """The visible marker for lines a slow reader lost while following."""
    return click.style(f"... {dropped} lines dropped: this reader fell behind ...", fg="yellow")


def _query(tail: int, since: str | None, deployment: str | None) -> Query:
    query: dict[str, str | int | None] = {"tailLines": tail}
    if since:
        query["since"] = since
    if deployment:
        query["deploymentId"] = deployment
    return query


async def _follow(api: ApiClient, rid: str, query: Query, as_json: bool) -> str:
    """Print the stream until it ends; return the end reason. Reconnects resume by cursor."""

    def reconnecting(attempt: int) -> None:
        click.echo(click.style(f"connection lost, resuming ({attempt})", fg="yellow"), err=True)

    frames = read_events(
        api,
        f"/resources/{segment(rid)}/runtime-logs/stream",
        query={**query, "follow": "true"},
        stop_after="end",
        on_reconnect=reconnecting,
    )
    containers: set[str] = set()
    async with aclosing(frames):
        async for frame in frames:
            data = orjson.loads(frame.data)
            if not isinstance(data, dict):
                raise ClientError("the log stream sent a frame that is not a JSON object")
            if frame.event == "end":
                return str(data.get("reason") or "ended")
            if frame.event == "gap":
                dropped = int(data.get("dropped") or 0)
                click.echo(orjson.dumps(data).decode() if as_json else gap_marker(dropped))
                continue
            if frame.event != "runtime-logs":
                continue
            lines = objects(data, "logs")
            if as_json:
                click.echo("\n".join(orjson.dumps(line).decode() for line in lines))
                continue
            containers.update(text(line, "runtimeInstanceId") for line in lines)
            many = len(containers) > 1
            click.echo("\n".join(format_line(line, show_container=many) for line in lines))
    return "ended"


@click.command()
@click.argument("res")
@click.option("-f", "--follow", "follow_it", is_flag=True, help="Keep printing new lines.")
@click.option("--since", help="Only lines at or after this time: ISO 8601, or 30s/10m/2h/1d.")
@click.option(
    "--tail", type=click.IntRange(0, 1000), default=100, show_default=True,
    help="Lines of history per container before following.",
)  # fmt: skip
@click.option("--deployment", help="Read this deployment's containers (default: the newest).")
@click.pass_obj
def logs(
    opts: "Options",
    res: str,
    follow_it: bool,
    since: str | None,
    tail: int,
    deployment: str | None,
) -> None:
    """Print RES's container logs (secrets masked); -f follows until the containers stop."""
    query = _query(tail, since, deployment)

    async def history(api: ApiClient) -> JsonObject:
        rid = text(await find_resource(api, res), "id")
        return await api.get(f"/resources/{segment(rid)}/runtime-logs", query)

    async def follow(api: ApiClient) -> str:
        rid = text(await find_resource(api, res), "id")
        return await _follow(api, rid, query, opts.as_json)

    ctx = click.get_current_context()
    if not follow_it:
        answer = opts.call(history)

        def human(data: JsonObject) -> None:
            lines = objects(data, "logs")
            many = len({text(line, "runtimeInstanceId") for line in lines}) > 1
            for line in lines:
                click.echo(format_line(line, show_container=many))

        opts.show(answer, human)
        return
    try:
        reason = opts.call(follow)
    except KeyboardInterrupt:
        click.echo("", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    if reason == "error":
        click.echo("berth: the log stream ended with an error (is the agent online?)", err=True)
        ctx.exit(1)
    if not opts.as_json:
        click.echo(click.style(f"-- log stream ended: {reason}", dim=True), err=True)


COMMANDS: Final[tuple[click.Command, ...]] = (logs,)
