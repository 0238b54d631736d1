"""wss with a private CA, HTTPS_PROXY/NO_PROXY, and a TLS-terminating reverse proxy on 443."""

import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.version import EXIT_FATAL
from tests.harness import AgentProcess, Coordinator, eventually
from tests.tcp_relays import ConnectProxy, TlsFront
from tests.tls_material import make_ca_and_server_cert

_PROXY_VARS = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env.update(extra)
    return env


@pytest.fixture
async def tls_coordinator(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[Coordinator, Path]]:
    ca, cert, key = make_ca_and_server_cert(tmp_path / "tls")
    harness = Coordinator(tmp_path / "coordinator", database_url, tls_cert=cert, tls_key=key)
    await harness.start()
    assert harness.url.startswith("https://")
    # The test's own HTTP client must trust the private CA too.
    assert harness.http is not None
    await harness.http.close()
    import aiohttp

    harness.http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(ca)))
    )
    try:
        yield harness, ca
    finally:
        await harness.close()


async def test_agent_over_wss_with_private_ca(
    tls_coordinator: tuple[Coordinator, Path], tmp_path: Path
) -> None:
    coordinator, ca = tls_coordinator
    token = await coordinator.bootstrap()
    server = await coordinator.add_server(token, "tls-1")
    assert server["installCommand"].startswith("curl -fsSL https://")

    untrusting = AgentProcess(tmp_path / "untrusting", env=_clean_env())
    code, out = await untrusting.enroll(coordinator.url, server["joinToken"])
    assert code == EXIT_FATAL
    assert "TLS verification failed" in out

    agent = AgentProcess(tmp_path / "agent", env=_clean_env())
    code, out = await agent.enroll(coordinator.url, server["joinToken"], "--ca-file", str(ca))
    assert code == 0, out
    assert (tmp_path / "agent" / "ca.pem").read_bytes() == ca.read_bytes()
    await agent.start()
    try:

        async def online() -> bool:
            return await coordinator.agent_status(token, server["id"]) == "online"

        await eventually(online, what="agent online over wss")
    finally:
        await agent.stop()


async def test_agent_honours_https_proxy_and_no_proxy(
    tls_coordinator: tuple[Coordinator, Path], tmp_path: Path
) -> None:
    coordinator, ca = tls_coordinator
    token = await coordinator.bootstrap()
    proxy = ConnectProxy()
    await proxy.start()
    target = f"127.0.0.1:{coordinator.port}"
    try:
        server = await coordinator.add_server(token, "proxied")
        agent = AgentProcess(
            tmp_path / "proxied", env=_clean_env(HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}")
        )
        code, out = await agent.enroll(coordinator.url, server["joinToken"], "--ca-file", str(ca))
        assert code == 0, out
        assert proxy.targets == [target]  # enrollment went through the proxy
        await agent.start()
        try:

            async def online() -> bool:
                return await coordinator.agent_status(token, server["id"]) == "online"

            await eventually(online, what="agent online through the proxy")
            assert proxy.targets.count(target) >= 2  # and so did the websocket
        finally:
            await agent.stop()

        seen = len(proxy.targets)
        direct = await coordinator.add_server(token, "direct")
        bypass = AgentProcess(
            tmp_path / "direct",
            env=_clean_env(HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}", NO_PROXY="127.0.0.1"),
        )
        code, out = await bypass.enroll(coordinator.url, direct["joinToken"], "--ca-file", str(ca))
        assert code == 0, out
        await bypass.start()
        try:

            async def direct_online() -> bool:
                return await coordinator.agent_status(token, direct["id"]) == "online"

            await eventually(direct_online, what="agent online bypassing the proxy")
        finally:
            await bypass.stop()
        assert len(proxy.targets) == seen
    finally:
        await proxy.close()


async def test_agent_behind_tls_terminating_reverse_proxy(
    tmp_path: Path, database_url: str
) -> None:
    ca, cert, key = make_ca_and_server_cert(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    # Port 443 as in production when we may bind it (root in CI); otherwise any free port.
    want_port = 443 if os.geteuid() == 0 else 0
    probe = Coordinator(tmp_path / "coordinator", database_url)
    await probe.start()  # learn a free plain port for the coordinator behind the front
    plain_port = probe.port
    await probe.close()
    front = TlsFront(context, plain_port)
    await front.start(want_port)
    public = "https://127.0.0.1" if front.port == 443 else f"https://127.0.0.1:{front.port}"
    coordinator = Coordinator(
        tmp_path / "coordinator", database_url, port=plain_port, public_url=public
    )
    try:
        await coordinator.start()
        token = await coordinator.bootstrap()
        server = await coordinator.add_server(token, "behind-proxy")
        assert f"--coordinator {public} " in server["installCommand"]
        agent = AgentProcess(tmp_path / "agent", env=_clean_env())
        code, out = await agent.enroll(public, server["joinToken"], "--ca-file", str(ca))
        assert code == 0, out
        await agent.start()
        try:

            async def online() -> bool:
                return await coordinator.agent_status(token, server["id"]) == "online"

            await eventually(online, what="agent online through the TLS front")
        finally:
            await agent.stop()
    finally:
        await front.close()
        await coordinator.close()
