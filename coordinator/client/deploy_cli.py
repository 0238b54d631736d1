"""``berth deploy``, ``berth deployments ...``, ``berth redeploy``: ship and follow deployments."""

import asyncio
import time
from collections import deque
from contextlib import aclosing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from coordinator.client import render
from coordinator.client.http import (
    UPLOAD_TIMEOUT,
    ApiClient,
    ApiError,
    ClientError,
    JsonObject,
    objects,
    text,
)
from coordinator.client.packing import PackingError, human_size, pack_folder
from coordinator.client.sse import read_events
from coordinator.client.workspace_cli import find_resource, find_server, resource_id, segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

DEPLOYMENT_COLUMNS: Final = (
    ("ID", "id"), ("STATUS", "status"), ("TRIGGER", "triggerKind"), ("RESOURCE", "resourceId"),
    ("SERVER", "serverId"), ("IMAGE", "artifact.image"), ("CREATED", "createdAt"),
    ("FINISHED", "finishedAt"),
)  # fmt: skip
LOG_COLUMNS: Final = (
    ("WHEN", "timestamp"), ("PHASE", "phase"), ("LEVEL", "level"), ("MESSAGE", "message"),
)  # fmt: skip
LOCATOR_HEADER: Final = "X-Berth-Locator"
TAIL_LINES: Final = 6
EXIT_INTERRUPTED: Final = 130
_STATUS_STYLE: Final = {"succeeded": "green", "failed": "red", "canceled": "yellow"}


def _follow_hint(deployment_id: str) -> str:
    return f"berth deployments follow {deployment_id}"


# ---- following -------------------------------------------------------------------------------


@dataclass
class Progress:
    """What the live view shows: status, phase, elapsed time and the last timeline lines."""

    deployment_id: str
    started: float = field(default_factory=time.monotonic)
    status: str = "created"
    phase: str = "-"
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    note: str = ""

    def elapsed(self) -> str:
        """``1m05s``."""
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"

    def __rich__(self) -> Group:
        """The live view (re-rendered on every refresh, so elapsed time keeps moving)."""
        head = Table.grid(padding=(0, 2))
        head.add_row(
            Text(self.deployment_id, style="bold"),
            Text(self.status, style=_STATUS_STYLE.get(self.status, "cyan")),
            Text(f"phase {self.phase}"),
            Text(self.elapsed(), style="dim"),
            Text(self.note, style="yellow"),
        )
        return Group(head, *(Text(f"  {line}", style="dim") for line in self.lines))


def _event_of(data: str) -> JsonObject:
    try:
        envelope: object = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ClientError("the event stream sent a frame that is not JSON") from exc
    event = envelope.get("event") if isinstance(envelope, dict) else None
    return event if isinstance(event, dict) else {}


async def follow(api: ApiClient, deployment_id: str, console: Console) -> str:
    """Follow the event stream until the deployment is terminal; return its final status."""
    progress = Progress(deployment_id)
    live = console.is_terminal

    def reconnecting(attempt: int) -> None:
        progress.note = f"connection lost, reconnecting ({attempt})"
        if not live:
            console.print(Text(progress.note, style="yellow"))

    path = f"/deployments/{segment(deployment_id)}/events/stream"
    frames = read_events(
        api, path, query={"untilTerminal": "true"}, stop_after="end", on_reconnect=reconnecting
    )
    view = Live(progress, console=console, refresh_per_second=4) if live else nullcontext()
    async with aclosing(frames):
        with view:
            async for frame in frames:
                progress.note = ""
                if frame.event == "end":
                    final: object = orjson.loads(frame.data)
                    if isinstance(final, dict) and final.get("status"):
                        progress.status = str(final["status"])
                    break
                if frame.event != "deployment-event":
                    continue
                event = _event_of(frame.data)
                progress.status = text(event, "status") or progress.status
                progress.phase = text(event, "phase") or progress.phase
                phase = text(event, "phase")
                line = f"{progress.elapsed():>6}  {phase:<9} {text(event, 'summary')}"
                progress.lines.append(line)
                if not live:
                    console.print(Text(line), highlight=False)
    return progress.status


