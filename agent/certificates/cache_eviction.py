"""Make a Caddy that keeps managed certificates across config loads read one from storage again.

Caddy 2.6 (certmagic 0.17) looks at every managed name's stored certificate at each config load
and renews it there when the covering policy's renewal window has begun: that is what the
forced renewal's one-off policy relies on. Newer Caddy (2.11.7 checked) keeps one certificate
cache for the life of the process, and a config load that manages a name whose certificate is
in that cache does nothing more: "maintenance will continue", i.e. the next renewal check, by
default 10 minutes later. Its log shows no ``tls.renew`` line at all after the policy is put in.

It drops a certificate from the cache when a config load stops managing its name, and loads
it from storage (checking the renewal window of the policy then in force) when a later load
manages it again. So the agent lists the name in each HTTPS server's
``automatic_https.skip_certificates`` for one load and takes it out at the next. Between the
two loads (milliseconds) a handshake for the name finds no certificate; the route is untouched.
"""

from typing import Any, Final, Protocol

_SERVERS: Final = "/config/apps/http/servers"


class Admin(Protocol):
    """The admin-API call this needs (``CaddyAdmin.call``)."""

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; ``(status, parsed JSON or None)``."""
        ...


async def managing_servers(admin: Admin, name: str) -> list[str]:
    """The servers whose automatic HTTPS could manage ``name`` (on, and not skipping it)."""
    status, servers = await admin.call("GET", _SERVERS)
    if status != 200 or not isinstance(servers, dict):
        return []
    found = []
    for key, server in sorted(servers.items()):
        auto = server.get("automatic_https") if isinstance(server, dict) else None
        auto = auto if isinstance(auto, dict) else {}
        if auto.get("disable") is True or name in (auto.get("skip_certificates") or []):
            continue
        found.append(key)
    return found


async def skip(admin: Admin, name: str, servers: list[str]) -> None:
    """Stop managing ``name`` on ``servers`` (one config load each): Caddy drops its cached
    certificate. ``OSError`` when Caddy refuses; the caller then unskips all the same."""
    for server in servers:
        await _add(admin, server, name)


async def unskip(admin: Admin, name: str, servers: list[str]) -> None:
    """Manage ``name`` on ``servers`` again: Caddy reads its certificate from storage and
    renews it if the policy covering it says so. Harmless to repeat after a failure."""
    for server in servers:
        await _remove(admin, server, name)


async def _add(admin: Admin, server: str, name: str) -> None:
    path = f"{_SERVERS}/{server}/automatic_https"
    status, auto = await admin.call("GET", path)
    if status == 200 and isinstance(auto, dict) and isinstance(auto.get("skip_certificates"), list):
        status, answer = await admin.call(
            "PATCH", f"{path}/skip_certificates", [*auto["skip_certificates"], name]
        )
    elif status == 200 and isinstance(auto, dict):
        status, answer = await admin.call("POST", f"{path}/skip_certificates", [name])
    else:
        status, answer = await admin.call("POST", path, {"skip_certificates": [name]})
    if status >= 400:
        raise OSError(f"Caddy refused to skip {name} on server {server}: {answer}")


async def _remove(admin: Admin, server: str, name: str) -> None:
    # Read again and take out only our entry: the edge may have rewritten the list meanwhile
    # with the names it serves loaded certificates for (a managed name is not one of them).
    path = f"{_SERVERS}/{server}/automatic_https/skip_certificates"
    status, names = await admin.call("GET", path)
    if status != 200 or not isinstance(names, list) or name not in names:
        return
    status, answer = await admin.call("PATCH", path, [n for n in names if n != name])
    if status >= 400:
        raise OSError(f"Caddy refused to manage {name} again on server {server}: {answer}")
