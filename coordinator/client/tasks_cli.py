"""``berth tasks list|create|show|run|runs|logs`` and ``berth run RES -- CMD`` (one-off)."""

import sys
from contextlib import aclosing
from typing import TYPE_CHECKING, Final

import click
import orjson

from coordinator.client import render
from coordinator.client.http import ApiClient, ClientError, JsonObject, objects, text
from coordinator.client.sse import read_events
from coordinator.client.workspace_cli import find_resource, segment

if TYPE_CHECKING:  # cli.py imports this module to register it; no import cycle at run time
    from coordinator.client.cli import Options

TASK_COLUMNS: Final = (
    ("ID", "taskId"), ("RESOURCE", "resourceId"), ("SCHEDULE", "schedule"),
    ("ZONE", "timezone"), ("STATUS", "status"), ("NEXT", "nextRunAt"),
    ("LAST", "latestRun.status"), ("COMMAND", "commandIntent"),
)  # fmt: skip
RUN_COLUMNS: Final = (
    ("ID", "runId"), ("TASK", "taskId"), ("TRIGGER", "triggerKind"), ("TRY", "attempt"),
    ("STATUS", "status"), ("EXIT", "exitCode"), ("STARTED", "startedAt"),
    ("FINISHED", "finishedAt"), ("WHY", "skippedReason"), ("FAILURE", "failureCode"),
)  # fmt: skip
FINISHED: Final = frozenset({"succeeded", "failed", "skipped"})


@click.group()
def tasks() -> None:
    """Scheduled tasks: cron commands run in fresh containers next to a resource."""


@tasks.command("list")
@click.option("--resource", "res", help="Only this resource's tasks.")
@click.pass_obj
def tasks_list(opts: "Options", res: str | None) -> None:
    """List scheduled tasks."""

    async def listing(api: ApiClient) -> JsonObject:
        query: dict[str, str | int | None] = {"limit": 100}
        if res is not None:
            query["resourceId"] = text(await find_resource(api, res), "id")
        return await api.get("/scheduled-tasks", query)

    def human(data: JsonObject) -> None:
        empty = "No scheduled tasks: add one with 'berth tasks create RES SCHEDULE -- CMD'."
        render.table(objects(data, "items"), TASK_COLUMNS, empty=empty)

    opts.show(opts.call(listing), human)


@tasks.command("create", context_settings={"ignore_unknown_options": True})
@click.argument("res")
@click.argument("schedule")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone of the schedule.")
@click.option("--timeout", "timeout", type=int, default=3600, show_default=True, help="Seconds.")
@click.option("--retries", type=int, default=0, show_default=True, help="Retries on failure.")
@click.option("--concurrency", type=click.Choice(["forbid", "allow", "replace"]), default="forbid")
@click.option(
    "--missed",
    type=click.Choice(["run-once", "skip"]),
    default="run-once",
    help="Slots missed while the coordinator was down.",
)
@click.option(
    "--exec",
    "exec_mode",
    is_flag=True,
    help="Run with docker exec in the resource's running container (not a fresh one).",
)
@click.pass_obj
def tasks_create(
    opts: "Options",
    res: str,
    schedule: str,
    command: tuple[str, ...],
    timezone: str,
    timeout: int,
    retries: int,
    concurrency: str,
    missed: str,
    exec_mode: bool,
) -> None:
    """Run COMMAND on resource RES at SCHEDULE (5 cron fields or @hourly, @daily, ...)."""

    async def create(api: ApiClient) -> JsonObject:
        resource = await find_resource(api, res)
        body: JsonObject = {
            "resourceId": text(resource, "id"),
            "schedule": schedule,
            "timezone": timezone,
            "commandIntent": " ".join(command),
            "timeoutSeconds": timeout,
            "retryLimit": retries,
            "concurrencyPolicy": concurrency,
            "missedRunPolicy": missed,
            "executionMode": "exec" if exec_mode else "fresh-container",
        }
        return await api.post("/scheduled-tasks", body)

    def human(data: JsonObject) -> None:
        at = render.lookup
        click.echo(
            f"Created task {at(data, 'task.taskId')}; next run {at(data, 'task.nextRunAt')}."
        )

    opts.show(opts.call(create), human)


@tasks.command("show")
@click.argument("task")
@click.pass_obj
def tasks_show(opts: "Options", task: str) -> None:
    """Show a task and its latest run."""

    async def show(api: ApiClient) -> JsonObject:
        return await api.get(f"/scheduled-tasks/{segment(task)}")

    def human(data: JsonObject) -> None:
        def at(path: str) -> object:
            return render.lookup(data, f"task.{path}")

        render.details(
            [(title, at(path)) for title, path in TASK_COLUMNS]
            + [
                ("Timeout", at("timeoutSeconds")),
                ("Retries", at("retryLimit")),
                ("Concurrency", at("concurrencyPolicy")),
                ("Missed runs", at("missedRunPolicy")),
                ("Last run", at("latestRun.runId")),
            ]
        )

    opts.show(opts.call(show), human)


