"""``berth capacity``, ``berth usage``, ``berth top`` and the SVG chart against a real agent."""

from pathlib import Path
from xml.etree import ElementTree

import docker
import pytest

from tests.harness import Coordinator, eventually
from tests.integration.test_capacity import deployed
from tests.integration.test_cli_workspace import Cli

pytestmark = pytest.mark.docker

SVG = "{http://www.w3.org/2000/svg}"


async def test_capacity_usage_top_and_chart(
    coordinator: Coordinator, admin_token: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    stack = await deployed(
        coordinator, admin_token, tmp_path, agent_env={"BERTH_AGENT_SAMPLE_SECONDS": "1"}
    )
    cli = Cli(coordinator, admin_token, tmp_path / "config")
    try:

        async def sampled() -> bool:
            usage = await stack.call("GET", f"/runtime-usage/inspect?serverId={stack.server_id}")
            return usage["freshness"] == "live" and any(
                a["resourceId"] == stack.resource_id for a in usage["artifacts"]
            )

        await eventually(sampled, timeout=30, what="a live sample with the deployed container")

        table = await cli.ok("capacity")
        header, row = table.splitlines()[:2]
        for column in ("SERVER", "AGENT", "CPU", "MEMORY", "DISK", "CONTAINERS", "FRESHNESS"):
            assert column in header
        assert row.startswith("node-1")
        assert "online" in row
        assert row.count("%") == 3, row
        assert " s ago" in row, row
        raw = await cli.json("capacity")
        [item] = raw["items"]
        assert item["server"]["id"] == stack.server_id
        assert item["usage"]["totals"]["memory"]["totalBytes"] > 0

        usage = await cli.ok("usage", "resource", stack.resource_id)
        assert "Freshness" in usage
        assert "live" in usage
        assert "app" in usage  # the by-resource row names the resource
        by_name = await cli.json("usage", "server", "node-1")
        assert by_name["scope"] == {"kind": "server", "serverId": stack.server_id}
        assert [g["scope"]["resourceId"] for g in by_name["byResource"]] == [stack.resource_id]

        top = await cli.ok("top", "--iterations", "1", "--interval", "0.5")
        assert "berth top" in top
        assert "node-1" in top

        inspect = await cli.ok("capacity", "inspect", "node-1")
        assert "Memory" in inspect
        assert "DEVICE" in inspect
        prune = await cli.ok("capacity", "prune", "node-1")
        assert "Dry run: nothing was deleted" in prune
        running = [c for c in stack.containers(docker_client) if c.status == "running"]
        assert len(running) == 1

        chart = tmp_path / "out.svg"
        said = await cli.ok("capacity", "--chart", str(chart), "--window", "1h")
        assert str(chart) in said
        # The file is the one this test just had the CLI write, not untrusted input.
        root = ElementTree.fromstring(chart.read_text(encoding="utf-8"))  # noqa: S314
        assert root.tag == f"{SVG}svg"
        series = {g.get("data-series"): g for g in root.iter(f"{SVG}g")}
        assert set(series) == {"CPU busy %", "memory used %", "disk used %"}
        for name, group in series.items():
            drawn = list(group.iter(f"{SVG}polyline")) + list(group.iter(f"{SVG}circle"))
            assert drawn, f"series {name} has no data"
        texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
        assert "time (UTC)" in texts
        assert "all servers" in texts
        await cli.ok("capacity", "--chart", str(chart), "--window", "30m", "--server", "node-1")
        one = ElementTree.fromstring(chart.read_text(encoding="utf-8"))  # noqa: S314
        assert "node-1" in " ".join(t.text or "" for t in one.iter(f"{SVG}text"))
    finally:
        await stack.agent.stop()
