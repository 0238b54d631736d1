"""Storage mounts on the agent: bind roots from local settings only, named volumes, recreate."""

import socket
from pathlib import Path

import pytest

from agent.mounts import BIND_REFUSED, MOUNT_REFUSED, MountRefused, checked_bind_source
from agent.rollout import DeployLog, Rollout
from agent.settings import AgentSettings, SettingsError, parse_roots
from shared.messages import DeployLogLine
from tests.unit.agent.test_rollout import failing, make_plan, passing, seed_old, setup


def test_bind_sources_resolve_inside_the_roots(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    roots = (str(root),)
    assert checked_bind_source(str(root / "data"), roots) == str(root / "data")
    # Missing under a root: created, as `docker run -v` would.
    assert checked_bind_source(str(root / "new" / "dir"), roots) == str(root / "new" / "dir")
    assert (root / "new" / "dir").is_dir()
    for source in (str(outside), str(root / "escape"), str(root / ".." / "outside"), "/"):
        with pytest.raises(MountRefused) as caught:
            checked_bind_source(source, roots)
        assert caught.value.details == {"reasonCode": BIND_REFUSED}
    # No roots configured: nothing can be bind-mounted.
    with pytest.raises(MountRefused, match="allows no bind mounts"):
        checked_bind_source(str(root / "data"), ())


def test_the_docker_socket_is_never_mounted_even_under_a_root(tmp_path: Path) -> None:
    with pytest.raises(MountRefused, match="never mounted"):
        checked_bind_source("/var/run/docker.sock", ("/var/run",))
    # Nor a socket file (or anything not a directory) under an allowed root.
    root = tmp_path / "r"
    root.mkdir()
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(root / "engine.sock"))
        with pytest.raises(MountRefused, match="not a directory"):
            checked_bind_source(str(root / "engine.sock"), (str(root),))
    finally:
        listener.close()


def test_roots_come_from_the_environment_and_never_allow_the_whole_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_roots("") == ()
    assert parse_roots(f"{tmp_path}:{tmp_path}/a, {tmp_path}") == (str(tmp_path), f"{tmp_path}/a")
    for bad in ("/", "relative/dir", f"{tmp_path}:/"):
        with pytest.raises(SettingsError):
            parse_roots(bad)
    monkeypatch.setenv("BERTH_AGENT_BIND_MOUNT_ROOTS", str(tmp_path))
    assert AgentSettings.from_env().bind_mount_roots == (str(tmp_path),)
    monkeypatch.delenv("BERTH_AGENT_BIND_MOUNT_ROOTS")
    assert AgentSettings.from_env().bind_mount_roots == ()


async def test_a_refused_bind_fails_the_deployment_before_anything_changes() -> None:
    runtime, edge, lines = setup()
    old_id = seed_old(runtime)
    plan = make_plan(
        mounts=[
            {
                "volumeId": "svol_1",
                "kind": "named-volume",
                "source": "berth-svol_1",
                "destination": "/a",
            },
            {
                "volumeId": "svol_2",
                "kind": "bind-mount",
                "source": "/var/run/docker.sock",
                "destination": "/s",
            },
        ]
    ).model_copy(update={"rollout_strategy": "recreate"})
    rollout = Rollout(
        plan, runtime, edge, DeployLog(lines.append, []), probe=passing, bind_roots=("/var/run",)
    )
    result = await rollout.run()
    assert result.outcome == "failed"
    assert result.error is not None
    assert result.error.code == "forbidden"
    assert result.error.details == {"reasonCode": BIND_REFUSED}
    # No volume created, the old container never stopped, nothing started.
    assert runtime.calls == []
    assert runtime.containers[old_id].state == "running"


async def test_recreate_stops_the_old_first_and_starts_it_again_when_the_new_one_fails() -> None:
    runtime, edge, lines = setup()
    seed_old(runtime)
    plan = make_plan(
        mounts=[
            {
                "volumeId": "svol_1",
                "kind": "named-volume",
                "source": "berth-svol_1",
                "destination": "/data",
            }
        ]
    ).model_copy(update={"rollout_strategy": "recreate"})
    log: list[DeployLogLine] = []
    result = await Rollout(plan, runtime, edge, DeployLog(log.append, []), probe=failing).run()
    assert result.outcome == "failed"
    assert runtime.calls == [
        ("ensure_volume", "berth-svol_1"),
        ("stop", "berth-web-dep_old-1"),
        ("run", "berth-web-dep_new-1"),
        ("remove", "berth-web-dep_new-1"),
        ("start", "berth-web-dep_old-1"),
    ]
    assert runtime.volume_labels["berth-svol_1"]["berth.storage-volume-id"] == "svol_1"
    assert runtime.volume_labels["berth-svol_1"]["berth.managed"] == "true"

    runtime, edge, lines = setup()
    seed_old(runtime)
    result = await Rollout(plan, runtime, edge, DeployLog(lines.append, []), probe=passing).run()
    assert result.outcome == "succeeded"
    (candidate,) = [c for c in runtime.containers.values() if c.spec.name.endswith("dep_new-1")]
    assert [(m.kind, m.source, m.target, m.read_only) for m in candidate.spec.mounts] == [
        ("volume", "berth-svol_1", "/data", False)
    ]
    assert [c for c in runtime.calls if c[0] != "switch"] == [
        ("ensure_volume", "berth-svol_1"),
        ("stop", "berth-web-dep_old-1"),
        ("run", "berth-web-dep_new-1"),
        ("stop", "berth-web-dep_old-1"),
        ("remove", "berth-web-dep_old-1"),
    ]


@pytest.mark.parametrize("destination", ["//", "/proc", "/sys/fs", "/dev/../dev/shm"])
async def test_the_agent_refuses_mounts_over_the_containers_kernel_interfaces(
    destination: str,
) -> None:
    runtime, edge, lines = setup()
    plan = make_plan(
        mounts=[
            {
                "volumeId": "svol_1",
                "kind": "named-volume",
                "source": "v",
                "destination": destination,
            }
        ]
    )
    result = await Rollout(plan, runtime, edge, DeployLog(lines.append, []), probe=passing).run()
    assert result.outcome == "failed"
    assert result.error is not None
    assert result.error.details == {"reasonCode": MOUNT_REFUSED}
    assert runtime.calls == []
