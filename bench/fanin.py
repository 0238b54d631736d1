"""Fan-in benchmark: one coordinator holding N real agent websockets, against bare aiohttp."""

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import multiprocessing as mp
import multiprocessing.synchronize as mp_sync
import os
import queue
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from agent.connection import AGENT_PING_INTERVAL_SECONDS, AGENT_PING_TIMEOUT_SECONDS
from coordinator.settings import Settings
from shared.crypto import generate_private_key, public_key_text, sign_challenge
from shared.keepalive import DEFAULT_KEEPALIVE, apply_keepalive
from shared.messages import (
    Challenge,
    Heartbeat,
    Hello,
    HostFacts,
    Welcome,
    decode_coordinator_message,
)
from shared.version import AGENT_CONNECT_PATH, AGENT_ENROLL_PATH, MAX_FRAME_BYTES, PROTOCOL_VERSION
from shared.wire import dump_json

HOST = "127.0.0.1"
KIB = 1024
MIB = 1024 * 1024

# Production settings of the agent's websocket client, read from the agent itself.
CLIENT_PING_INTERVAL = AGENT_PING_INTERVAL_SECONDS
CLIENT_PING_TIMEOUT = AGENT_PING_TIMEOUT_SECONDS
# The coordinator's defaults (Settings.ws_ping_seconds, agent_heartbeat_seconds); the bare
# baseline uses the same protocol ping period, and its clients send the same heartbeat frames.
_DEFAULTS = Settings(data_dir=Path("."))
SERVER_PING_SECONDS = _DEFAULTS.ws_ping_seconds
DEFAULT_HEARTBEAT_SECONDS = _DEFAULTS.agent_heartbeat_seconds

# Every wait below is bounded; these are the fixed bounds (the rest scale with N).
READY_TIMEOUT = 60.0
DIAL_TIMEOUT = 60.0
HTTP_TIMEOUT = 60.0
WORKER_START_TIMEOUT = 120.0
WORKER_CLOSE_TIMEOUT = 30.0
PROCESS_EXIT_TIMEOUT = 30.0
MAX_HOLD_SECONDS = 4 * 3600.0

TARGET_AGENTS = 10_000

# A bench registers and enrolls thousands of agents from one address with one token: the
# coordinator's rate limits (tight for enrollment) are switched off for it.
UNLIMITED = ["--rate-limit-token", "0", "--rate-limit-anonymous", "0", "--rate-limit-enroll", "0"]
TARGET_KIB_PER_AGENT = 40.0
TARGET_IDLE_CPU_PERCENT = 5.0

# The framework floor: an aiohttp websocket server with the coordinator's socket settings and
# nothing else (no DB, no pydantic). Run with ``python -c`` so that its own RSS is not inflated
# by this module's imports.
BARE_SERVER_CODE = """
import sys
from aiohttp import WSMsgType, web

MAX_FRAME_BYTES, PING = int(sys.argv[3]), float(sys.argv[4])


async def ready(request):
    return web.json_response({"ok": True})


async def connect(request):
    ws = web.WebSocketResponse(protocols=(sys.argv[5],), heartbeat=PING or None,
                               max_msg_size=MAX_FRAME_BYTES, compress=False)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.ERROR:
            break
    return ws


app = web.Application()
app.router.add_get("/ready", ready)
app.router.add_get(sys.argv[6], connect)
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=None, access_log=None,
            handle_signals=True, shutdown_timeout=5)
"""


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- process plumbing -------------------------------------------------------------------------


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin_to(cpus: list[int]) -> None:
    """Restrict the calling process to ``cpus`` (no-op where affinity is unsupported)."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, cpus)


def _die_with_parent() -> None:
    """preexec_fn: have the kernel SIGTERM the child if this process dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """Ask the kernel for a free port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def listen_overflows() -> int:
    """TcpExt ListenOverflows: SYNs dropped because an accept queue was full (host-wide)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return -1
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", "-1"))
    return -1


