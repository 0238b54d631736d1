"""``berth deploy`` and ``berth deployments ...`` against a coordinator and a scripted agent."""

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from rich.console import Console

from coordinator.client.deploy_cli import follow
from coordinator.client.http import ApiClient, ApiError, ClientError
from coordinator.client.sse import SseEvent, SseParser, read_events
from shared.errors import ErrorBody, ErrorCode
from shared.messages import ArchiveArtifact, DeployAccepted, DeployPlan, DeployResultAck
from tests.fakes.agent_peer import FakeAgent
from tests.harness import Coordinator, scaled
from tests.integration.test_cli_workspace import GENERATED, Cli, make_resource, without

SECRET = "d3ploy-Secret-Value-Never-Printed"
IMAGE = "berth-test/busybox:latest"


@pytest.fixture
def cli(coordinator: Coordinator, admin_token: str, tmp_path: Path) -> Cli:
    """The CLI pointed at the in-process coordinator as its admin."""
    return Cli(coordinator, admin_token, tmp_path / "config")


@pytest.fixture
async def agent(coordinator: Coordinator, admin_token: str) -> AsyncIterator[FakeAgent]:
    """A connected scripted agent for the server ``edge-1``."""
    peer = await FakeAgent.enroll(coordinator, admin_token, "edge-1")
    await peer.connect()
    try:
        yield peer
    finally:
        await peer.close()


async def accept(agent: FakeAgent, plan: DeployPlan) -> None:
    """Answer a plan with ``deploy_accepted``."""
    await agent.send(
        DeployAccepted(id=agent.next_id(), re=plan.id, deployment_id=plan.deployment_id)
    )


async def finish(agent: FakeAgent, deployment_id: str, outcome: str, **extra: Any) -> None:
    """Send a ``deploy_result`` and wait for its ack."""
    re = await agent.result(deployment_id, outcome, **extra)
    assert (await agent.expect(DeployResultAck)).re == re


async def test_deploy_follows_to_succeeded_and_the_reads_match_the_api(
    cli: Cli, agent: FakeAgent
) -> None:
    rid = await make_resource(cli, "--image", IMAGE, "--port", "8080")
    await cli.ok("secrets", "set", "web", "DB_PASSWORD", input=SECRET)
    running = asyncio.create_task(cli("deploy", "web", "--server", "edge-1"))

    plan = await agent.expect(DeployPlan)
    # The value typed into `berth secrets set` reaches the agent exactly (no trailing newline).
    assert plan.container.environment["DB_PASSWORD"] == SECRET
    assert plan.artifact.kind == "image"
    await accept(agent, plan)
    deployment_id = plan.deployment_id
    await agent.progress(
        deployment_id,
        {"sequence": 1, "phase": "pull", "message": "using local image", "event": "phase-started"},
        {"sequence": 2, "phase": "health", "message": f"password {SECRET}", "event": "probe"},
    )
    await finish(agent, deployment_id, "succeeded", imageId="sha256:" + "c" * 64)

    result = await asyncio.wait_for(running, scaled(30))
    assert result.exit_code == 0, result.output
    assert f"Created deployment {deployment_id}." in result.stdout
    assert "using local image" in result.stdout  # the timeline, line by line when piped
    assert f"Deployment {deployment_id} succeeded." in result.stdout
    assert SECRET not in result.output  # the agent's line was masked by the coordinator
    assert "****" in result.stdout

    listing = await cli.json("deployments", "list", "--resource", "web")
    assert listing == await cli.api(f"/deployments?resourceId={rid}&limit=50")
    assert [d["id"] for d in listing["items"]] == [deployment_id]
    shown = await cli.json("deployments", "show", deployment_id)
    api_shown = await cli.api(f"/deployments/{deployment_id}")
    assert without(shown, *GENERATED) == without(api_shown, *GENERATED)
    assert "succeeded" in await cli.ok("deployments", "show", deployment_id)
    logs = await cli.json("deployments", "logs", deployment_id)
    assert logs == await cli.api(f"/deployments/{deployment_id}/logs")
    assert "using local image" in await cli.ok("deployments", "logs", deployment_id)
    out = await cli.ok("deployments", "list")
    assert deployment_id in out
    assert "web" in out  # names instead of ids for people
    assert "edge-1" in out

    # Following a finished deployment replays its timeline and ends at once; --json prints
    # the final deployment document.
    again = await cli("--json", "deployments", "follow", deployment_id)
    assert again.exit_code == 0, again.output
    final = json.loads(again.stdout)
    assert final["deployment"]["status"] == "succeeded"
    assert final["deployment"]["artifact"]["imageId"] == "sha256:" + "c" * 64

    # On a terminal the same timeline drives a rich live view.
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    async with ApiClient(cli.coordinator.url, cli.token) as api:
        assert await follow(api, deployment_id, console) == "succeeded"
    assert "using local image" in screen.getvalue()
    assert deployment_id in screen.getvalue()

    # Redeploy creates a new deployment on the same server.
    redeployed = await cli.json("redeploy", "web")
    assert redeployed["id"] != deployment_id
    plan = await agent.expect(DeployPlan)
    assert plan.deployment_id == redeployed["id"]


