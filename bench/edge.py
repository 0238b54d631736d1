"""Edge benchmark: the agent's Caddy with 1,000 bound HTTPS domains.

Measures, through the agent's own edge code (``agent.edge.CaddyEdge``) and a real Caddy:

1. route add latency: from the call that binds one more domain until Caddy serves it (p50/p99);
2. route change latency (a binding switched between serving and redirecting, both ways) and the
   requests to OTHER domains that fail while 100 such changes are made under load;
3. HTTPS requests/s (``wrk``, keep-alive) and TLS handshakes/s (``Connection: close``) to one of
   the 1,000 domains, against the same Caddy binary and backend with a static one-route config
   (ratio, measured in the same run).

Certificates come from Caddy's internal CA (no ACME, no network; trust-store installation off):
the client sends SNI ``localhost`` and the domain in ``Host``. Progress goes to stderr, the
table (or ``--json``) to stdout. Needs ``caddy`` and ``wrk`` (Debian packages).
"""

import argparse
import asyncio
import json
import math
import multiprocessing
import random
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

import agent.edge_setup
from agent.edge import CaddyEdge
from agent.edge_tls import PERMISSION, EdgeTls, OnDemandForm
from shared.messages.deploy import DomainRoute

HOST = "127.0.0.1"
DOMAIN = "bench.test"
# ``--plain``: bindings with tlsMode disabled, served and measured over plain HTTP.
MODE = {"scheme": "https", "tls_mode": "auto"}
# The Caddy binary, resolved once from this process's PATH (``--caddy`` overrides): the Caddy
# processes run with a minimal PATH of their own, which must not pick another one.
CADDY = {"binary": "caddy"}
WAIT_SECONDS = 30.0


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def internal_tls_app(
    tls: EdgeTls,
    ask_url: str = "",
    on_demand_bases: Collection[str] = (),
    form: OnDemandForm = PERMISSION,
) -> dict[str, Any]:
    """The bench's TLS app: Caddy's internal CA instead of ACME (the rest is the agent's; its
    bound domains are not generated names, so no on-demand policy)."""
    return {
        "automation": {"policies": [{"issuers": [{"module": "internal"}]}]},
        "certificates": {"automate": ["localhost"]},
    }


def base_config(admin_port: int) -> dict[str, Any]:
    """An admin API and the local CA without trust-store installation."""
    return {
        "admin": {"listen": f"{HOST}:{admin_port}"},
        "apps": {"pki": {"certificate_authorities": {"local": {"install_trust": False}}}},
    }


def backend_config(admin_port: int, backend_port: int) -> dict[str, Any]:
    """The upstream every route proxies to, in a Caddy process of its own (as a container
    would be: the edge's config reloads must not restart it)."""
    config = base_config(admin_port)
    config["apps"]["http"] = {
        "servers": {
            "backend": {
                "listen": [f"{HOST}:{backend_port}"],
                "automatic_https": {"disable": True},
                "routes": [{"handle": [{"handler": "static_response", "body": "ok"}]}],
            }
        }
    }
    return config


def static_config(admin_port: int, backend_port: int, port: int, host: str) -> dict[str, Any]:
    """The baseline: the same backend behind one hand-written HTTPS route."""
    config = base_config(admin_port)
    config["apps"]["http"] = {"servers": {}}
    config["apps"]["http"]["servers"]["static"] = {
        "listen": [f"{HOST}:{port}"],
        "automatic_https": (
            {"disable_redirects": True} if MODE["scheme"] == "https" else {"disable": True}
        ),
        "routes": [
            {
                "match": [{"host": [host]}],
                "handle": [
                    {
                        "handler": "reverse_proxy",
                        "upstreams": [{"dial": f"{HOST}:{backend_port}"}],
                    }
                ],
                "terminal": True,
            }
        ],
    }
    config["apps"]["tls"] = internal_tls_app(EdgeTls(""))
    return config


