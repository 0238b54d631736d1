"""The agent as its systemd unit runs it, with ``PYTHONOPTIMIZE=2`` (docstrings and asserts
stripped: 2 MiB less resident memory, bench/README.md): a real agent deploys, health-checks,
samples and redeploys on the real Docker engine as it does unoptimized."""

from pathlib import Path

import docker
import pytest

from tests.harness import Coordinator, eventually
from tests.integration.test_capacity import deployed

pytestmark = pytest.mark.docker

# What packaging/systemd/berth-agent.service and packaging/install-agent.sh set.
OPTIMIZED = {"PYTHONOPTIMIZE": "2"}


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.timeout(240)
async def test_an_optimized_agent_deploys_samples_and_redeploys(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await deployed(coordinator, admin_token, tmp_path, agent_env=OPTIMIZED)
    try:
        assert stack.agent.process is not None
        assert _environ(stack.agent.process.pid)["PYTHONOPTIMIZE"] == "2"
        [first] = [c for c in stack.containers(docker_client) if c.status == "running"]
        usage_path = f"/runtime-usage/inspect?scopeKind=server&serverId={stack.server_id}"

        async def sampled() -> bool:
            usage = await stack.call("GET", usage_path)
            return any(a["resourceId"] == stack.resource_id for a in usage["artifacts"])

        await eventually(sampled, timeout=90, what="a usage sample with the resource's container")
        capacity = await stack.call("GET", f"/servers/{stack.server_id}/capacity")
        assert capacity["memory"]["total"] > 0

        # A redeploy health-checks the new container and removes the old one.
        await stack.deploy()
        [second] = [c for c in stack.containers(docker_client) if c.status == "running"]
        assert second.id != first.id
        assert first.id not in {c.id for c in stack.containers(docker_client, all=True)}
        assert len(stack.deployments) == 2
    finally:
        await stack.agent.stop()
