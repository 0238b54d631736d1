"""Rollout ordering, failure, cancel and masking with the fake runtime and a fake edge."""

import asyncio
import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.artifacts import ArchiveBuilder, UnsafeArchive, extract_safely
from agent.rollout import DeployLog, Rollout
from agent.runtime import RunSpec
from shared.messages import ArchiveArtifact, DeployLogLine, DeployPlan, HealthSpec
from tests.fakes.runtime import FakeEdge, FakeRuntime
from tests.polling import eventually

IMAGE = "example/web:1"
SECRET = "s3cr3t-value"


def make_plan(deployment_id: str = "dep_New", **container: Any) -> DeployPlan:
    return DeployPlan.model_validate(
        {
            "id": 1,
            "deploymentId": deployment_id,
            "organizationId": "org_1",
            "projectId": "prj_1",
            "environmentId": "env_1",
            "resourceId": "res_1",
            "resourceSlug": "web",
            "artifact": {"kind": "image", "image": IMAGE},
            "container": {
                "command": "serve",
                "internalPort": 8080,
                "environment": {"API_KEY": SECRET, "MODE": "prod"},
                "secretKeys": ["API_KEY"],
                "drainSeconds": 0,
                "stopGraceSeconds": 0,
                **container,
            },
            "health": {"intervalSeconds": 0.01, "timeoutSeconds": 1, "retries": 3},
            "route": {"hostnames": ["web.prod.demo.localhost"]},
        }
    )


def seed_old(runtime: FakeRuntime) -> str:
    old = runtime.add(
        RunSpec(
            name="berth-web-dep_old-1",
            image=IMAGE,
            labels={
                "berth.managed": "true",
                "berth.resource-id": "res_1",
                "berth.deployment-id": "dep_Old",
            },
            ports=(8080,),
        )
    )
    return old.container_id


async def passing(port: int, health: HealthSpec) -> tuple[bool, str]:
    return True, "HTTP 200 from /"


async def failing(port: int, health: HealthSpec) -> tuple[bool, str]:
    return False, "HTTP 500 from /"


def setup() -> tuple[FakeRuntime, FakeEdge, list[DeployLogLine]]:
    runtime = FakeRuntime()
    runtime.images[IMAGE] = "sha256:" + "a" * 64
    return runtime, FakeEdge(runtime.calls), []


async def test_candidate_starts_before_switch_before_old_removal() -> None:
    runtime, edge, lines = setup()
    old_id = seed_old(runtime)
    rollout = Rollout(make_plan(), runtime, edge, DeployLog(lines.append, [SECRET]), probe=passing)
    result = await rollout.run()
    assert result.outcome == "succeeded"
    assert result.image_id == "sha256:" + "a" * 64
    [candidate] = [c for c in runtime.containers.values() if c.container_id != old_id]
    assert candidate.spec.name == "berth-web-dep_new-1"
    assert candidate.spec.labels["berth.managed"] == "true"
    assert candidate.spec.labels["berth.deployment-id"] == "dep_New"
    assert candidate.spec.labels["berth.hostnames"] == "web.prod.demo.localhost"
    assert runtime.calls == [
        ("run", "berth-web-dep_new-1"),
        ("switch", f"127.0.0.1:{candidate.host_ports[8080]}"),
        ("stop", "berth-web-dep_old-1"),
        ("remove", "berth-web-dep_old-1"),
    ]
    assert old_id not in runtime.containers
    assert result.container_ids == [candidate.container_id]
    events = [line.event for line in lines if line.event]
    assert events.index("health-passed") < events.index("traffic-switched")
    assert events.index("traffic-switched") < events.index("old-removed")
    assert [line.sequence for line in lines] == list(range(1, len(lines) + 1))


async def test_failed_health_check_removes_candidate_and_keeps_old() -> None:
    runtime, edge, lines = setup()
    old_id = seed_old(runtime)
    edge.routes["res_1"] = (["web.prod.demo.localhost"], ["127.0.0.1:1111"])
    result = await Rollout(
        make_plan(), runtime, edge, DeployLog(lines.append, [SECRET]), probe=failing
    ).run()
    assert result.outcome == "failed"
    assert result.error is not None
    assert result.error.message == "health check failed after 3 attempts: HTTP 500 from /"
    assert list(runtime.containers) == [old_id]
    assert [c[0] for c in runtime.calls] == ["run", "remove"]
    assert edge.routes["res_1"][1] == ["127.0.0.1:1111"]
    assert "candidate-removed" in [line.event for line in lines]


async def test_candidate_that_exits_fails_without_waiting_for_all_retries() -> None:
    runtime, edge, lines = setup()

    async def crash(port: int, health: HealthSpec) -> tuple[bool, str]:
        for container in runtime.containers.values():
            container.state = "exited"
        return False, "ClientConnectorError on /"

    plan = make_plan()
    plan = plan.model_copy(update={"health": plan.health.model_copy(update={"retries": 50})})
    result = await Rollout(plan, runtime, edge, DeployLog(lines.append, []), probe=crash).run()
    assert result.outcome == "failed"
    assert result.error is not None
    assert "is exited after 1 attempt(s)" in result.error.message
    assert runtime.containers == {}


