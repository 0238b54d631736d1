"""Edge throughput by config shape: where the agent's routes lose against a static config.

``edge.py`` measures the agent's Caddy config as a whole against a one-route static config;
this script takes the difference apart. Each shape is a complete Caddy config (plain HTTP,
built with the agent's own route builders, ``agent.edge_routes``, in the order ``CaddyEdge``
writes them: per resource its route, then its bindings' routes, then the fallback route) run
by the same Caddy binary in front of the same upstream (a second Caddy answering ``ok``), and
``wrk -t2 -c32`` measures keep-alive requests/s to one host:

- ``static``: the baseline of ``edge.py``, one route with a bare ``reverse_proxy``;
- ``one-route``: only the requested binding's route as the agent writes it, plus the fallback
  route and the failure-page ``errors`` block (the cost of the agent's handlers);
- ``agent-first`` / ``agent-middle`` / ``agent-last``: the whole 1,000-binding config, the
  request for the binding Caddy tries first, in the middle, last (the cost of matching routes
  in order);
- ``agent-middle-2-idle``: as ``agent-middle`` with the upstream transport the agent wrote
  before 2026-12-06 (``keep_alive`` named without ``max_idle_conns_per_host``: Go's default of
  two idle upstream connections).

Shapes are run round by round, interleaved (the machine is shared: compare within a round).

    PYTHONPATH=$PWD .venv/bin/python bench/edge_shapes.py [--domains 1000] [--rounds 3] [--json]
"""

import argparse
import http.client
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edge import (  # this directory is on sys.path when run as a script
    HOST,
    MODE,
    CaddyProcess,
    backend_config,
    base_config,
    free_port,
    log,
    static_config,
    wrk,
)

from agent.edge_routes import build_domain_route, build_route, failure_errors, fallback_route
from shared.messages.deploy import DomainRoute

RESOURCES = 10
SHAPES = (
    "static",
    "one-route",
    "agent-first",
    "agent-middle",
    "agent-last",
    "agent-middle-2-idle",
)


def bindings(domains: int) -> dict[str, list[DomainRoute]]:
    """``edge.py``'s layout: binding ``n`` belongs to resource ``n % RESOURCES``."""
    owned: dict[str, list[DomainRoute]] = {f"res_{r}": [] for r in range(RESOURCES)}
    for n in range(domains):
        owned[f"res_{n % RESOURCES}"].append(
            DomainRoute(id=f"dbd_{n:05d}", domain_name=f"d{n:05d}.bench.test", tls_mode="disabled")
        )
    return owned


def agent_routes(owned: dict[str, list[DomainRoute]], upstream: str) -> list[dict[str, Any]]:
    """The routes ``CaddyEdge`` holds after one ``set_upstreams`` per resource, in its order."""
    routes: list[dict[str, Any]] = []
    for resource_id, domains in owned.items():
        hostname = f"{resource_id.replace('_', '-')}.bench.test"
        routes.append(build_route(resource_id, [hostname], "/", [upstream]))
        routes.extend(build_domain_route(resource_id, d, [upstream]) for d in domains)
    return [*routes, fallback_route()]


def two_idle(node: Any) -> Any:
    """``node`` (routes, or any part of them) with the transport written before the fix: no
    ``max_idle_conns_per_host``, so Go's default of two applies."""
    if isinstance(node, dict):
        return {k: two_idle(v) for k, v in node.items() if k != "max_idle_conns_per_host"}
    if isinstance(node, list):
        return [two_idle(v) for v in node]
    return node


def served_hosts(owned: dict[str, list[DomainRoute]]) -> dict[str, str]:
    """Which host each agent shape requests: the binding routes Caddy tries first, in the
    middle and last."""
    order = [d.domain_name for domains in owned.values() for d in domains]
    return {"first": order[0], "middle": order[len(order) // 2], "last": order[-1]}


def config(shape: str, owned: dict[str, list[DomainRoute]], upstream: str, port: int) -> Any:
    """The whole Caddy config of ``shape`` listening on ``port``."""
    hosts = served_hosts(owned)
    if shape == "static":
        backend_port = int(upstream.rpartition(":")[2])
        return static_config(free_port(), backend_port, port, hosts["middle"])
    routes = agent_routes(owned, upstream)
    if shape == "one-route":
        wanted = [{"host": [hosts["middle"]]}]
        routes = [r for r in routes if r.get("match") == wanted] + routes[-1:]
    elif shape == "agent-middle-2-idle":
        routes = two_idle(routes)
    result = base_config(free_port())
    result["apps"]["http"] = {
        "servers": {
            "berth": {
                "listen": [f"{HOST}:{port}"],
                "automatic_https": {"disable": True},
                "routes": routes,
                "errors": failure_errors(f"{HOST}:{free_port()}"),
            }
        }
    }
    return result


def target(shape: str, owned: dict[str, list[DomainRoute]]) -> str:
    """The host ``wrk`` requests for ``shape``."""
    hosts = served_hosts(owned)
    return hosts[shape.split("-")[1]] if shape.startswith("agent-") else hosts["middle"]


def wait_served(port: int, host: str) -> None:
    """Poll until ``host`` answers 200 on ``port`` (Caddy provisions 1,000 routes first)."""
    deadline = time.monotonic() + 60
    while True:
        connection = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            connection.request("GET", "/", headers={"Host": host})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host} not served on {port}")
        time.sleep(0.05)


def measure(args: argparse.Namespace, work: Path) -> dict[str, list[float]]:
    """Requests/s of every shape, ``args.rounds`` times, interleaved."""
    backend_port = free_port()
    upstream = f"{HOST}:{backend_port}"
    backend = CaddyProcess(work / "backend", backend_config(free_port(), backend_port))
    owned = bindings(args.domains)
    results: dict[str, list[float]] = {shape: [] for shape in args.shapes}
    try:
        wait_served(backend_port, "backend")
        for round_ in range(args.rounds):
            for shape in args.shapes:
                port = free_port()
                caddy = CaddyProcess(
                    work / f"{shape}-{round_}", config(shape, owned, upstream, port)
                )
                try:
                    host = target(shape, owned)
                    wait_served(port, host)
                    results[shape].append(wrk(port, host, args.seconds, close=False))
                finally:
                    caddy.stop()
                log(f"round {round_ + 1} {shape}: {results[shape][-1]:.0f} req/s")
    finally:
        backend.stop()
    return results


def main() -> None:
    """Parse arguments, run, print a table (or ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    MODE.update(scheme="http", tls_mode="disabled")
    for tool in ("caddy", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install {tool})")
    with tempfile.TemporaryDirectory(prefix="berth-bench-edge-shapes-") as work:
        results = measure(args, Path(work))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    static = results.get("static")
    print("| shape | req/s per round | vs static, same round |")
    print("|---|---|---|")
    for shape, values in results.items():
        ratios = (
            " / ".join(f"{v / s:.2f}" for v, s in zip(values, static, strict=True))
            if static
            else "-"
        )
        print(f"| {shape} | {' / '.join(f'{v:.0f}' for v in values)} | {ratios} |")


if __name__ == "__main__":
    main()