def _failure(shown: JsonObject) -> str:
    """The most telling error message of a finished deployment."""
    message = render.lookup(shown, "latestFailure.message") or render.lookup(
        shown, "deployment.errorMessage"
    )
    code = render.lookup(shown, "deployment.errorCode")
    if message and code:
        return f"{message} ({code})"
    return str(message or code or "no error message was recorded")


def follow_and_report(opts: "Options", deployment_id: str) -> None:
    """Follow to the end, then report; exit 1 unless it succeeded, 130 on Ctrl-C."""
    console = render.console(stderr=opts.as_json)

    async def run(api: ApiClient) -> JsonObject:
        await follow(api, deployment_id, console)
        return await api.get(f"/deployments/{segment(deployment_id)}")

    ctx = click.get_current_context()
    try:
        shown = opts.call(run)
    except KeyboardInterrupt:
        # Following is only watching: the deployment carries on without us.
        click.echo(
            f"\nStopped following; {deployment_id} continues on the server. "
            f"Follow again: {_follow_hint(deployment_id)}",
            err=True,
        )
        ctx.exit(EXIT_INTERRUPTED)
    status = str(render.lookup(shown, "deployment.status"))
    if opts.as_json:
        render.print_json(shown)
    if status == "succeeded":
        if not opts.as_json:
            click.echo(f"Deployment {deployment_id} succeeded.")
        return
    click.echo(f"Deployment {deployment_id} {status}: {_failure(shown)}", err=True)
    click.echo(f"See its logs: berth deployments logs {deployment_id}", err=True)
    ctx.exit(1)


# ---- deploy ----------------------------------------------------------------------------------


def _locator(path: Path) -> str:
    """What the coordinator records as the folder's name: the path if printable ASCII."""
    shown = str(path)
    if shown.isascii() and shown.isprintable() and 0 < len(shown) <= 500:
        return shown
    return "."


async def upload(api: ApiClient, rid: str, folder: Path, console: Console) -> JsonObject:
    """Pack ``folder`` and make it the resource's source; show size and file count."""
    try:
        packed = await asyncio.to_thread(pack_folder, folder)
    except PackingError as exc:
        raise ClientError(str(exc)) from exc
    try:
        console.print(
            f"Packed {folder}: {packed.file_count} files, {human_size(packed.size_bytes)}",
            highlight=False,
        )
        answer = await api.call(
            "POST",
            f"/resources/{segment(rid)}/source/archive",
            raw=packed.file,
            headers={"Content-Type": "application/gzip", LOCATOR_HEADER: _locator(folder)},
            timeout=UPLOAD_TIMEOUT,
        )
    finally:
        packed.close()
    if text(answer, "sha256") != packed.sha256:
        raise ClientError("the uploaded archive arrived damaged (sha256 differs); try again")
    console.print(f"Uploaded source archive {text(answer, 'id')}.", highlight=False)
    return answer


def _blocked(plan: JsonObject) -> str:
    """Why a plan is not ready, on one line: ``code: message`` per blocking reason."""
    reasons = [
        f"{text(issue, 'code')}: {text(issue, 'message')}"
        for issue in objects(plan, "unsupportedReasons")
    ]
    codes = render.lookup(plan, "readiness.reasonCodes")
    if not reasons and isinstance(codes, list):
        reasons = [str(code) for code in codes]
    return "not ready to deploy: " + "; ".join(reasons or ["no reason given"])