async def test_deploy_exits_1_on_a_failed_deployment(cli: Cli, agent: FakeAgent) -> None:
    await make_resource(cli, "--port", "8080")
    running = asyncio.create_task(cli("deploy", "web", "--server", "edge-1", "--image", IMAGE))
    plan = await agent.expect(DeployPlan)
    assert plan.artifact.kind == "image"
    assert plan.artifact.image == IMAGE  # --image set the source before deploying
    await accept(agent, plan)
    error = ErrorBody(code=ErrorCode.RUNTIME_FAILED, message="health check never passed on /")
    await finish(agent, plan.deployment_id, "failed", error=error.model_dump(by_alias=True))

    result = await asyncio.wait_for(running, scaled(30))
    assert result.exit_code == 1, result.output
    assert f"Deployment {plan.deployment_id} failed: health check never passed" in result.stderr
    assert f"berth deployments logs {plan.deployment_id}" in result.stderr

    again = await cli("--json", "deployments", "follow", plan.deployment_id)
    assert again.exit_code == 1
    assert json.loads(again.stdout)["deployment"]["status"] == "failed"

    # Retry makes a new deployment from the failed one.
    retried = await cli.json("deployments", "retry", plan.deployment_id)
    assert (await agent.expect(DeployPlan)).deployment_id == retried["id"]


async def test_deploy_refuses_a_resource_that_is_not_ready(
    cli: Cli, agent: FakeAgent, coordinator: Coordinator, admin_token: str
) -> None:
    rid = await make_resource(cli)
    result = await cli("deploy", "web", "--server", "edge-1")
    assert result.exit_code == 1
    assert result.stderr.startswith("berth: not ready to deploy:")
    assert result.stderr.count("\n") == 1  # one line, like every CLI error
    assert "resource-source-missing" in result.stderr
    listing = await cli.api(f"/deployments?resourceId={rid}")
    assert listing["items"] == []
    assert agent.count(DeployPlan) == 0

    unknown = await cli("deploy", "web", "--server", "nowhere")
    assert unknown.exit_code == 1
    assert "no server named 'nowhere'" in unknown.stderr
    both = await cli("deploy", "web", "--server", "edge-1", "--image", IMAGE, "--path", ".")
    assert both.exit_code == 2


