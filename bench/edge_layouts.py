"""Caddy's write time and HTTPS req/s: the agent's HTTPS host routes vs its earlier layouts.

The agent served HTTPS bindings that only proxy their host as entries of one map route; it now
serves them with one route per resource whose host matcher lists that resource's names
(``agent/edge_tls_map.py``), and, since, without the list of binding ids those routes carried.
Caddy loads its whole config at each admin write, and its time grows with the config's size;
the map's entries were most of it, then the ids. This script keeps the comparison:

1. The agent's own edge code binds ``--domains`` HTTPS names over ``--resources`` resources on
   a real Caddy (as ``edge.py`` does, certificates from Caddy's internal CA) and the servers'
   config is read back: the *host-routes* layout.
2. The earlier layouts are derived from it: *map*, every host route's names as entries of one
   map route (host -> resource and binding; resource -> upstreams) whose matcher lists all of
   them; *host-routes+ids*, the host routes with their binding ids listed in their ``vars``
   handler (``berth_bindings``, in the order of the names). The bench's binding ids are 9
   characters (``dbd_00001``); the coordinator's are 30, so both earlier layouts are larger
   in production than here.
3. In turns on that same Caddy: switch to a layout, then time ``--writes`` writes of the whole
   servers subtree (what the agent's one write per change sends), each changing the HTTPS
   redirect's status; then ``wrk`` to the 500th name, and to a static one-route config in a
   second Caddy (the ``edge.py`` baseline).

    PYTHONPATH=$PWD .venv/bin/python bench/edge_layouts.py --caddy /path/to/caddy-2.11.7
"""

import argparse
import asyncio
import copy
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import edge as bench  # this directory is on sys.path when run as a script

import agent.edge_setup
from agent.edge import CaddyEdge
from agent.edge_map import map_route
from agent.edge_routes import domain_route_id
from agent.edge_tls import EdgeTls
from agent.edge_tls_map import (
    OLD_TLS_MAP_ROUTE_ID,
    REDIRECTS_ROUTE_ID,
    host_match,
    is_hosts_route,
    read_hosts_route,
)

LAYOUTS = ("map", "host-routes+ids", "host-routes")


def with_bindings(entries: list[dict[str, Any]], bindings: dict[str, str]) -> list[dict[str, Any]]:
    """Host entries read back from Caddy, with the binding each name was bound as."""
    return [
        {
            **e,
            "@id": domain_route_id(str(e["outputs"][0]), bindings[str(e["input"])]),
            "outputs": [e["outputs"][0], bindings[str(e["input"])]],
        }
        for e in entries
    ]


def with_ids(servers: dict[str, Any], bindings: dict[str, str]) -> dict[str, Any]:
    """The host routes with the list of their names' binding ids an earlier agent kept."""
    servers = copy.deepcopy(servers)
    for route in servers["berth-tls"]["routes"]:
        if is_hosts_route(str(route.get("@id"))):
            names = route["match"][0]["host"]
            route["handle"][0]["berth_bindings"] = [bindings[n] for n in names]
    return servers


def as_map(servers: dict[str, Any], bindings: dict[str, str]) -> dict[str, Any]:
    """The host-routes layout's servers with the host routes replaced by the earlier map."""
    servers = copy.deepcopy(servers)
    routes: list[dict[str, Any]] = servers["berth-tls"]["routes"]
    own = [i for i, r in enumerate(routes) if is_hosts_route(str(r.get("@id")))]
    hosts: list[dict[str, Any]] = []
    upstreams: list[dict[str, Any]] = []
    for i in own:
        entries, upstream = read_hosts_route(routes[i])
        hosts += with_bindings(entries, bindings)
        if upstream is not None:
            upstreams.append(upstream)
    old = {
        **map_route(hosts, upstreams),
        "@id": OLD_TLS_MAP_ROUTE_ID,
        "match": host_match(str(e["input"]) for e in hosts),
    }
    routes[own[0] : own[-1] + 1] = [old]
    return servers


def admin(port: int, method: str, path: str, body: Any = None) -> bytes:
    """One admin API request (the answer's body); raises on an error status."""
    connection = http.client.HTTPConnection(bench.HOST, port, timeout=120)
    try:
        connection.request(
            method,
            path,
            body=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Origin": f"http://{bench.HOST}:{port}"},
        )
        answer = connection.getresponse()
        text = answer.read()
    finally:
        connection.close()
    if answer.status >= 400:
        raise RuntimeError(f"{method} {path}: HTTP {answer.status} {text[:300]!r}")
    return text


