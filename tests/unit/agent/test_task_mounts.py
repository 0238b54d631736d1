"""A task run's mounts get a deployment's checks on the agent, and older coordinators' starts
(no mounts, no networks) still decode."""

from pathlib import Path

from agent.tasks.runner import TaskRunner
from shared.messages import VolumeMount, decode_coordinator_message
from shared.messages.tasks import TaskContainer, TaskRunStart
from shared.wire import dump_json
from tests.fakes.runtime import FakeRuntime


def _start(*mounts: VolumeMount) -> TaskRunStart:
    return TaskRunStart(
        id=1,
        run_id="tkr_1",
        task_id="tsk_1",
        resource_id="res_1",
        deployment_id="dep_1",
        timeout_seconds=60,
        container=TaskContainer(
            image="example/app:1",
            command="cat /data/note",
            networks=["berth-dep-1"],
            mounts=list(mounts),
        ),
    )


async def _refused(start: TaskRunStart, roots: tuple[str, ...]) -> str:
    runtime = FakeRuntime()
    runner = TaskRunner(
        runtime, start, on_lines=lambda _: None, on_started=lambda *_: None, bind_mount_roots=roots
    )
    ending = await runner.run()
    assert ending.ended == "start-failed", ending
    assert not ending.succeeded
    assert runtime.containers == {}  # refused before anything was made
    assert ending.failure_summary is not None
    return ending.failure_summary


async def test_a_bind_mount_outside_the_agents_roots_fails_the_run_before_any_container(
    tmp_path: Path,
) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "escape").symlink_to(outside)
    for source in (outside, allowed / "escape"):
        mount = VolumeMount(
            volume_id="vol_1", kind="bind-mount", source=str(source), destination="/data"
        )
        summary = await _refused(_start(mount), (str(allowed),))
        assert summary.startswith("bind-mount-not-allowed: "), summary
        assert "outside the agent's allowed roots" in summary
    mount = VolumeMount(
        volume_id="vol_1", kind="bind-mount", source=str(allowed / "x"), destination="/data"
    )
    assert "allows no bind mounts" in await _refused(_start(mount), ())
    assert list(outside.iterdir()) == []


async def test_a_mount_over_the_hosts_special_paths_is_refused() -> None:
    mount = VolumeMount(volume_id="vol_1", kind="named-volume", source="data", destination="/proc")
    summary = await _refused(_start(mount), ())
    assert summary.startswith("mount-not-allowed: "), summary


def test_a_start_from_an_older_coordinator_has_no_mounts_or_networks() -> None:
    start = _start(VolumeMount(volume_id="v", kind="named-volume", source="d", destination="/d"))
    frame = dump_json(start)
    assert '"mounts"' in frame
    assert '"networks"' in frame
    older = frame.replace('"networks":["berth-dep-1"],', "")
    older = older[: older.index(',"mounts"')] + "}}"
    decoded = decode_coordinator_message(older)
    assert isinstance(decoded, TaskRunStart)
    assert (decoded.container.mounts, decoded.container.networks) == ([], [])