async def test_deploy_path_uploads_the_folder_then_cancel(
    cli: Cli, agent: FakeAgent, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    (app / ".git").mkdir(parents=True)
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (app / "Dockerfile").write_text("FROM berth-test/busybox:latest\n")
    (app / "index.html").write_text("hello")
    rid = await make_resource(cli, "--port", "8080")

    not_a_dir = await cli("deploy", "web", "--server", "edge-1", "--path", str(app / "index.html"))
    assert not_a_dir.exit_code == 2

    result = await cli("--json", "deploy", "web", "--server", "edge-1", "--path", str(app),
                       "--no-follow")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"Packed {app}: 2 files" in result.stderr  # .git left out
    shown = json.loads(result.stdout)
    deployment_id = shown["deployment"]["id"]
    source = (await cli.api(f"/resources/{rid}"))["source"]
    assert source["kind"] == "local-folder"
    assert source["locator"] == str(app)
    plan = await agent.expect(DeployPlan)
    assert plan.deployment_id == deployment_id
    assert isinstance(plan.artifact, ArchiveArtifact)

    canceled = await cli.json("deployments", "cancel", deployment_id)
    assert canceled["status"] in ("canceled", "cancel-requested")


async def test_ctrl_c_stops_following_but_not_the_deployment(
    cli: Cli, coordinator: Coordinator, admin_token: str
) -> None:
    # A server whose agent never connects: the deployment waits, the CLI keeps following.
    await FakeAgent.enroll(coordinator, admin_token, "edge-1")
    await make_resource(cli, "--image", IMAGE, "--port", "8080")
    env = {**os.environ, "BERTH_URL": coordinator.url, "BERTH_TOKEN": admin_token,
           "XDG_CONFIG_HOME": str(cli.config_home), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    berth = Path(sys.executable).parent / "berth"
    process = await asyncio.create_subprocess_exec(
        str(berth), "deploy", "web", "--server", "edge-1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        seen = b""
        async with asyncio.timeout(scaled(30)):
            while b"planning started" not in seen:  # the CLI is following the stream
                line = await process.stdout.readline()
                assert line, f"berth ended early: {seen!r}"
                seen += line
        deployment_id = seen.split(b"Created deployment ", 1)[1].split(b".", 1)[0].decode()
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(scaled(15)):
            code = await process.wait()
        stderr = (await process.stderr.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 130, stderr
    assert f"Stopped following; {deployment_id} continues" in stderr
    assert f"berth deployments follow {deployment_id}" in stderr
    assert "Traceback" not in stderr
    shown = await cli.api(f"/deployments/{deployment_id}")
    assert shown["deployment"]["status"] not in ("succeeded", "failed", "canceled")
    # Canceling ends the stream the coordinator still holds for the vanished reader.
    assert (await cli.json("deployments", "cancel", deployment_id))["status"] == "canceled"


# ---- the SSE reader --------------------------------------------------------------------------


def test_sse_parser_handles_split_chunks_crlf_comments_and_multiline_data() -> None:
    parser = SseParser()
    stream = ': keepalive\r\n\r\nid: 1\r\nevent: deployment-event\r\ndata: {"a":\r\ndata:  1}\r\n'
    events: list[SseEvent] = []
    for char in stream + "\r\nid: 2\ndata: x\n\nevent: end\ndata: {}\n\n":
        events.extend(parser.feed(char))
    assert events == [
        SseEvent("deployment-event", '{"a":\n 1}', "1"),
        SseEvent("message", "x", "2"),
        SseEvent("end", "{}", "2"),
    ]
    assert parser.last_id == "2"


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free port; yield its URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_sse_reader_resumes_with_last_event_id_after_a_drop() -> None:
    seen_ids: list[str | None] = []

    async def stream(request: web.Request) -> web.StreamResponse:
        seen_ids.append(request.headers.get("Last-Event-ID"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if len(seen_ids) == 1:
            await response.write(b"id: 1\nevent: e\ndata: one\n\nid: 2\nevent: e\ndata: two\n\n")
            await response.write(b"id: 3\nevent: e\ndata: half a fra")
            assert request.transport is not None
            request.transport.close()  # the connection drops mid-frame
            return response
        if len(seen_ids) == 2:
            raise web.HTTPServiceUnavailable()  # a restarting coordinator
        await response.write(b"id: 3\nevent: e\ndata: three\n\nevent: end\ndata: {}\n\n")
        return response

    async def refused(_request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_get("/gone", refused)
    reconnects: list[int] = []
    async with serve(app) as url, ApiClient(url, "token") as api:
        frames = read_events(api, "/stream", stop_after="end", on_reconnect=reconnects.append)
        got = [event async for event in frames]
        with pytest.raises(ApiError) as refusal:
            _ = [e async for e in read_events(api, "/gone", stop_after="end")]
    assert [(e.id, e.data) for e in got] == [
        ("1", "one"),
        ("2", "two"),
        ("3", "three"),
        ("3", "{}"),
    ]
    assert seen_ids == [None, "2", "2"]
    assert reconnects == [1, 2]
    assert refusal.value.status == 404


async def test_sse_reader_gives_up_when_the_server_stays_away() -> None:
    started = datetime.now(UTC)
    async with ApiClient("http://127.0.0.1:9", "token") as api:
        with pytest.raises(ClientError, match="could not reconnect within 1 s"):
            _ = [e async for e in read_events(api, "/x", stop_after="end", give_up_after=1)]
    assert (datetime.now(UTC) - started).total_seconds() < scaled(10)
