"""``berth domains add|list|show|verify|remove`` end to end against dnsmasq."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.dns_server import ZONE, DnsServer
from tests.harness import Coordinator, serving
from tests.integration.test_cli_workspace import Cli, make_resource


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer([f"--host-record=shop.{ZONE},203.0.113.10"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def coordinator(
    tmp_path: Path, database_url: str, dns_server: DnsServer
) -> AsyncIterator[Coordinator]:
    async with serving(
        tmp_path / "coordinator", database_url, dns_resolver=dns_server.address
    ) as harness:
        yield harness


@pytest.fixture
def cli(coordinator: Coordinator, admin_token: str, tmp_path: Path) -> Cli:
    return Cli(coordinator, admin_token, tmp_path / "config")


async def test_add_list_show_verify_remove(cli: Cli, admin_token: str) -> None:
    resource_id = await make_resource(cli)
    status, server, _ = await cli.coordinator.call(
        "POST", "/servers", token=admin_token, json={"name": "edge", "host": "203.0.113.10"}
    )
    assert status == 201, server
    added = await cli.ok("domains", "add", resource_id, f"Shop.{ZONE}", "--server", server["id"])
    assert f"Bound shop.{ZONE}" in added
    assert f"TXT _berth-challenge.shop.{ZONE} = " in added
    listed = await cli.json("domains", "list", "--resource", resource_id)
    [item] = listed["items"]
    assert item["domainName"] == f"shop.{ZONE}"
    shown = await cli.json("domains", "show", f"shop.{ZONE}")
    assert shown["binding"]["dnsObservation"]["status"] == "pending"
    verified = await cli.ok("domains", "verify", f"shop.{ZONE}")
    assert "matched" in verified
    assert "203.0.113.10" in verified
    refused = await cli("domains", "verify", item["id"], "--method", "dns-txt")
    assert refused.exit_code != 0
    assert f"_berth-challenge.shop.{ZONE}" in refused.output
    confirmed = await cli.json(
        "domains", "verify", item["id"], "--method", "manual", "--reason", "by phone"
    )
    assert confirmed["binding"]["status"] == "bound"
    assert confirmed["routeReadiness"]["status"] == "ready"
    assert "Removed domain binding" in await cli.ok("domains", "remove", f"shop.{ZONE}")
    assert (await cli.json("domains", "list"))["items"] == []
