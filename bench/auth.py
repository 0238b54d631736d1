"""Login and session benchmark: argon2id cost, login latency, session vs API-token overhead.

A real coordinator (in this process, SQLite in a temp dir, rate limits off) and a real HTTP
client on loopback. Printed:

* the KDF alone: argon2id verify time with the parameters logins use (coordinator/accounts/
  passwords.py), p50/p99;
* ``POST /auth/login`` end to end, p50/p99 (the KDF plus the session write and audit event);
* ``GET /servers/count`` authenticated three ways, interleaved in rounds so load drifts hit all
  alike: an API token (the baseline), a session secret as bearer token (the CLI), and the
  session cookie (browsers); the ratio of each session path's median to the token's;
* the permission check with organizations (docs/organizations.md): 1,000 projects and 100
  members, one of whom holds a per-project grant on every project; ``GET /projects/{id}`` by the
  admin's API token (baseline) and by that member's session (its membership and 1,000 grants
  are read and checked on every request).

    .venv/bin/python bench/auth.py --logins 30 --requests 2000
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from coordinator.accounts import passwords
from tests.harness import Coordinator

EMAIL = "admin@example.com"
PASSWORD = "bench-lantern-opal-93"  # noqa: S105 (a benchmark account)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(values: list[float]) -> str:
    return f"p50 {_pct(values, 0.5) * 1000:7.2f} ms  p99 {_pct(values, 0.99) * 1000:7.2f} ms"


async def _timed_get(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    async with http.get(url, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise SystemExit(f"GET answered {response.status}")
    return time.perf_counter() - started


async def run(logins: int, requests: int) -> None:
    """Run the three measurements and print them."""
    stored = await passwords.hash_password(PASSWORD)
    kdf = []
    for _ in range(max(10, logins)):
        started = time.perf_counter()
        assert await passwords.verify_password(stored, PASSWORD)
        kdf.append(time.perf_counter() - started)
    print(f"argon2id verify (t=3, m=64 MiB, p=4)   {_ms(kdf)}")

    with tempfile.TemporaryDirectory() as tmp:
        coordinator = Coordinator(
            Path(tmp),
            None,
            rate_limit_token_per_minute=0,
            rate_limit_anonymous_per_minute=0,
            rate_limit_bootstrap_per_minute=0,
        )
        await coordinator.start()
        try:
            admin = await coordinator.bootstrap()
            status, body, _ = await coordinator.call(
                "POST", "/account/password", token=admin, json={"newPassword": PASSWORD}
            )
            assert status == 200, body
            login_times = []
            session: dict[str, str] = {}
            for _ in range(logins):
                started = time.perf_counter()
                status, session, _ = await coordinator.call(
                    "POST", "/auth/login", json={"email": EMAIL, "password": PASSWORD}
                )
                login_times.append(time.perf_counter() - started)
                assert status == 201, session
            print(f"POST /auth/login                       {_ms(login_times)}")

            url = coordinator.url + "/servers/count"
            ways = {
                "API token (baseline)": {"Authorization": f"Bearer {admin}"},
                "session as bearer": {"Authorization": f"Bearer {session['token']}"},
                "session cookie": {"Cookie": f"berth_session={session['token']}"},
            }
            times: dict[str, list[float]] = {name: [] for name in ways}
            async with aiohttp.ClientSession() as http:
                for headers in ways.values():  # warm-up
                    for _ in range(50):
                        await _timed_get(http, url, headers)
                for _ in range(requests // 100):
                    for name, headers in ways.items():
                        for _ in range(100):
                            times[name].append(await _timed_get(http, url, headers))
            base = statistics.median(times["API token (baseline)"])
            for name, values in times.items():
                ratio = statistics.median(values) / base
                print(f"GET /servers/count, {name:22} {_ms(values)}  ratio {ratio:.3f}")
            await _grants(coordinator, admin, requests)
        finally:
            await coordinator.close()


async def _grants(coordinator: Coordinator, admin: str, requests: int) -> None:
    """1,000 projects, 100 members; one member granted every project; time a scoped read."""
    project_ids = []
    for n in range(1000):
        status, body, _ = await coordinator.call(
            "POST", "/projects", token=admin, json={"name": f"p{n}"}
        )
        assert status == 201, body
        project_ids.append(str(body["id"]))
    org = "/organizations/org_default"
    member_token = ""
    member_id = ""
    for n in range(99):
        email = f"m{n}@example.com"
        status, invitation, _ = await coordinator.call(
            "POST", f"{org}/invitations", token=admin, json={"email": email, "role": "member"}
        )
        assert status == 201, invitation
        # The KDF runs once per new account: 99 accounts take a while, as they would.
        status, accepted, _ = await coordinator.call(
            "POST",
            "/organization-invitations/accept",
            json={"token": invitation["token"], "password": PASSWORD},
        )
        assert status == 201, accepted
        member_id = str(accepted["member"]["memberId"])
    status, member, _ = await coordinator.call(
        "POST",
        f"{org}/members/{member_id}/project-grants",
        token=admin,
        json={"projectRoles": dict.fromkeys(project_ids, "member")},
    )
    assert status == 200, member
    status, session, _ = await coordinator.call(
        "POST", "/auth/login", json={"email": "m98@example.com", "password": PASSWORD}
    )
    assert status == 201, session
    member_token = str(session["token"])
    url = f"{coordinator.url}/projects/{project_ids[500]}"
    ways = {
        "API token (baseline)": {"Authorization": f"Bearer {admin}"},
        "member, 1,000 grants": {"Authorization": f"Bearer {member_token}"},
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    async with aiohttp.ClientSession() as http:
        for headers in ways.values():
            for _ in range(50):
                await _timed_get(http, url, headers)
        for _ in range(requests // 100):
            for name, headers in ways.items():
                for _ in range(100):
                    times[name].append(await _timed_get(http, url, headers))
    base = statistics.median(times["API token (baseline)"])
    for name, values in times.items():
        ratio = statistics.median(values) / base
        print(f"GET /projects/{{id}}, {name:22} {_ms(values)}  ratio {ratio:.3f}")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=30)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(run(args.logins, args.requests))


if __name__ == "__main__":
    main()