def raise_file_limit() -> None:
    """The open-file limit of Debian's caddy.service when allowed (root), else the hard limit
    (in the child, before exec)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1_048_576, 1_048_576))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class CaddyProcess:
    """``caddy run`` with a config file, its data under ``directory``."""

    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "caddy.json"
        path.write_text(json.dumps(config))
        self._log = (directory / "caddy.log").open("wb")
        env = {"HOME": str(directory), "XDG_DATA_HOME": str(directory), "PATH": "/usr/bin:/bin"}
        self.process = subprocess.Popen(
            [CADDY["binary"], "run", "--config", str(path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            # As Debian's caddy.service (LimitNOFILE=1048576): each config change gives the
            # proxy new upstream pools while the old ones' idle connections linger.
            preexec_fn=raise_file_limit,
        )

    def stop(self) -> None:
        """Stop and wait."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        self._log.close()


def tls_context() -> ssl.SSLContext:
    """A client context that does not verify (the internal CA is not trusted on purpose)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def get(
    session: aiohttp.ClientSession, port: int, host: str, failures: dict[str, int] | None = None
) -> int:
    """The status of ``GET /`` for ``host`` over HTTPS (SNI localhost); 0 when it failed (its
    kind counted in ``failures``)."""
    try:
        async with session.get(
            f"{MODE['scheme']}://localhost:{port}/", headers={"Host": host}, allow_redirects=False
        ) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        if failures is not None:
            kind = f"{type(exc).__name__}: {str(exc)[:120]}"
            failures[kind] = failures.get(kind, 0) + 1
        return 0


async def until(check: Any, what: str) -> None:
    """Poll ``check`` (every millisecond) until it is true, within WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def wrk(port: int, host: str, seconds: int, *, close: bool) -> float:
    """Requests/s of ``wrk`` (2 threads, 32 connections) against ``host`` on ``port``."""
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "-H", f"Host: {host}"]
    if close:
        command += ["-H", "Connection: close"]
    out = subprocess.run(
        [*command, f"{MODE['scheme']}://localhost:{port}/"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    found = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if found is None or errors is not None:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(found.group(1))


def domain_route(number: int, redirect: bool = False) -> DomainRoute:
    """The ``number``-th bound domain (HTTPS, tlsMode auto), optionally redirecting."""
    return DomainRoute(
        id=f"dbd_{number:05d}",
        domain_name=f"d{number:05d}.{DOMAIN}",
        tls_mode="auto" if MODE["tls_mode"] == "auto" else "disabled",
        redirect_to=f"elsewhere.{DOMAIN}" if redirect else None,
    )


class Bench:
    """One agent edge on one Caddy: ``resources`` resources sharing the bound domains."""

    def __init__(self, edge: CaddyEdge, https_port: int, backend: str, resources: int) -> None:
        self.edge = edge
        self.https_port = https_port
        self.backend = backend
        self.domains: dict[str, list[DomainRoute]] = {f"res_{r}": [] for r in range(resources)}

    def owner(self, number: int) -> str:
        return f"res_{number % len(self.domains)}"

    async def apply(self, resource_id: str) -> None:
        """The agent's call after a deployment: route the resource and all its domains."""
        await self.edge.set_upstreams(
            resource_id,
            [f"{resource_id.replace('_', '-')}.{DOMAIN}"],
            "/",
            [self.backend],
            self.domains[resource_id],
        )

    def replace(self, number: int, route: DomainRoute) -> str:
        resource_id = self.owner(number)
        routes = self.domains[resource_id]
        routes[:] = [route if r.id == route.id else r for r in routes]
        return resource_id


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Run the three phases against one backend; return the figures."""
    backend_port = free_port()
    upstream = CaddyProcess(work / "backend", backend_config(free_port(), backend_port))
    try:
        return await _measure(args, work, backend_port)
    finally:
        upstream.stop()


async def _measure(args: argparse.Namespace, work: Path, backend_port: int) -> dict[str, Any]:
    admin, http_port, https_port = (free_port() for _ in range(3))
    backend = f"{HOST}:{backend_port}"
    caddy = CaddyProcess(work / "berth", base_config(admin))
    # The agent's code, with Caddy's internal CA in place of ACME (no network in a bench).
    agent.edge_setup.tls_app = internal_tls_app  # type: ignore[attr-defined]
    edge = CaddyEdge(
        f"http://{HOST}:{admin}", f"{HOST}:{http_port}", EdgeTls(f"{HOST}:{https_port}")
    )
    if MODE["scheme"] == "http":
        https_port = http_port  # every request below goes to the HTTP listener
    bench = Bench(edge, https_port, backend, args.resources)
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(ssl=tls_context(), limit=64)
    results: dict[str, Any] = {"domains": args.domains}
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await until(lambda: admin_up(session, admin), "Caddy's admin API")
            log(f"binding {args.domains} domains over {args.resources} resources")
            begun = time.monotonic()
            for number in range(args.domains):
                bench.domains[bench.owner(number)].append(domain_route(number))
            for resource_id in bench.domains:
                await bench.apply(resource_id)
            results["setup_seconds"] = time.monotonic() - begun
            last = domain_route(args.domains - 1).domain_name
            await until(lambda: ok(session, https_port, last), "the last domain served")
            log(f"bound in {results['setup_seconds']:.1f} s")
            if MODE["scheme"] == "https":
                await certificates_issued(work / "berth", args.domains + 1)

            log(f"adding {args.adds} more domains one by one")
            adds: list[float] = []
            calls: list[float] = []
            for number in range(args.domains, args.domains + args.adds):
                route = domain_route(number)
                resource_id = bench.owner(number)
                bench.domains[resource_id].append(route)
                started = time.perf_counter()
                await bench.apply(resource_id)
                calls.append((time.perf_counter() - started) * 1000)
                name = route.domain_name
                await until(lambda name=name: ok(session, https_port, name), "a new domain")
                adds.append((time.perf_counter() - started) * 1000)
            results["add_ms"] = summary(adds)
            results["add_call_ms"] = summary(calls)

            log(f"{args.changes} route changes while other domains are under load")
            changed = random.Random(7).sample(range(args.domains), args.changes // 2)
            others = [domain_route(n).domain_name for n in range(args.domains) if n not in changed]
            load = LoadProcess(https_port, others, args.load_workers)
            await load.start()
            changes: list[float] = []
            change_calls: list[float] = []
            try:
                for number in changed:
                    for redirect, status in ((True, 301), (False, 200)):
                        resource_id = bench.replace(number, domain_route(number, redirect))
                        name = domain_route(number).domain_name
                        started = time.perf_counter()
                        await bench.apply(resource_id)
                        change_calls.append((time.perf_counter() - started) * 1000)
                        await until(
                            lambda name=name, status=status: served(
                                session, https_port, name, status
                            ),
                            "a changed route",
                        )
                        changes.append((time.perf_counter() - started) * 1000)
            finally:
                counts = await load.stop()
            results["change_ms"] = summary(changes)
            results["change_call_ms"] = summary(change_calls)
            results["load_requests"], results["load_failures"] = counts.total, counts.failures
            results["load_failure_kinds"] = counts.kinds
            results["load_retried"] = sum(counts.retried.values())
            results["load_retried_kinds"] = counts.retried
        target = domain_route(args.domains // 2).domain_name
        static_admin, static_port = free_port(), free_port()
        static = CaddyProcess(
            work / "static", static_config(static_admin, backend_port, static_port, target)
        )
        try:
            async with aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(ssl=tls_context())
            ) as session:
                await until(lambda: ok(session, static_port, target), "the static config")
            log(
                f"wrk against {target}: the agent's config and the same Caddy binary with a "
                f"static one-route config, in turn, {args.rounds} rounds of {args.seconds} s"
            )
            results.update(throughput(https_port, static_port, target, args))
        finally:
            static.stop()
    finally:
        caddy.stop()
    return results


def throughput(
    agent_port: int, static_port: int, target: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Requests/s and new connections/s of both configs, measured in turn (both Caddy
    processes up, the idle one costing nothing): the ratios are the medians of each round's,
    since what else the machine runs moves both of a round alike but rounds apart. Which
    config goes first alternates by round: a run right after a ``Connection: close`` run
    starts among thousands of closing sockets, and with a fixed order that was always the
    agent's keep-alive run."""
    rounds: dict[str, list[float]] = {k: [] for k in ("rps", "static", "hs", "static_hs")}
    for number in range(args.rounds):
        for close, ours, theirs in ((False, "rps", "static"), (True, "hs", "static_hs")):
            pair = [(ours, agent_port), (theirs, static_port)]
            for key, port in pair if number % 2 == 0 else reversed(pair):
                rounds[key].append(wrk(port, target, args.seconds, close=close))
    rps = [a / b for a, b in zip(rounds["rps"], rounds["static"], strict=True)]
    handshakes = [a / b for a, b in zip(rounds["hs"], rounds["static_hs"], strict=True)]
    return {
        "berth_rps": statistics.median(rounds["rps"]),
        "static_rps": statistics.median(rounds["static"]),
        "berth_handshakes": statistics.median(rounds["hs"]),
        "static_handshakes": statistics.median(rounds["static_hs"]),
        "rps_ratio": statistics.median(rps),
        "rps_ratios": [round(r, 3) for r in rps],
        "handshake_ratio": statistics.median(handshakes),
        "handshake_ratios": [round(r, 3) for r in handshakes],
    }


async def admin_up(session: aiohttp.ClientSession, admin: int) -> bool:
    """Whether Caddy's admin API answers."""
    try:
        async with session.get(f"http://{HOST}:{admin}/config/") as response:
            return response.status == 200
    except (aiohttp.ClientError, OSError):
        return False


async def ok(session: aiohttp.ClientSession, port: int, host: str) -> bool:
    """Whether ``host`` is served (200 from the backend)."""
    return await get(session, port, host) == 200


async def served(session: aiohttp.ClientSession, port: int, host: str, status: int) -> bool:
    """Whether ``host`` answers ``status``."""
    return await get(session, port, host) == status


async def certificates_issued(directory: Path, wanted: int) -> None:
    """Wait (bounded) until Caddy's internal CA issued a certificate per name: issuing runs
    in the background and would otherwise share the CPU with the measurements."""
    store = directory / "caddy" / "certificates" / "local"
    deadline = time.monotonic() + 300
    count = 0
    while time.monotonic() < deadline:
        count = len(list(store.glob("*/*.crt"))) if store.is_dir() else 0
        if count >= wanted:
            return
        await asyncio.sleep(0.5)
    log(f"only {count} of {wanted} certificates after 300 s; measuring anyway")


class Load:
    """Requests to other domains in a loop; counts what is not a 200."""

    def __init__(self, session: aiohttp.ClientSession, port: int, hosts: list[str]) -> None:
        self.session, self.port, self.hosts = session, port, hosts
        self.total = self.failures = 0
        self.kinds: dict[str, int] = {}
        self.retried: dict[str, int] = {}
        self.stop = False

    async def run(self, workers: int) -> None:
        await asyncio.gather(*(self._worker(i) for i in range(workers)))

    async def _worker(self, seed: int) -> None:
        pick = random.Random(seed)
        while not self.stop:
            host = pick.choice(self.hosts)
            status = await get(self.session, self.port, host, self.retried)
            if status == 0:
                # A keep-alive connection Caddy closed while its config changed: retried once,
                # as browsers retry idempotent requests (RFC 9110, 9.2.2); counted apart.
                status = await get(self.session, self.port, host, self.kinds)
            self.total += 1
            self.failures += status != 200
            if status not in (0, 200):
                self.kinds[f"status {status}"] = self.kinds.get(f"status {status}", 0) + 1


class LoadProcess:
    """``Load`` in a process of its own. In the agent the edge code has its event loop (and a
    core's share) to itself; a load generator in the same loop made each change wait behind
    the load's requests, and a change was measured slower than it is."""

    def __init__(self, port: int, hosts: list[str], workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._started = context.Event()
        self._results, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_run_load,
            args=(MODE["scheme"], port, hosts, workers, self._started, self._stop, sender),
            daemon=True,
        )

    async def start(self) -> None:
        """Start the process; return once its first requests are under way."""
        self._process.start()
        if not await asyncio.to_thread(self._started.wait, WAIT_SECONDS):
            raise RuntimeError("the load process did not start")

    async def stop(self) -> "LoadCounts":
        """Stop the load; what it counted."""
        self._stop.set()
        if not await asyncio.to_thread(self._results.poll, WAIT_SECONDS):
            self._process.kill()
            raise RuntimeError("the load process did not report")
        counts = LoadCounts(**self._results.recv())
        await asyncio.to_thread(self._process.join, WAIT_SECONDS)
        return counts


@dataclass(frozen=True)
class LoadCounts:
    """What a ``Load`` counted."""

    total: int
    failures: int
    kinds: dict[str, int]
    retried: dict[str, int]


def _run_load(
    scheme: str,
    port: int,
    hosts: list[str],
    workers: int,
    started: Any,
    stop: Any,
    results: Any,
) -> None:
    MODE["scheme"] = scheme

    async def main() -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        connector = aiohttp.TCPConnector(ssl=tls_context(), limit=64)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            load = Load(session, port, hosts)
            running = asyncio.create_task(load.run(workers))
            started.set()
            # The parent's stop is a process event: looked at every 50 ms (a change takes
            # longer, so the load never stops before the last one is measured).
            while not await asyncio.to_thread(stop.wait, 0.05):
                pass
            load.stop = True
            await running
        # A dict: the parent may not be able to import this module's classes by name.
        results.send(
            {
                "total": load.total,
                "failures": load.failures,
                "kinds": load.kinds,
                "retried": load.retried,
            }
        )

    asyncio.run(main())


def summary(values: list[float]) -> dict[str, float]:
    """p50, p99, max and mean of milliseconds."""
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
        "n": len(values),
    }


def table(r: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    add, change = r["add_ms"], r["change_ms"]
    return "\n".join(
        [
            f"| {r['domains']} bound domains ({MODE['scheme'].upper()}) | value |",
            "|---|---|",
            f"| binding them all (one call per resource) | {r['setup_seconds']:.1f} s |",
            f"| add one domain until served, p50 / p99 (n={add['n']}) "
            f"| {add['p50']:.1f} / {add['p99']:.1f} ms |",
            f"| of which the agent's call, p50 / p99 "
            f"| {r['add_call_ms']['p50']:.1f} / {r['add_call_ms']['p99']:.1f} ms |",
            f"| change one route until served, p50 / p99 (n={change['n']}) "
            f"| {change['p50']:.1f} / {change['p99']:.1f} ms |",
            f"| of which the agent's call, p50 / p99 "
            f"| {r['change_call_ms']['p50']:.1f} / {r['change_call_ms']['p99']:.1f} ms |",
            f"| failed requests to other domains during the changes "
            f"| {r['load_failures']} of {r['load_requests']} |",
            f"| of them retried once (keep-alive connection closed by a config change) "
            f"| {r['load_retried']} |",
            f"| {MODE['scheme'].upper()} req/s, agent's config / static config "
            f"| {r['berth_rps']:.0f} / {r['static_rps']:.0f}; median ratio of "
            f"{len(r['rps_ratios'])} rounds **{r['rps_ratio']:.3f}** ({r['rps_ratios']}) |",
            f"| new connections/s (Connection: close), agent's / static "
            f"| {r['berth_handshakes']:.0f} / {r['static_handshakes']:.0f} "
            f"= **{r['handshake_ratio']:.3f}** |",
        ]
    )


def main() -> None:
    """Parse arguments, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=10)
    parser.add_argument("--adds", type=int, default=100)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--load-workers", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=2, help="each wrk run")
    parser.add_argument(
        "--rounds", type=int, default=30, help="wrk runs of each config (even: each order alike)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plain", action="store_true", help="bind with tlsMode disabled (HTTP)")
    parser.add_argument("--caddy", default="caddy", help="the Caddy binary (default: on PATH)")
    args = parser.parse_args()
    if args.plain:
        MODE.update(scheme="http", tls_mode="disabled")
    for tool in (args.caddy, "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install {tool})")
    CADDY["binary"] = str(shutil.which(args.caddy))
    log(subprocess.run([CADDY["binary"], "version"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory(prefix="berth-bench-edge-") as work:
        results = asyncio.run(measure(args, Path(work)))
    print(json.dumps(results, indent=2) if args.json else table(results))
    for key in ("load_failure_kinds", "load_retried_kinds"):
        if results[key]:
            log(f"{key}: {results[key]}")


if __name__ == "__main__":
    main()