async def test_cancel_removes_candidate_and_keeps_old() -> None:
    runtime, edge, lines = setup()
    old_id = seed_old(runtime)
    probing = asyncio.Event()

    async def hang(port: int, health: HealthSpec) -> tuple[bool, str]:
        probing.set()
        await asyncio.Event().wait()
        return True, "unreachable"

    rollout = Rollout(make_plan(), runtime, edge, DeployLog(lines.append, []), probe=hang)
    task = asyncio.create_task(rollout.run())
    await asyncio.wait_for(probing.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(runtime.containers) == [old_id]
    assert edge.routes == {}
    assert not rollout.switched
    assert "candidate-removed" in [line.event for line in lines]


async def test_cancel_during_drain_still_finishes_the_switch() -> None:
    runtime, edge, lines = setup()
    old_id = seed_old(runtime)
    rollout = Rollout(
        make_plan(drainSeconds=30), runtime, edge, DeployLog(lines.append, []), probe=passing
    )
    task = asyncio.create_task(rollout.run())

    async def switched() -> bool:
        return rollout.switched

    await eventually(switched, what="traffic switched")
    task.cancel()
    result = await asyncio.wait_for(task, 5)
    assert result.outcome == "succeeded"
    assert old_id not in runtime.containers
    assert len(runtime.containers) == 1


async def test_secret_values_are_masked_in_every_line() -> None:
    runtime, edge, lines = setup()
    runtime.fail_run = f"cannot start: environment API_KEY={SECRET} rejected"
    result = await Rollout(
        make_plan(), runtime, edge, DeployLog(lines.append, [SECRET]), probe=passing
    ).run()
    assert result.outcome == "failed"
    assert all(SECRET not in line.message for line in lines)
    assert result.error is not None
    assert result.error.message == "cannot start: environment API_KEY=**** rejected"
    [masked] = [line for line in lines if line.masked]
    assert "API_KEY=**** rejected" in masked.message
    assert masked.level == "error"


def test_mask_replaces_longest_secret_first_and_ignores_empty_values() -> None:
    log = DeployLog(lambda line: None, ["abc", "abcdef", ""])
    assert log.mask("x abcdef y abc") == ("x **** y ****", True)
    assert log.mask("nothing here") == ("nothing here", False)


async def test_pulls_missing_image_and_refuses_route_without_port() -> None:
    runtime, edge, lines = setup()
    runtime.images.clear()
    result = await Rollout(
        make_plan(internalPort=None), runtime, edge, DeployLog(lines.append, []), probe=passing
    ).run()
    assert ("pull", IMAGE) in runtime.calls
    assert result.outcome == "failed"
    assert result.error is not None
    assert "no internal port" in result.error.message
    assert runtime.containers == {}


# ---------------------------------------------------------------------------------- archives


def _tarball(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info, None


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_file("/etc/passwd"), "escapes the workspace"),
        (_file("app/../../outside"), "escapes the workspace"),
        (_link("app/evil", "../../../etc/passwd"), "points outside the workspace"),
        (_link("evil", "/etc/passwd"), "absolute path"),
        (_link("hard", "../outside", tarfile.LNKTYPE), "escapes|outside"),
        (_device("dev"), "device"),
    ],
)
def test_unsafe_archives_are_refused(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None], reason: str
) -> None:
    archive = _tarball(tmp_path / "a.tar.gz", [_file("Dockerfile"), member])
    with pytest.raises(UnsafeArchive, match=reason):
        extract_safely(archive, tmp_path / "out")
    assert not (tmp_path / "outside").exists()


def test_safe_archive_unpacks_with_inner_links(tmp_path: Path) -> None:
    archive = _tarball(
        tmp_path / "a.tar.gz",
        [
            _file("Dockerfile", b"FROM scratch\n"),
            _file("app/main.txt", b"hi"),
            _link("app/alias.txt", "main.txt"),
        ],
    )
    extract_safely(archive, tmp_path / "out")
    assert (tmp_path / "out" / "app" / "alias.txt").read_text() == "hi"


def _archive_plan(body: bytes, port: int, **artifact: Any) -> DeployPlan:
    plan = make_plan()
    return plan.model_copy(
        update={
            "artifact": ArchiveArtifact.model_validate(
                {
                    "archiveId": "arc_1",
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "sizeBytes": len(body),
                    "downloadPath": "/agent/v1/archives/arc_1",
                    "downloadToken": "tok-123",
                    "image": "berth-local/web:dep_new",
                    **artifact,
                }
            )
        }
    )


async def _serve_archive(body: bytes) -> tuple[web.AppRunner, int, list[str]]:
    seen: list[str] = []

    async def download(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(body=body)

    app = web.Application()
    app.router.add_get("/agent/v1/archives/arc_1", download)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port, seen


async def test_archive_is_downloaded_verified_built_and_workspace_removed(
    tmp_path: Path,
) -> None:
    body = _tarball(tmp_path / "src.tar.gz", [_file("Dockerfile", b"FROM x\n")]).read_bytes()
    runner, port, seen = await _serve_archive(body)
    try:
        runtime, edge, lines = setup()
        builder = ArchiveBuilder(runtime, tmp_path / "state", f"http://127.0.0.1:{port}/x", None)
        plan = _archive_plan(body, port)
        result = await Rollout(
            plan, runtime, edge, DeployLog(lines.append, []), builder, probe=passing
        ).run()
        assert result.outcome == "succeeded", [line.message for line in lines]
        assert seen == ["Bearer tok-123"]
        assert ("build", "berth-local/web:dep_new") in runtime.calls
        assert [c.spec.image for c in runtime.containers.values()] == ["berth-local/web:dep_new"]
        assert "build" in {line.phase for line in lines}
        assert list((tmp_path / "state" / "workspaces").iterdir()) == []

        tampered = _archive_plan(body + b"x", port)
        lines.clear()
        result = await Rollout(
            tampered.model_copy(update={"deployment_id": "dep_Bad"}),
            runtime,
            edge,
            DeployLog(lines.append, []),
            builder,
            probe=passing,
        ).run()
        assert result.outcome == "failed"
        assert result.error is not None
        assert "sha256" in result.error.message or "larger" in result.error.message
        assert all("tok-123" not in line.message for line in lines)
    finally:
        await runner.cleanup()