@tasks.command("run")
@click.argument("task")
@click.pass_obj
def tasks_run(opts: "Options", task: str) -> None:
    """Run a task now (returns at once; see 'berth tasks logs RUN -f')."""

    async def run(api: ApiClient) -> JsonObject:
        return await api.post(f"/scheduled-tasks/{segment(task)}/runs", {})

    def human(data: JsonObject) -> None:
        click.echo(f"Accepted run {render.lookup(data, 'run.runId')}.")

    opts.show(opts.call(run), human)


@tasks.command("runs")
@click.option("--task", help="Only this task's runs.")
@click.option("--resource", "res", help="Only this resource's runs.")
@click.pass_obj
def tasks_runs(opts: "Options", task: str | None, res: str | None) -> None:
    """List task runs, newest first."""

    async def listing(api: ApiClient) -> JsonObject:
        query: dict[str, str | int | None] = {"limit": 100, "taskId": task}
        if res is not None:
            query["resourceId"] = text(await find_resource(api, res), "id")
        return await api.get("/scheduled-task-runs", query)

    def human(data: JsonObject) -> None:
        render.table(objects(data, "items"), RUN_COLUMNS, empty="No task runs.")

    opts.show(opts.call(listing), human)


async def follow(api: ApiClient, run_id: str, *, live: bool) -> JsonObject:
    """Print a run's output (stderr lines to stderr); with ``live``, follow its server-sent
    event stream until the run ends (resuming where it was if the connection drops).
    Returns ``{runStatus, exitCode}`` of the end (live) or the last logs page."""
    if live:
        return await _stream(api, run_id)
    cursor: str | None = None
    while True:
        query: dict[str, str | int | None] = {"limit": 100, "cursor": cursor}
        page = await api.get(f"/scheduled-task-runs/{segment(run_id)}/logs", query)
        entries = objects(page, "entries")
        for entry in entries:
            click.echo(text(entry, "message"), err=text(entry, "stream") == "stderr")
        cursor = text(page, "nextCursor") or cursor
        if not entries:
            return page


async def _stream(api: ApiClient, run_id: str) -> JsonObject:
    frames = read_events(
        api,
        f"/scheduled-task-runs/{segment(run_id)}/logs/stream",
        stop_after="end",
        on_reconnect=lambda attempt: click.echo(
            f"berth: reconnecting to the run's log stream (attempt {attempt})", err=True
        ),
    )
    async with aclosing(frames):
        async for frame in frames:
            data = orjson.loads(frame.data)
            if not isinstance(data, dict):
                raise ClientError("the log stream sent a frame that is not a JSON object")
            if frame.event == "end":
                return {"runStatus": data.get("status"), "exitCode": data.get("exitCode")}
            if frame.event == "task-run-log":
                click.echo(text(data, "message"), err=text(data, "stream") == "stderr")
    raise ClientError(f"the log stream of run {run_id} ended without its end frame")


@tasks.command("logs")
@click.argument("run")
@click.option(
    "-f",
    "--follow",
    "live",
    is_flag=True,
    help="Follow the run's live log stream until the run ends.",
)
@click.pass_obj
def tasks_logs(opts: "Options", run: str, live: bool) -> None:
    """Print a run's output (kept apart from the resource's runtime logs)."""
    _ = opts.call(lambda api: follow(api, run, live=live))


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("res")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", "timeout", type=int, default=3600, show_default=True, help="Seconds.")
@click.option(
    "--exec",
    "exec_mode",
    is_flag=True,
    help="Run with docker exec in the resource's running container (not a fresh one).",
)
@click.pass_obj
def run_one_off(
    opts: "Options", res: str, command: tuple[str, ...], timeout: int, exec_mode: bool
) -> None:
    """Run a one-off COMMAND next to resource RES (berth run RES -- CMD ...): a fresh container
    from its deployed image with its variables (--exec: in its running container); prints the
    output as it comes and exits with the command's exit code."""

    async def run(api: ApiClient) -> JsonObject:
        resource = await find_resource(api, res)
        accepted = await api.post(
            f"/resources/{segment(text(resource, 'id'))}/one-off-runs",
            {
                "commandIntent": " ".join(command),
                "timeoutSeconds": timeout,
                "executionMode": "exec" if exec_mode else "fresh-container",
            },
        )
        run_id = str(render.lookup(accepted, "run.runId"))
        return await follow(api, run_id, live=True)

    ended = opts.call(run)
    code = ended.get("exitCode")
    status = text(ended, "runStatus")
    if not isinstance(code, int):
        code = 0 if status == "succeeded" else 1
        if status != "succeeded":
            click.echo(f"berth: the run {status} without an exit code", err=True)
    sys.exit(code)


COMMANDS: Final = (tasks, run_one_off)
