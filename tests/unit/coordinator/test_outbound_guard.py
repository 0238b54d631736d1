"""SSRF through threshold webhooks: private targets refused when saved and when delivered."""

import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from coordinator import outbound
from coordinator.appkeys import SETTINGS_KEY
from coordinator.db.monitoring_models import ThresholdPolicy
from coordinator.monitoring.webhooks import STATE_CHANGED_EVENT, Delivery, WebhookSender
from coordinator.outbound import OutboundGuard
from coordinator.settings import Settings
from tests.harness import Coordinator, eventually
from tests.unit.coordinator.support import assert_error
from tests.unit.coordinator.test_thresholds import SECRET, cpu_rule, set_policy

PRIVATE_URLS = [
    "http://127.0.0.1:9/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:8080/hook",
    "http://[::1]:9/hook",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost:9/hook",
    "http://api.localhost/hook",
]


class Receiver:
    """A real loopback HTTP endpoint that records the Host header of every call."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.port = 0

    async def hook(self, request: web.Request) -> web.Response:
        self.hosts.append(request.headers.get("Host", ""))
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running ``Receiver``."""
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.port = runner.addresses[0][1]
    try:
        yield found
    finally:
        await runner.cleanup()


class FixedResolver(AbstractResolver):
    """A DNS that answers every name with the given addresses (plays a rebinding resolver)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


async def deliver_once(sender: WebhookSender, url: str) -> None:
    """Submit one delivery and wait until it is delivered or dropped."""
    async with sender.running():
        assert sender.submit(Delivery("whk_1", url, SECRET, STATE_CHANGED_EVENT, {"a": 1}))

        async def settled() -> bool:
            return sender.delivered + sender.dropped == 1

        await eventually(settled, timeout=10, what="the delivery to settle")


def test_guard_refuses_every_non_public_address_class() -> None:
    strict = OutboundGuard()
    for text in (
        "127.0.0.1", "169.254.169.254", "10.0.0.1", "172.31.255.255", "192.168.0.1",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fd12::1", "::ffff:10.0.0.1",
    ):  # fmt: skip
        assert not strict.address_allowed(ipaddress.ip_address(text), 443), text
    for text in ("8.8.8.8", "2606:4700:4700::1111"):
        assert strict.address_allowed(ipaddress.ip_address(text), 443), text
    # Allowing private targets still refuses the coordinator's own listener.
    relaxed = OutboundGuard(allow_private=True, own=frozenset({("127.0.0.1", 7420)}))
    assert relaxed.address_allowed(ipaddress.ip_address("10.0.0.1"), 80)
    assert relaxed.address_allowed(ipaddress.ip_address("127.0.0.1"), 8080)
    assert not relaxed.address_allowed(ipaddress.ip_address("127.0.0.1"), 7420)
    assert not relaxed.address_allowed(ipaddress.ip_address("::1"), 7420)


async def test_policy_with_a_private_webhook_target_is_refused(
    coordinator: Coordinator, admin_token: str
) -> None:
    server = await coordinator.add_server(admin_token, "db-1")
    scope = {"kind": "server", "serverId": server["id"]}
    for url in PRIVATE_URLS:
        body = {"scope": scope, "rules": [cpu_rule()], "webhookUrl": url, "webhookSecret": SECRET}
        error = assert_error(
            await set_policy(coordinator, admin_token, body), 400, "invalid_request"
        )
        assert "webhookUrl" in error["message"], (url, error)
    assert await ThresholdPolicy.all().count() == 0  # nothing partially written
    # A public name is accepted (it is resolved and checked again at every delivery).
    body = {
        "scope": scope,
        "rules": [cpu_rule()],
        "webhookUrl": "https://hooks.example.com/berth",
        "webhookSecret": SECRET,
    }
    status, answer, _ = await set_policy(coordinator, admin_token, body)
    assert status == 200, answer


async def test_allowing_private_targets_still_refuses_the_coordinator_itself(
    tmp_path: Path, database_url: str
) -> None:
    harness = Coordinator(tmp_path / "c", database_url, allow_private_webhook_targets=True)
    await harness.start()
    try:
        token = await harness.bootstrap()
        server = await harness.add_server(token, "db-1")
        scope = {"kind": "server", "serverId": server["id"]}
        base = {"scope": scope, "rules": [cpu_rule()], "webhookSecret": SECRET}
        status, answer, _ = await set_policy(
            harness, token, {**base, "webhookUrl": "http://127.0.0.1:9/hook"}
        )
        assert status == 200, answer
        assert_error(
            await set_policy(
                harness, token, {**base, "webhookUrl": f"http://127.0.0.1:{harness.port}/servers"}
            ),
            400,
            "invalid_request",
        )
    finally:
        await harness.close()


async def test_delivery_refuses_a_name_that_resolves_to_loopback(receiver: Receiver) -> None:
    """``localhost`` goes through the real system resolver: every answer is loopback."""
    sender = WebhookSender(attempts=3, first_pause_seconds=0.01)
    await deliver_once(sender, f"http://localhost:{receiver.port}/hook")
    assert receiver.hosts == []
    assert (sender.refused, sender.dropped, sender.delivered) == (1, 1, 0)


async def test_delivery_refuses_a_literal_private_address(receiver: Receiver) -> None:
    sender = WebhookSender(attempts=3, first_pause_seconds=0.01)
    await deliver_once(sender, f"http://127.0.0.1:{receiver.port}/hook")
    assert receiver.hosts == []
    assert sender.refused == 1


async def test_delivery_checks_every_resolved_address(receiver: Receiver) -> None:
    """A name answering one public and one loopback address is refused as a whole."""
    guard = OutboundGuard(resolver_factory=lambda: FixedResolver("8.8.8.8", "127.0.0.1"))
    sender = WebhookSender(attempts=2, first_pause_seconds=0.01, guard=guard)
    await deliver_once(sender, f"http://hooks.example.test:{receiver.port}/hook")
    assert receiver.hosts == []
    assert sender.refused == 1


async def test_delivery_connects_to_the_checked_address_with_the_original_host(
    receiver: Receiver,
) -> None:
    """The connection goes to the address the guard checked; Host still names the target."""
    guard = OutboundGuard(allow_private=True, resolver_factory=lambda: FixedResolver("127.0.0.1"))
    sender = WebhookSender(attempts=1, guard=guard)
    await deliver_once(sender, f"http://hooks.example.test:{receiver.port}/hook")
    assert receiver.hosts == [f"hooks.example.test:{receiver.port}"]
    assert sender.delivered == 1


def test_a_wildcard_listener_is_refused_on_every_local_address(tmp_path: Path) -> None:
    app = web.Application()
    settings = Settings(data_dir=tmp_path, host="0.0.0.0", allow_private_webhook_targets=True)
    app[SETTINGS_KEY] = settings
    outbound.install(app, settings)
    outbound.note_bound(app, [("0.0.0.0", 7420)])
    guard = outbound.guard_for(app)
    locals_ = [
        ipaddress.ip_address(entry.address.split("%", 1)[0])
        for entries in psutil.net_if_addrs().values()
        for entry in entries
        if entry.family in (socket.AF_INET, socket.AF_INET6)
    ]
    assert locals_
    for address in locals_:
        assert not guard.address_allowed(address, 7420), address
        if not address.is_loopback:
            assert guard.address_allowed(address, 7421), address