def timed_writes(port: int, servers: dict[str, Any], writes: int) -> list[float]:
    """Milliseconds of each of ``writes`` PATCHes of the whole servers subtree."""
    redirect = next(r for r in servers["berth"]["routes"] if r.get("@id") == REDIRECTS_ROUTE_ID)
    times = []
    for n in range(writes):
        redirect["handle"][0]["status_code"] = "301" if n % 2 == 0 else "308"
        started = time.perf_counter()
        admin(port, "PATCH", "/config/apps/http/servers", servers)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def bind(edge: CaddyEdge, backend: str, domains: int, resources: int, port: int) -> None:
    """Bind ``domains`` names over ``resources`` resources with the agent's code."""
    owners = bench.Bench(edge, port, backend, resources)
    for number in range(domains):
        owners.domains[owners.owner(number)].append(bench.domain_route(number))
    for resource_id in owners.domains:
        await owners.apply(resource_id)


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Bind, derive the layouts, and measure them in turns."""
    backend_port, admin_port, http_port, https_port = (bench.free_port() for _ in range(4))
    static_admin, static_port = bench.free_port(), bench.free_port()
    target = bench.domain_route(args.domains // 2).domain_name
    processes = [
        bench.CaddyProcess(work / "backend", bench.backend_config(bench.free_port(), backend_port)),
        bench.CaddyProcess(work / "berth", bench.base_config(admin_port)),
        bench.CaddyProcess(
            work / "static",
            bench.static_config(static_admin, backend_port, static_port, target),
        ),
    ]
    agent.edge_setup.tls_app = bench.internal_tls_app  # type: ignore[attr-defined]
    edge = CaddyEdge(
        f"http://{bench.HOST}:{admin_port}",
        f"{bench.HOST}:{http_port}",
        EdgeTls(f"{bench.HOST}:{https_port}"),
    )
    results: dict[str, Any] = {layout: {"write_ms": [], "rps_ratio": []} for layout in LAYOUTS}
    try:
        connector = aiohttp.TCPConnector(ssl=bench.tls_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            await bench.until(lambda: bench.admin_up(session, admin_port), "Caddy's admin API")
            await bind(
                edge, f"{bench.HOST}:{backend_port}", args.domains, args.resources, https_port
            )
            await bench.certificates_issued(work / "berth", args.domains + 1)
            servers = json.loads(admin(admin_port, "GET", "/config/apps/http/servers"))
            bindings = {
                route.domain_name: route.id
                for route in map(bench.domain_route, range(args.domains))
            }
            shapes = {
                "map": as_map(servers, bindings),
                "host-routes+ids": with_ids(servers, bindings),
                "host-routes": servers,
            }
            for layout, shape in shapes.items():
                results[layout]["bytes"] = len(json.dumps(shape))
            for round_number in range(args.rounds):
                for layout, shape in shapes.items():
                    bench.log(f"round {round_number + 1}: {layout}")
                    results[layout]["write_ms"] += timed_writes(admin_port, shape, args.writes)
                    await bench.until(lambda: bench.ok(session, https_port, target), "served")
                    await bench.until(lambda: bench.ok(session, static_port, target), "static")
                    ours = bench.wrk(https_port, target, args.seconds, close=False)
                    static = bench.wrk(static_port, target, args.seconds, close=False)
                    results[layout]["rps_ratio"].append(round(ours / static, 3))
    finally:
        for process in processes:
            process.stop()
    return results


def table(results: dict[str, Any], domains: int) -> str:
    """The figures as a markdown table."""
    lines = [
        f"| {domains} HTTPS names | {' | '.join(LAYOUTS)} |",
        "|---" * (len(LAYOUTS) + 1) + "|",
    ]

    def cells(shown: Callable[[dict[str, Any]], str]) -> str:
        return " | ".join(shown(results[layout]) for layout in LAYOUTS)

    def writes(r: dict[str, Any]) -> str:
        times = r["write_ms"]
        return f"{statistics.median(times):.1f} / {bench.percentile(times, 99):.1f}"

    sizes = cells(lambda r: f"{r['bytes']:,}")
    lines.append(f"| servers subtree (bytes of JSON) | {sizes} |")
    lines.append(f"| one write, p50 / p99 ms | {cells(writes)} |")
    ratios = cells(lambda r: f"{statistics.median(r['rps_ratio']):.3f} ({r['rps_ratio']})")
    lines.append(f"| HTTPS req/s vs static, median (rounds) | {ratios} |")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=10)
    parser.add_argument("--writes", type=int, default=20, help="timed writes per layout and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run")
    parser.add_argument("--caddy", default="caddy", help="the Caddy binary (default: on PATH)")
    args = parser.parse_args()
    found = shutil.which(args.caddy)
    if found is None or shutil.which("wrk") is None:
        sys.exit("needs caddy and wrk")
    bench.CADDY["binary"] = found
    with tempfile.TemporaryDirectory(prefix="berth-bench-layouts-") as work:
        results = asyncio.run(run(args, Path(work)))
    print(table(results, args.domains))


if __name__ == "__main__":
    main()