@click.command()
@click.argument("res")
@click.option("--server", required=True, help="Server to deploy to (srv_ id or name).")
@click.option("--image", help="Run this image (sets the resource's source first).")
@click.option(
    "--path",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Upload this folder as the source and build it.",
)
@click.option("--no-follow", is_flag=True, help="Return once the deployment is created.")
@click.pass_obj
def deploy(
    opts: "Options",
    res: str,
    server: str,
    image: str | None,
    folder: Path | None,
    no_follow: bool,
) -> None:
    """Deploy RES to a server and follow it to the end (exit 1 unless it succeeds)."""
    if image and folder:
        raise click.UsageError("pass either --image or --path, not both")
    console = render.console(stderr=opts.as_json)

    async def create(api: ApiClient) -> str:
        resource = await find_resource(api, res)
        rid = text(resource, "id")
        server_id = text(await find_server(api, server), "id")
        if image:
            source: JsonObject = {"kind": "docker-image", "imageName": image}
            await api.post(f"/resources/{segment(rid)}/source", {"source": source})
        if folder is not None:
            await upload(api, rid, folder, console)
        target: JsonObject = {
            "projectId": text(resource, "projectId"),
            "environmentId": text(resource, "environmentId"),
            "resourceId": rid,
            "serverId": server_id,
        }
        plan = await api.get("/deployments/plan", {k: str(v) for k, v in target.items()})
        if render.lookup(plan, "readiness.ready") is not True:
            raise ClientError(_blocked(plan))
        for warning in objects(plan, "warnings"):
            render.warn(f"warning: {text(warning, 'message')}")
        return text(await api.post("/deployments", target), "id")

    deployment_id = opts.call(create)
    console.print(f"Created deployment {deployment_id}.", highlight=False)
    if no_follow:
        if opts.as_json:
            render.print_json(opts.call(lambda api: api.get(f"/deployments/{deployment_id}")))
        else:
            click.echo(f"Follow it: {_follow_hint(deployment_id)}")
        return
    follow_and_report(opts, deployment_id)


@click.command()
@click.argument("res")
@click.option("--server", help="Server (default: the one of the latest deployment).")
@click.option("--follow", "follow_it", is_flag=True, help="Follow the new deployment.")
@click.pass_obj
def redeploy(opts: "Options", res: str, server: str | None, follow_it: bool) -> None:
    """Deploy RES again with its current configuration."""

    async def run(api: ApiClient) -> JsonObject:
        rid = await resource_id(api, res)
        body: JsonObject = {}
        if server is not None:
            body["serverId"] = text(await find_server(api, server), "id")
        return await api.post(f"/resources/{segment(rid)}/redeploy", body)

    _started(opts, opts.call(run), "Redeploying", follow_it)


def _started(opts: "Options", answer: JsonObject, what: str, follow_it: bool) -> None:
    """Report a new deployment; follow it when asked."""
    new_id = text(answer, "id")
    if follow_it:
        render.console(stderr=opts.as_json).print(f"{what} as {new_id}.", highlight=False)
        follow_and_report(opts, new_id)
        return
    opts.show(answer, lambda _d: click.echo(f"{what} as {new_id}. Follow: {_follow_hint(new_id)}"))


# ---- deployments -----------------------------------------------------------------------------


@click.group()
def deployments() -> None:
    """List, inspect, follow and recover deployments."""