class ServerProcess:
    """A server under test in its own process, pinned, with its output kept in a log file."""

    def __init__(self, name: str, cmd: list[str], cpus: list[int], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.cpus = cpus
        if shutil.which("taskset") and cpus:
            cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
        self._log = log_path.open("wb")
        # A new session: a Ctrl-C in the terminal reaches only this script, which then stops
        # the server in order (load first, then server).
        self.popen = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.proc = psutil.Process(self.popen.pid)  # taskset execs, so the pid is the server's
        if cpus and not shutil.which("taskset"):
            with contextlib.suppress(psutil.Error):
                self.proc.cpu_affinity(cpus)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.popen.poll() is None

    def rss(self) -> int:
        """Resident set size in bytes."""
        return int(self.proc.memory_info().rss)

    def cpu_seconds(self) -> float:
        """User + system CPU time consumed so far (all threads)."""
        times = self.proc.cpu_times()
        return float(times.user + times.system)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the process wrote."""
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def warnings(self) -> list[str]:
        """Lines of WARNING level or above in the process's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        marks = (" WARNING ", " ERROR ", " CRITICAL ", "Traceback")
        return [line for line in text.splitlines() if any(m in line for m in marks)]

    def stop(self) -> None:
        """SIGTERM, wait (bounded), then SIGKILL."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=PROCESS_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not exit within {PROCESS_EXIT_TIMEOUT:g} s; killing it")
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()


async def wait_http_ready(server: ServerProcess, url: str, timeout: float) -> None:
    """Poll ``url`` until it answers 200, the process dies or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if not server.alive():
                raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer {url} within {timeout:g} s")


# ---- coordinator API: bootstrap, registration, verification -----------------------------------


@dataclass
class Registration:
    """What the load processes need to impersonate registered agents."""

    agents: list[tuple[str, bytes]]  # (server id, raw Ed25519 private key)
    failures: int
    seconds: float
    errors: list[str]


async def bootstrap(base: str) -> str:
    """Create the first admin; return its API token."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)) as http,
        http.post(
            f"{base}/bootstrap/auth/first-admin",
            json={"email": "bench@example.com", "displayName": "bench"},
        ) as resp,
    ):
        body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"first-admin failed: HTTP {resp.status} {body}")
        token: str = body["apiToken"]
        return token


async def register_agents(
    base: str, token: str, count: int, in_flight: int, deadline_s: float
) -> Registration:
    """Register ``count`` servers and enroll a fresh key for each, ``in_flight`` at a time."""
    agents: list[tuple[str, bytes]] = []
    errors: list[str] = []
    next_index = 0
    deadline = time.monotonic() + deadline_s
    headers = {"Authorization": f"Bearer {token}"}

    async def one(http: aiohttp.ClientSession, index: int) -> None:
        try:
            async with http.post(
                f"{base}/servers", headers=headers, json={"name": f"bench-{index:05d}"}
            ) as resp:
                created = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"POST /servers: HTTP {resp.status} {created}")
            key = generate_private_key()
            async with http.post(
                f"{base}{AGENT_ENROLL_PATH}",
                json={"joinToken": created["joinToken"], "publicKey": public_key_text(key)},
            ) as resp:
                enrolled = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"POST enroll: HTTP {resp.status} {enrolled}")
        except (aiohttp.ClientError, TimeoutError, RuntimeError, KeyError) as exc:
            if len(errors) < 5:
                errors.append(f"{type(exc).__name__}: {exc}")
            return
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        agents.append((created["id"], raw))

    async def lane(http: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < count and time.monotonic() < deadline:
            next_index += 1
            await one(http, next_index)

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=in_flight)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        last_report = time.monotonic()
        lanes = [asyncio.create_task(lane(http)) for _ in range(in_flight)]
        while not all(task.done() for task in lanes):
            await asyncio.wait(lanes, timeout=1.0)
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                log(f"  registered {len(agents)}/{count}")
        for task in lanes:
            task.result()
    elapsed = time.perf_counter() - started
    if next_index < count:
        errors.append(f"registration deadline ({deadline_s:g} s) reached")
    return Registration(agents=agents, failures=count - len(agents), seconds=elapsed, errors=errors)


@dataclass
class ApiView:
    """The coordinator's own account of its agents, through the public API."""

    servers_count: int = 0
    online: int = 0
    listed: int = 0
    pages: int = 0
    seconds: float = 0.0
    samples_online: int = 0
    samples_checked: int = 0


async def api_view(base: str, token: str, sample_ids: list[str]) -> ApiView:
    """Count servers, list them all (500 a page) counting online agents, spot-check a few."""
    view = ApiView()
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    async with aiohttp.ClientSession(
        headers=headers, timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    ) as http:
        async with http.get(f"{base}/servers/count") as resp:
            resp.raise_for_status()
            view.servers_count = int((await resp.json())["count"])
        cursor: str | None = None
        for _ in range(view.servers_count // 500 + 2):  # bounded: one page more than needed
            params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            async with http.get(f"{base}/servers", params=params) as resp:
                resp.raise_for_status()
                page = await resp.json()
            view.pages += 1
            view.listed += len(page["items"])
            view.online += sum(1 for item in page["items"] if item["agent"]["status"] == "online")
            cursor = page.get("nextCursor")
            if not cursor:
                break
        for server_id in sample_ids:
            async with http.get(f"{base}/servers/{server_id}") as resp:
                resp.raise_for_status()
                shown = await resp.json()
            view.samples_checked += 1
            view.samples_online += shown["server"]["agent"]["status"] == "online"
    view.seconds = time.perf_counter() - started
    return view


# ---- load processes: simulated agents -------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    """One load process's slice of the agents."""

    index: int
    mode: str  # "berth": real handshake; "bare": plain websocket
    url: str
    agents: list[tuple[str, bytes]]
    dials_in_flight: int
    cpus: list[int]
    seed: int
    ping_interval: float | None = CLIENT_PING_INTERVAL  # None: no client pings
    heartbeat_override: float | None = None  # None: the welcome's period; 0: send none


@dataclass
class WorkerStats:
    """Counters one load process reports back."""

    open: int = 0
    failed: int = 0
    dropped: int = 0
    heartbeats: int = 0
    frames_in: int = 0
    welcome_heartbeat: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    close_codes: Counter[str] = field(default_factory=Counter)


def _host_facts(name: str) -> HostFacts:
    return HostFacts(
        hostname=name,
        os="Debian GNU/Linux 12 (bookworm)",
        kernel="6.1.0-bench",
        architecture="x86_64",
        cpu_count=2,
        memory_bytes=2 * 1024 * MIB,
        docker_version="24.0.7",
        python_version="3.11.7",
    )


async def _dial(spec: WorkerSpec, server_id: str, raw_key: bytes) -> tuple[ClientConnection, float]:
    """Open the link; for Berth, run the challenge/hello/welcome handshake too."""
    ws = await connect(
        spec.url,
        subprotocols=[Subprotocol(PROTOCOL_VERSION)],
        compression=None,
        max_size=MAX_FRAME_BYTES,
        ping_interval=spec.ping_interval,
        ping_timeout=CLIENT_PING_TIMEOUT,
        open_timeout=DIAL_TIMEOUT,
        proxy=None,
        user_agent_header="berth-bench/fanin",
    )
    # As the production agent: the kernel watches the link (costs the coordinator nothing).
    apply_keepalive(ws.transport.get_extra_info("socket"), DEFAULT_KEEPALIVE)
    if spec.mode != "berth":
        return ws, DEFAULT_HEARTBEAT_SECONDS
    try:
        challenge = decode_coordinator_message(await ws.recv())
        if not isinstance(challenge, Challenge):
            raise RuntimeError(f"expected a challenge, got {challenge.type}")
        key = Ed25519PrivateKey.from_private_bytes(raw_key)
        hello = Hello(
            id=1,
            server_id=server_id,
            signature=sign_challenge(key, challenge.nonce, server_id),
            agent_version="bench",
            facts=_host_facts(server_id),
        )
        await ws.send(dump_json(hello))
        welcome = decode_coordinator_message(await ws.recv())
        if not isinstance(welcome, Welcome):
            raise RuntimeError(f"expected a welcome, got {welcome.type}")
    except BaseException:
        await ws.close()
        raise
    return ws, welcome.heartbeat_seconds


async def _hold(
    ws: ClientConnection, heartbeat_s: float, rng: random.Random, stats: WorkerStats
) -> None:
    """Stay connected: a heartbeat every ``heartbeat_s`` (first one jittered), read all frames."""
    loop = asyncio.get_running_loop()
    next_id = 2  # the hello was id 1
    due = loop.time() + rng.uniform(0, heartbeat_s)
    try:
        while heartbeat_s <= 0:  # heartbeats switched off (--heartbeat 0): only read
            await ws.recv()
            stats.frames_in += 1
        while True:
            try:
                async with asyncio.timeout_at(due):
                    await ws.recv()  # cancelling recv() is safe in websockets' asyncio API
                stats.frames_in += 1  # idle agents receive nothing; an error frame lands here
            except TimeoutError:
                await ws.send(dump_json(Heartbeat(id=next_id)))
                next_id += 1
                stats.heartbeats += 1
                due += heartbeat_s
    except ConnectionClosed as exc:
        stats.open -= 1
        stats.dropped += 1
        code = exc.rcvd.code if exc.rcvd else None
        stats.close_codes[f"{code} {exc.rcvd.reason if exc.rcvd else 'no close frame'}"] += 1


async def _worker(spec: WorkerSpec, stop: mp_sync.Event, results: Any) -> None:
    stats = WorkerStats()
    rng = random.Random(spec.seed)  # jitter only, not security
    gate = asyncio.Semaphore(spec.dials_in_flight)
    links: list[ClientConnection] = []
    holders: list[asyncio.Task[None]] = []
    dialled = 0
    all_dialled = asyncio.Event()

    async def agent(server_id: str, raw_key: bytes) -> None:
        nonlocal dialled
        link: ClientConnection | None = None
        heartbeat_s = DEFAULT_HEARTBEAT_SECONDS
        async with gate:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(DIAL_TIMEOUT):
                    link, heartbeat_s = await _dial(spec, server_id, raw_key)
            except Exception as exc:
                stats.failed += 1
                stats.errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            else:
                stats.latencies.append(time.perf_counter() - started)
                stats.welcome_heartbeat = heartbeat_s
                stats.open += 1
                links.append(link)
            finally:
                dialled += 1
                if dialled == len(spec.agents):
                    all_dialled.set()
        if link is not None:
            if spec.heartbeat_override is not None:
                heartbeat_s = spec.heartbeat_override
            await _hold(link, heartbeat_s, rng, stats)

    started = time.perf_counter()
    holders = [asyncio.create_task(agent(sid, key)) for sid, key in spec.agents]
    if not spec.agents:
        all_dialled.set()
    await all_dialled.wait()  # every dial is itself bounded by DIAL_TIMEOUT
    results.put(
        (
            "connected",
            spec.index,
            {
                "open": stats.open,
                "failed": stats.failed,
                "seconds": time.perf_counter() - started,
                "latencies": stats.latencies,
                "welcome_heartbeat": stats.welcome_heartbeat,
                "errors": dict(stats.errors),
            },
        )
    )

    parent = os.getppid()
    hold_deadline = time.monotonic() + MAX_HOLD_SECONDS
    while True:  # polled: the stop flag is a multiprocessing Event, not an asyncio one
        if stop.is_set() or os.getppid() != parent or time.monotonic() >= hold_deadline:
            break
        await asyncio.sleep(0.2)
    results.put(
        (
            "final",
            spec.index,
            {
                "open": stats.open,
                "dropped": stats.dropped,
                "heartbeats": stats.heartbeats,
                "frames_in": stats.frames_in,
                "close_codes": dict(stats.close_codes),
            },
        )
    )
    for task in holders:
        task.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    closing = [asyncio.create_task(link.close()) for link in links]
    if closing:
        await asyncio.wait(closing, timeout=WORKER_CLOSE_TIMEOUT)


def worker_entry(spec: WorkerSpec, start: mp_sync.Event, stop: mp_sync.Event, results: Any) -> None:
    """Load process: pin, raise the fd limit, wait for the start signal, then dial and hold."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and says stop
    pin_to(spec.cpus)
    raise_nofile_limit()
    results.put(("ready", spec.index, {}))
    if not start.wait(timeout=WORKER_START_TIMEOUT) or stop.is_set():
        return
    asyncio.run(_worker(spec, stop, results))


class Fleet:
    """The load processes for one phase; used as a context manager so they always end."""

    def __init__(
        self,
        mode: str,
        url: str,
        agents: list[tuple[str, bytes]],
        workers: int,
        dials_in_flight: int,
        cpus: list[int],
        ping_interval: float | None = CLIENT_PING_INTERVAL,
        heartbeat_override: float | None = None,
    ) -> None:
        self.ctx = mp.get_context("spawn")
        self.start_evt = self.ctx.Event()
        self.stop_evt = self.ctx.Event()
        self.results = self.ctx.Queue()
        workers = max(1, min(workers, len(agents)))
        per_worker = max(1, dials_in_flight // workers)
        self.procs = [
            self.ctx.Process(
                target=worker_entry,
                name=f"fanin-{mode}-{i}",
                daemon=True,
                args=(
                    WorkerSpec(
                        index=i,
                        mode=mode,
                        url=url,
                        agents=agents[i::workers],
                        dials_in_flight=per_worker,
                        cpus=cpus,
                        seed=i,
                        ping_interval=ping_interval,
                        heartbeat_override=heartbeat_override,
                    ),
                    self.start_evt,
                    self.stop_evt,
                    self.results,
                ),
            )
            for i in range(workers)
        ]

    def __enter__(self) -> "Fleet":
        for proc in self.procs:
            proc.start()
        self._collect("ready", WORKER_START_TIMEOUT)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_evt.set()
        deadline = time.monotonic() + WORKER_CLOSE_TIMEOUT + 15
        while any(p.is_alive() for p in self.procs) and time.monotonic() < deadline:
            # Drain unread reports: a child cannot exit while its queue feeder is blocked.
            with contextlib.suppress(queue.Empty):
                self.results.get(timeout=0.2)
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        self.results.close()
        self.results.join_thread()

    def _collect(self, kind: str, timeout: float) -> list[dict[str, Any]]:
        found: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(self.procs):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"load processes did not report {kind!r} in {timeout:g} s")
            try:
                got_kind, index, payload = self.results.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                dead = [p.name for p in self.procs if not p.is_alive() and p.exitcode]
                if dead:
                    raise RuntimeError(f"load processes died: {dead}") from None
                continue
            if got_kind == kind:
                found[index] = payload
        return [found[i] for i in sorted(found)]

    def cpu_seconds(self) -> float:
        """CPU used so far by the load processes (for a sanity check on the load side)."""
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(psutil.Error, TypeError):
                times = psutil.Process(proc.pid).cpu_times()
                total += times.user + times.system
        return total

    def connect(self, timeout: float) -> tuple[list[dict[str, Any]], float]:
        """Release all load processes at once; return their reports and the wall time."""
        started = time.perf_counter()
        self.start_evt.set()
        reports = self._collect("connected", timeout)
        return reports, time.perf_counter() - started

    def finish(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Tell the load processes to stop; return their final counters."""
        self.stop_evt.set()
        return self._collect("final", timeout)


# ---- one phase: connect, settle, measure idle ------------------------------------------------


@dataclass
class PhaseResult:
    """Figures for one server (Berth or bare) holding the fleet."""

    name: str
    agents: int
    rss_empty: int = 0
    rss_settled: int = 0
    rss_held: int = 0
    held_client: int = 0
    dial_failures: int = 0
    connect_seconds: float = 0.0
    connect_cpu_percent: float = 0.0
    heartbeat_seconds: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    listen_overflows: int = 0
    idle_seconds: float = 0.0
    idle_cpu_percent: float = 0.0
    core_busy_percent: dict[int, float] = field(default_factory=dict)
    load_cpu_percent: float = 0.0
    dropped: int = 0
    heartbeats: int = 0
    frames_in: int = 0
    threads: int = 0
    fds: int = 0
    dial_errors: dict[str, int] = field(default_factory=dict)
    close_codes: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def handshakes_per_s(self) -> float:
        return self.held_client / self.connect_seconds if self.connect_seconds else 0.0

    @property
    def kib_per_agent(self) -> float:
        held = self.held_client or 1
        return (self.rss_held - self.rss_empty) / held / KIB

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["handshakes_per_s"] = round(self.handshakes_per_s, 1)
        data["kib_per_agent"] = round(self.kib_per_agent, 2)
        return data


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _busy_percent(before: Any, after: Any) -> float:
    """Share of a CPU's time, between two ``psutil.cpu_times(percpu=True)`` rows, not idle."""
    idle = (after.idle + getattr(after, "iowait", 0)) - (before.idle + getattr(before, "iowait", 0))
    total = sum(after) - sum(before) - (getattr(after, "guest", 0) - getattr(before, "guest", 0))
    return round(100 * (1 - idle / total), 1) if total > 0 else 0.0


def run_phase(
    result: PhaseResult,
    server: ServerProcess,
    fleet: Fleet,
    args: argparse.Namespace,
    connect_timeout: float,
) -> None:
    """Connect the fleet, let it settle, then measure the server while everything idles."""
    overflows = listen_overflows()
    cpu_before = server.cpu_seconds()
    log(
        f"{result.name}: dialling {result.agents} agents ({args.dials} in flight, "
        f"{len(fleet.procs)} load processes)"
    )
    reports, wall = fleet.connect(connect_timeout)
    result.connect_cpu_percent = (server.cpu_seconds() - cpu_before) / wall * 100
    result.listen_overflows = listen_overflows() - overflows
    latencies = [x for r in reports for x in r["latencies"]]
    result.held_client = sum(r["open"] for r in reports)
    result.dial_failures = sum(r["failed"] for r in reports)
    result.connect_seconds = wall
    result.latency_p50_ms = statistics.median(latencies) * 1000 if latencies else 0.0
    result.latency_p99_ms = _percentile(latencies, 0.99) * 1000
    result.latency_max_ms = max(latencies, default=0.0) * 1000
    errors: Counter[str] = Counter()
    for report in reports:
        errors.update(report["errors"])
    result.dial_errors = dict(errors.most_common(5))
    result.heartbeat_seconds = (
        args.heartbeat
        if args.heartbeat is not None
        else max((r["welcome_heartbeat"] for r in reports), default=0.0)
    )
    log(
        f"{result.name}: {result.held_client} connected, {result.dial_failures} failed in "
        f"{wall:.1f} s ({result.handshakes_per_s:.0f}/s)"
    )
    if errors:
        log(f"{result.name}: dial errors {dict(errors.most_common(3))}")

    time.sleep(args.settle)
    if not server.alive():
        raise RuntimeError(f"{server.name} died after the connect phase:\n{server.log_tail()}")
    result.rss_settled = server.rss()
    log(
        f"{result.name}: settled, RSS {result.rss_settled / MIB:.1f} MiB; "
        f"idle window {args.idle_seconds:g} s"
    )
    core0 = psutil.cpu_times(percpu=True)
    cpu0, load0, t0 = server.cpu_seconds(), fleet.cpu_seconds(), time.perf_counter()
    time.sleep(args.idle_seconds)
    cpu1, load1, t1 = server.cpu_seconds(), fleet.cpu_seconds(), time.perf_counter()
    core1 = psutil.cpu_times(percpu=True)
    result.core_busy_percent = {cpu: _busy_percent(core0[cpu], core1[cpu]) for cpu in server.cpus}
    result.idle_seconds = t1 - t0
    result.idle_cpu_percent = (cpu1 - cpu0) / (t1 - t0) * 100
    result.load_cpu_percent = (load1 - load0) / (t1 - t0) * 100
    result.rss_held = server.rss()
    result.threads = server.proc.num_threads()
    result.fds = server.proc.num_fds()
    log(
        f"{result.name}: idle CPU {result.idle_cpu_percent:.2f} % of one core, RSS "
        f"{result.rss_held / MIB:.1f} MiB ({result.kib_per_agent:.1f} KiB/agent)"
    )


def absorb_final(result: PhaseResult, finals: list[dict[str, Any]]) -> None:
    """Fold the load processes' last counters into ``result``."""
    result.dropped = sum(f["dropped"] for f in finals)
    result.heartbeats = sum(f["heartbeats"] for f in finals)
    result.frames_in = sum(f["frames_in"] for f in finals)
    codes: Counter[str] = Counter()
    for final in finals:
        codes.update(final["close_codes"])
    result.close_codes = dict(codes)
    still_open = sum(f["open"] for f in finals)
    if still_open != result.held_client:
        result.extra["held_client_at_end"] = still_open


def run_berth(
    args: argparse.Namespace, workdir: Path, server_cpus: list[int], load_cpus: list[int]
) -> PhaseResult:
    """The coordinator: bootstrap, register N agents over HTTP, connect them, measure."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    data_dir = workdir / "coordinator"
    cmd = [
        sys.executable,
        "-m",
        "coordinator",
        "serve",
        "--data-dir",
        str(data_dir),
        "--listen",
        f"{HOST}:{port}",
        "--log-level",
        "WARNING",
        *UNLIMITED,
    ]
    server = ServerProcess("coordinator", cmd, server_cpus, workdir / "coordinator.log")
    result = PhaseResult(name="berth", agents=args.agents)
    try:
        asyncio.run(wait_http_ready(server, f"{base}/bootstrap/auth/status", READY_TIMEOUT))
        token = asyncio.run(bootstrap(base))
        result.extra["rss_bootstrapped"] = server.rss()
        log(
            f"coordinator ready on {base} (pid {server.proc.pid}); registering {args.agents} "
            f"agents, {args.register_in_flight} in flight"
        )
        registration = asyncio.run(
            register_agents(
                base,
                token,
                args.agents,
                args.register_in_flight,
                deadline_s=120 + args.agents * 0.5,
            )
        )
        rate = len(registration.agents) / registration.seconds if registration.seconds else 0
        result.extra.update(
            registered=len(registration.agents),
            registration_failures=registration.failures,
            registration_seconds=round(registration.seconds, 2),
            registrations_per_s=round(rate, 1),
            registration_errors=registration.errors,
        )
        log(
            f"registered {len(registration.agents)} in {registration.seconds:.1f} s "
            f"({rate:.0f}/s), {registration.failures} failed {registration.errors[:2]}"
        )
        if not registration.agents:
            raise RuntimeError("no agent could be registered")
        time.sleep(args.settle)  # let the registration's keep-alive sockets close
        result.rss_empty = server.rss()
        with Fleet(
            "berth",
            f"ws://{HOST}:{port}{AGENT_CONNECT_PATH}",
            registration.agents,
            args.workers,
            args.dials,
            load_cpus,
            ping_interval=args.client_ping or None,
            heartbeat_override=args.heartbeat,
        ) as fleet:
            run_phase(result, server, fleet, args, connect_timeout=60 + args.agents * 0.2)
            samples = [
                sid
                for sid, _ in random.Random(0).sample(
                    registration.agents, min(5, len(registration.agents))
                )
            ]
            view = asyncio.run(api_view(base, token, samples))
            result.extra.update(
                api_servers_count=view.servers_count,
                api_listed=view.listed,
                api_online=view.online,
                api_pages=view.pages,
                api_list_seconds=round(view.seconds, 2),
                api_samples_online=f"{view.samples_online}/{view.samples_checked}",
            )
            log(
                f"API: {view.online} online of {view.listed} listed ({view.servers_count} "
                f"counted) in {view.seconds:.1f} s; samples online "
                f"{view.samples_online}/{view.samples_checked}"
            )
            absorb_final(result, fleet.finish())
    finally:
        warnings = server.warnings()
        server.stop()
        result.extra["coordinator_warnings"] = len(warnings)
        if warnings:
            result.extra["coordinator_warning_samples"] = warnings[:5]
            log(f"coordinator logged {len(warnings)} warning lines, e.g. {warnings[:3]}")
    return result


def run_bare(
    args: argparse.Namespace, workdir: Path, server_cpus: list[int], load_cpus: list[int]
) -> PhaseResult:
    """The framework floor: a bare aiohttp websocket server holding the same N idle links."""
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        BARE_SERVER_CODE,
        HOST,
        str(port),
        str(MAX_FRAME_BYTES),
        str(args.bare_server_ping),
        PROTOCOL_VERSION,
        AGENT_CONNECT_PATH,
    ]
    server = ServerProcess("bare aiohttp", cmd, server_cpus, workdir / "bare.log")
    result = PhaseResult(name="bare", agents=args.agents)
    try:
        asyncio.run(wait_http_ready(server, f"http://{HOST}:{port}/ready", READY_TIMEOUT))
        time.sleep(args.settle)
        result.rss_empty = server.rss()
        log(f"bare aiohttp server ready on port {port} (pid {server.proc.pid})")
        agents = [(f"bare-{i:05d}", b"") for i in range(args.agents)]
        with Fleet(
            "bare",
            f"ws://{HOST}:{port}{AGENT_CONNECT_PATH}",
            agents,
            args.workers,
            args.dials,
            load_cpus,
            ping_interval=args.client_ping or None,
            heartbeat_override=args.heartbeat,
        ) as fleet:
            run_phase(result, server, fleet, args, connect_timeout=60 + args.agents * 0.2)
            absorb_final(result, fleet.finish())
    finally:
        server.stop()
    return result


# ---- report ------------------------------------------------------------------------------------


def _fmt_busy(busy: dict[int, float]) -> str:
    return ", ".join(f"CPU{cpu} {pct:.1f}" for cpu, pct in busy.items()) or "-"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def render(
    args: argparse.Namespace, berth: PhaseResult, bare: PhaseResult | None, layout: str
) -> str:
    """The results table with the targets' verdicts."""
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, value: Any, base: Any = "", ratio: str = "") -> None:
        rows.append((label, str(value), str(base), ratio))

    b, x = berth, bare
    extra = b.extra
    row("agents requested", b.agents, x.agents if x else "")
    row(
        "registrations/s (POST /servers + enroll)",
        f"{extra.get('registrations_per_s', 0):.0f} ({extra.get('registered', 0)} in "
        f"{extra.get('registration_seconds', 0):.1f} s)",
    )
    row("agents held (API: agent.status online)", extra.get("api_online", "-"))
    row(
        "links held (client view, after idle)",
        b.held_client - b.dropped,
        x.held_client - x.dropped if x else "",
    )
    row(
        "dial failures / dropped during hold",
        f"{b.dial_failures} / {b.dropped}",
        f"{x.dial_failures} / {x.dropped}" if x else "",
    )
    row(
        "handshakes/s (connect phase)",
        f"{b.handshakes_per_s:.0f}",
        f"{x.handshakes_per_s:.0f}" if x else "",
        _ratio(b.handshakes_per_s, x.handshakes_per_s) if x else "",
    )
    row(
        "connect phase wall time (s)",
        f"{b.connect_seconds:.1f}",
        f"{x.connect_seconds:.1f}" if x else "",
    )
    row(
        "server CPU during connect phase (% of one core)",
        f"{b.connect_cpu_percent:.0f}",
        f"{x.connect_cpu_percent:.0f}" if x else "",
    )
    row(
        "handshake latency p50 / p99 / max (ms)",
        f"{b.latency_p50_ms:.0f} / {b.latency_p99_ms:.0f} / {b.latency_max_ms:.0f}",
        f"{x.latency_p50_ms:.0f} / {x.latency_p99_ms:.0f} / {x.latency_max_ms:.0f}" if x else "",
    )
    row(
        "listen-queue overflows during connect", b.listen_overflows, x.listen_overflows if x else ""
    )
    row(
        "server RSS, 0 agents (MiB) [baseline]",
        f"{b.rss_empty / MIB:.1f}",
        f"{x.rss_empty / MIB:.1f}" if x else "",
        _ratio(b.rss_empty, x.rss_empty) if x else "",
    )
    row(
        "server RSS, all held + idle (MiB)",
        f"{b.rss_held / MIB:.1f}",
        f"{x.rss_held / MIB:.1f}" if x else "",
        _ratio(b.rss_held, x.rss_held) if x else "",
    )
    row(
        "RSS per held agent (KiB)",
        f"{b.kib_per_agent:.1f}",
        f"{x.kib_per_agent:.1f}" if x else "",
        _ratio(b.kib_per_agent, x.kib_per_agent) if x else "",
    )
    row(
        f"idle CPU, {b.idle_seconds:.0f} s window (% of one core)",
        f"{b.idle_cpu_percent:.2f}",
        f"{x.idle_cpu_percent:.2f}" if x else "",
        _ratio(b.idle_cpu_percent, x.idle_cpu_percent) if x else "",
    )
    row(
        "server's core busy, all processes (%)",
        _fmt_busy(b.core_busy_percent),
        _fmt_busy(x.core_busy_percent) if x else "",
    )
    row(
        "server threads / fds while holding",
        f"{b.threads} / {b.fds}",
        f"{x.threads} / {x.fds}" if x else "",
    )
    row(
        "load processes CPU while idle (% of one core)",
        f"{b.load_cpu_percent:.1f}",
        f"{x.load_cpu_percent:.1f}" if x else "",
    )
    row(
        "heartbeats sent / frames received by agents",
        f"{b.heartbeats} / {b.frames_in}",
        f"{x.heartbeats} / {x.frames_in}" if x else "",
    )
    row("API list of all servers (s, 500 per page)", extra.get("api_list_seconds", "-"))
    row("coordinator warning lines logged", extra.get("coordinator_warnings", "-"))

    widths = [
        max(len(r[i]) for r in [*rows, ("", "Berth", "bare aiohttp", "Berth/bare")])
        for i in range(4)
    ]
    header = ("", "Berth", "bare aiohttp" if x else "", "Berth/bare" if x else "")
    lines = [
        f"Berth fan-in: {args.agents} agents, {layout}, {args.dials} dials in flight",
        f"agent pings every {args.client_ping:g} s (timeout {CLIENT_PING_TIMEOUT:g} s), "
        f"heartbeat frame every {b.heartbeat_seconds:g} s (0 = none); server pings: Berth "
        f"ws_ping_seconds (default {SERVER_PING_SECONDS:g} s), bare {args.bare_server_ping:g} s",
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        ),
    ]
    for r in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    held = int(extra.get("api_online", 0))
    checks: list[tuple[str, bool | None, str]] = [
        (f"all requested agents held (API online = {b.agents})", held == b.agents, f"{held}"),
        (
            f"agents held >= {TARGET_AGENTS}",
            held >= TARGET_AGENTS if b.agents >= TARGET_AGENTS else None,
            f"{held}" if b.agents >= TARGET_AGENTS else f"not tested (--agents {b.agents})",
        ),
        (
            f"RSS per idle agent < {TARGET_KIB_PER_AGENT:g} KiB",
            b.kib_per_agent < TARGET_KIB_PER_AGENT,
            f"{b.kib_per_agent:.1f} KiB",
        ),
        (
            f"idle CPU < {TARGET_IDLE_CPU_PERCENT:g} % of one core",
            b.idle_cpu_percent < TARGET_IDLE_CPU_PERCENT,
            f"{b.idle_cpu_percent:.2f} %",
        ),
    ]
    lines.append("targets (issue: 10k agents, <40 KiB/agent, <5 % idle CPU):")
    for label, ok, value in checks:
        verdict = "n/a " if ok is None else "PASS" if ok else "FAIL"
        lines.append(f"  [{verdict}] {label}: {value}")
    for phase in (b, x) if x else (b,):
        others = max(phase.core_busy_percent.values(), default=0) - phase.idle_cpu_percent
        if others > 10:
            lines.append(
                f"warning: other processes kept the server's core ~{others:.0f} % busy during "
                f"the {phase.name} idle window; its CPU figures are inflated by contention"
            )
    if b.dial_errors:
        lines.append(f"Berth dial errors: {b.dial_errors}")
    if b.close_codes:
        lines.append(f"Berth links closed by the coordinator: {b.close_codes}")
    if extra.get("registration_errors"):
        lines.append(f"registration errors: {extra['registration_errors']}")
    if extra.get("coordinator_warning_samples"):
        lines.append("coordinator warnings: " + " | ".join(extra["coordinator_warning_samples"]))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000, help="simulated agents (default 1000)")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=30.0,
        help="CPU measurement window while all agents idle (default 30)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds to wait after connecting before measuring (default 5)",
    )
    parser.add_argument(
        "--dials",
        type=int,
        default=200,
        help="websocket dials in flight, over all load processes (default 200)",
    )
    parser.add_argument(
        "--register-in-flight",
        type=int,
        default=32,
        help="concurrent registration requests (default 32)",
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="load processes (default: one per 2500 agents)"
    )
    parser.add_argument(
        "--client-ping",
        type=float,
        default=CLIENT_PING_INTERVAL,
        help=f"agents' websocket ping interval, 0 = none (default {CLIENT_PING_INTERVAL:g}, "
        "the agent's production setting)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=None,
        help="experiment: heartbeat period instead of the welcome's, 0 = send none",
    )
    parser.add_argument(
        "--bare-server-ping",
        type=float,
        default=SERVER_PING_SECONDS,
        help=f"bare baseline's aiohttp heartbeat, 0 = none (default {SERVER_PING_SECONDS:g}, "
        "the coordinator's ws_ping_seconds)",
    )
    parser.add_argument(
        "--skip-baseline", action="store_true", help="skip the bare aiohttp baseline"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the figures as JSON instead of the table"
    )
    args = parser.parse_args(argv)
    if args.agents < 1 or args.dials < 1 or args.register_in_flight < 1:
        parser.error("--agents, --dials and --register-in-flight must be positive")
    if args.idle_seconds <= 0 or args.settle < 0:
        parser.error("--idle-seconds must be positive and --settle not negative")
    if args.workers <= 0:
        args.workers = max(1, math.ceil(args.agents / 2500))
    return args


