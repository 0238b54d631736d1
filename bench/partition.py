"""Partition benchmark: N agents cut off at once by a silent DROP; detection and recovery times.

Needs root (network namespaces, iptables). The coordinator runs in the root namespace on the
root end of a veth pair; the simulated agents run in one process inside the namespace, each a
real websocket client doing the real handshake, with the production link settings: TCP
keepalive and user timeout (``shared.keepalive``), pings every 60 s, heartbeats, and after a
silent loss the production probe-and-dial (``agent.reachability``). Nothing leaves the machine.

Printed, for the coordinator (API status ``offline``) and for the agents (socket closed):
detection after the cut (first, median, last) and recovery after the heal (back ``online``).

    sudo .venv/bin/python bench/partition.py --agents 1
    sudo .venv/bin/python bench/partition.py --agents 1000
"""

import argparse
import asyncio
import contextlib
import ctypes
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fanin import (  # this directory is on sys.path when run as a script
    ServerProcess,
    _host_facts,
    bootstrap,
    free_port,
    listen_overflows,
    raise_nofile_limit,
    register_agents,
    wait_http_ready,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from agent.connection import (
    AGENT_PING_INTERVAL_SECONDS,
    AGENT_PING_TIMEOUT_SECONDS,
    ReconnectPolicy,
    websocket_url,
)
from agent.reachability import ProbeResult, Reachability
from shared.crypto import sign_challenge
from shared.keepalive import DEFAULT_KEEPALIVE, apply_keepalive
from shared.messages import Challenge, Heartbeat, Hello, Welcome, decode_coordinator_message
from shared.version import MAX_FRAME_BYTES, PROTOCOL_VERSION
from shared.wire import dump_json
from tests.netns import Namespaces, missing_tools

CLONE_NEWNET = 0x40000000
POLL_SECONDS = 0.25
DETECT_LIMIT = 120.0
RECOVER_LIMIT = 60.0


def log(message: str) -> None:
    print(f"[partition] {message}", file=sys.stderr, flush=True)


def enter_namespace(name: str) -> None:
    """Move this (single-threaded) process into network namespace ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/var/run/netns/{name}") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({name}) failed")


async def _agent(url: str, server_id: str, raw_key: bytes, events: Any) -> None:
    """One simulated agent: hold the link, and on a loss wait as the real agent does."""
    policy = ReconnectPolicy()
    reachability = Reachability(url)
    key = Ed25519PrivateKey.from_private_bytes(raw_key)
    attempt = 0
    while True:
        unreachable = True
        try:
            async with connect(
                url,
                subprotocols=[Subprotocol(PROTOCOL_VERSION)],
                compression=None,
                max_size=MAX_FRAME_BYTES,
                ping_interval=AGENT_PING_INTERVAL_SECONDS,
                ping_timeout=AGENT_PING_TIMEOUT_SECONDS,
                open_timeout=10,
                proxy=None,
            ) as ws:
                apply_keepalive(ws.transport.get_extra_info("socket"), DEFAULT_KEEPALIVE)
                challenge = decode_coordinator_message(await ws.recv())
                assert isinstance(challenge, Challenge)
                hello = Hello(
                    id=1,
                    server_id=server_id,
                    signature=sign_challenge(key, challenge.nonce, server_id),
                    agent_version="bench",
                    facts=_host_facts(server_id),
                )
                await ws.send(dump_json(hello))
                welcome = decode_coordinator_message(await ws.recv())
                assert isinstance(welcome, Welcome)
                events.put(("up", server_id, time.monotonic()))
                attempt = 0
                next_id = 2
                while True:
                    try:
                        async with asyncio.timeout(welcome.heartbeat_seconds):
                            await ws.recv()
                    except TimeoutError:
                        await ws.send(dump_json(Heartbeat(id=next_id)))
                        next_id += 1
        except ConnectionClosed as exc:
            unreachable = exc.rcvd is None
        except ConnectionRefusedError:
            unreachable = False
        except (OSError, TimeoutError):
            pass
        events.put(("down", server_id, time.monotonic()))
        delay = policy.delay(attempt)
        attempt += 1
        if unreachable and await reachability.wait_after_loss(delay) is ProbeResult.OPEN:
            continue
        await asyncio.sleep(delay)


def agents_entry(namespace: str, url: str, agents: list[tuple[str, bytes]], events: Any) -> None:
    """The load process: enter the namespace, then run every simulated agent."""
    enter_namespace(namespace)
    raise_nofile_limit()

    async def main() -> None:
        await asyncio.gather(*(_agent(url, sid, key, events) for sid, key in agents))

    asyncio.run(main())


async def online_count(http: aiohttp.ClientSession, base: str, token: str) -> int:
    """How many servers the API shows ``online``."""
    online, cursor = 0, None
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        query = f"?limit=500&cursor={cursor}" if cursor else "?limit=500"
        async with http.get(f"{base}/servers{query}", headers=headers) as resp:
            body = await resp.json()
        online += sum(1 for item in body["items"] if item["agent"]["status"] == "online")
        cursor = body.get("nextCursor")
        if not cursor:
            return online


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "first": round(min(values), 2),
        "median": round(statistics.median(values), 2),
        "last": round(max(values), 2),
    }


async def measure(args: argparse.Namespace, nets: Namespaces, tmp: Path) -> dict[str, Any]:
    host, port = nets.coordinator_address, free_port()
    base = f"http://{host}:{port}"
    cmd = [sys.executable, "-m", "coordinator", "serve", "--data-dir", str(tmp / "data")]
    server = ServerProcess("coordinator", [*cmd, "--listen", f"{host}:{port}"], [], tmp / "c.log")
    events: Any = mp.get_context("fork").Queue()
    load: Any = None
    try:
        await wait_http_ready(server, f"{base}/bootstrap/auth/status", 60)
        token = await bootstrap(base)
        registration = await register_agents(base, token, args.agents, 32, 600)
        log(f"registered {len(registration.agents)} agents in {registration.seconds:.1f} s")
        load = mp.get_context("fork").Process(
            target=agents_entry,
            args=(nets.created[0].name, websocket_url(base), registration.agents, events),
            daemon=True,
        )
        load.start()
        up: dict[str, float] = {}
        down: dict[str, float] = {}

        def drain() -> None:
            with contextlib.suppress(Exception):
                while True:
                    kind, sid, at = events.get_nowait()
                    (up if kind == "up" else down)[sid] = at

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            deadline = time.monotonic() + 300
            while await online_count(http, base, token) < args.agents:
                if time.monotonic() > deadline:
                    raise RuntimeError("agents did not all come online")
                await asyncio.sleep(1)
            await asyncio.sleep(args.settle)
            drain()
            down.clear()
            log(f"{args.agents} online; cutting")
            cut = time.monotonic()
            nets.created[0].cut()
            offline_at: list[float] = []
            while len(offline_at) < args.agents and time.monotonic() - cut < DETECT_LIMIT:
                online = await online_count(http, base, token)
                now = time.monotonic() - cut
                offline_at.extend([now] * (args.agents - online - len(offline_at)))
                await asyncio.sleep(POLL_SECONDS)
            drain()
            agent_detect = [at - cut for at in down.values() if at > cut]
            log(f"coordinator saw all offline: {bool(len(offline_at) == args.agents)}; healing")
            up.clear()
            overflows = listen_overflows()
            heal = time.monotonic()
            nets.created[0].heal()
            online_at: list[float] = []
            while len(online_at) < args.agents and time.monotonic() - heal < RECOVER_LIMIT:
                online = await online_count(http, base, token)
                now = time.monotonic() - heal
                online_at.extend([now] * (online - len(online_at)))
                await asyncio.sleep(POLL_SECONDS)
            drain()
            overflows = listen_overflows() - overflows
            agent_recover = [at - heal for at in up.values() if at > heal]
        return {
            "agents": args.agents,
            "coordinator_detect_s": _spread(offline_at),
            "agent_detect_s": _spread(agent_detect),
            "coordinator_recover_s": _spread(online_at),
            "agent_recover_s": _spread(agent_recover),
            # SYNs dropped because the coordinator's accept queue was full (root namespace).
            "listen_overflows_during_recovery": overflows,
            "missed": {
                "coordinator_detect": args.agents - len(offline_at),
                "agent_detect": args.agents - len(agent_detect),
                "recover": args.agents - len(online_at),
            },
        }
    finally:
        if load is not None:
            load.kill()
            load.join(10)
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds online before the cut")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    missing = missing_tools()
    if missing:
        log(f"needs {', '.join(missing)}")
        return 2
    nets = Namespaces(1)
    try:
        with tempfile.TemporaryDirectory(prefix="berth-partition-") as tmp:
            result = asyncio.run(measure(args, nets, Path(tmp)))
    finally:
        nets.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