@deployments.command("list")
@click.option("--resource", help="Only this resource's deployments.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.pass_obj
def deployments_list(opts: "Options", resource: str | None, limit: int) -> None:
    """List deployments, newest first."""

    async def listing(api: ApiClient) -> tuple[JsonObject, dict[str, str]]:
        rid = await resource_id(api, resource) if resource else None
        answer = await api.get("/deployments", {"resourceId": rid, "limit": limit})
        names: dict[str, str] = {}
        if not opts.as_json:  # names for people; --json keeps the API's answer as is
            for path in ("/resources", "/servers"):
                try:
                    found = objects(await api.get_all(path, 500), "items")
                except ApiError:  # a token that may not list them still sees the ids
                    continue
                names.update((text(item, "id"), text(item, "name")) for item in found)
        return answer, names

    answer, names = opts.call(listing)

    def human(data: JsonObject) -> None:
        rows = [
            {
                **item,
                "resourceId": names.get(text(item, "resourceId"), text(item, "resourceId")),
                "serverId": names.get(text(item, "serverId"), text(item, "serverId")),
            }
            for item in objects(data, "items")
        ]
        empty = "No deployments: create one with 'berth deploy RES --server SERVER'."
        render.table(rows, DEPLOYMENT_COLUMNS, empty=empty)

    opts.show(answer, human)


@deployments.command("show")
@click.argument("deployment_id")
@click.pass_obj
def deployments_show(opts: "Options", deployment_id: str) -> None:
    """Show a deployment, its failure and what can be done next."""
    answer = opts.call(lambda api: api.get(f"/deployments/{segment(deployment_id)}"))

    def human(data: JsonObject) -> None:
        def at(path: str) -> object:
            return render.lookup(data, path)

        render.details(
            [
                ("ID", at("deployment.id")),
                ("Status", at("deployment.status")),
                ("Trigger", at("deployment.triggerKind")),
                ("Project", at("relatedContext.project.name")),
                ("Environment", at("relatedContext.environment.name")),
                ("Resource", at("relatedContext.resource.name")),
                ("Server", at("relatedContext.server.name")),
                ("Image", at("deployment.artifact.image")),
                ("Created", at("deployment.createdAt")),
                ("Started", at("deployment.startedAt")),
                ("Finished", at("deployment.finishedAt")),
                ("Error", _failure(data) if at("deployment.status") == "failed" else None),
                ("Retryable", at("recoverySummary.retryable")),
                ("Rollback ready", at("recoverySummary.rollbackReady")),
                ("Log lines", at("deployment.logCount")),
            ]
        )

    opts.show(answer, human)


@deployments.command("logs")
@click.argument("deployment_id")
@click.pass_obj
def deployments_logs(opts: "Options", deployment_id: str) -> None:
    """Print a deployment's log lines (secrets masked)."""
    answer = opts.call(lambda api: api.get(f"/deployments/{segment(deployment_id)}/logs"))

    def human(data: JsonObject) -> None:
        lines = objects(data, "logs")
        if not lines:
            click.echo("No log lines yet.")
        for line in lines:
            stamp = text(line, "timestamp")[11:19]
            level = text(line, "level")
            click.echo(f"{stamp} {text(line, 'phase'):<9} {level:<5} {text(line, 'message')}")

    opts.show(answer, human)


@deployments.command("follow")
@click.argument("deployment_id")
@click.pass_obj
def deployments_follow(opts: "Options", deployment_id: str) -> None:
    """Follow a deployment to the end (exit 1 unless it succeeds; Ctrl-C only stops watching)."""
    follow_and_report(opts, deployment_id)


@deployments.command("cancel")
@click.argument("deployment_id")
@click.pass_obj
def deployments_cancel(opts: "Options", deployment_id: str) -> None:
    """Cancel a deployment that has not finished."""
    body: JsonObject = {"confirm": deployment_id}
    answer = opts.call(lambda api: api.post(f"/deployments/{segment(deployment_id)}/cancel", body))
    opts.show(answer, lambda d: click.echo(f"Deployment {deployment_id}: {text(d, 'status')}."))


@deployments.command("retry")
@click.argument("deployment_id")
@click.option("--follow", "follow_it", is_flag=True, help="Follow the new deployment.")
@click.pass_obj
def deployments_retry(opts: "Options", deployment_id: str, follow_it: bool) -> None:
    """Retry a failed or canceled deployment with the current configuration."""
    answer = opts.call(lambda api: api.post(f"/deployments/{segment(deployment_id)}/retry", {}))
    _started(opts, answer, "Retrying", follow_it)


@deployments.command("rollback")
@click.argument("deployment_id")
@click.option("--to", "candidate", required=True, help="Succeeded deployment to return to.")
@click.option("--follow", "follow_it", is_flag=True, help="Follow the new deployment.")
@click.pass_obj
def deployments_rollback(
    opts: "Options", deployment_id: str, candidate: str, follow_it: bool
) -> None:
    """Run an earlier succeeded deployment's image and configuration again."""
    body: JsonObject = {"rollbackCandidateDeploymentId": candidate}
    path = f"/deployments/{segment(deployment_id)}/rollback"
    answer = opts.call(lambda api: api.post(path, body))
    _started(opts, answer, f"Rolling back to {candidate}", follow_it)


COMMANDS: Final = (deploy, redeploy, deployments)