@contextlib.contextmanager
def _interrupt_as_error() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so that every ``finally`` still runs."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nofile = raise_nofile_limit()  # inherited by the servers and the load processes
    if nofile < args.agents + 512:
        log(f"warning: RLIMIT_NOFILE is {nofile}; the server needs ~{args.agents + 100} fds")
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, load_cpus = (cpus[:1], cpus[1:]) if len(cpus) > 1 else (cpus, cpus)
    pin_to(load_cpus)  # this process generates the registration load
    layout = (
        f"server on CPU {','.join(map(str, server_cpus))}, load ({args.workers} "
        f"processes) on CPU {','.join(map(str, load_cpus))}"
    )
    bare: PhaseResult | None = None
    try:
        with _interrupt_as_error(), tempfile.TemporaryDirectory(prefix="berth-fanin-") as tmp:
            berth = run_berth(args, Path(tmp), server_cpus, load_cpus)
            if not args.skip_baseline:
                time.sleep(args.settle)
                bare = run_bare(args, Path(tmp), server_cpus, load_cpus)
    except KeyboardInterrupt:
        log("interrupted; every process was stopped")
        return 130
    if args.json:
        print(
            json.dumps(
                {
                    "agents": args.agents,
                    "layout": layout,
                    "berth": berth.as_dict(),
                    "bare": bare.as_dict() if bare else None,
                },
                indent=2,
                default=str,
            )
        )
    else:
        print(render(args, berth, bare, layout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
