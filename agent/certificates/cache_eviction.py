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

from collections.abc import Callable
from typing import Any, Final, Protocol

_SERVERS: Final = "/config/apps/http/servers"


class Admin(Protocol):
    """The admin-API calls this needs (``CaddyAdmin``)."""

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; ``(status, parsed JSON or None)``."""
        ...

    async def edit(self, path: str, change: Callable[[Any], Any]) -> None:
        """Read ``path`` and write back ``change(read)``, no other request of the agent's to
        this Caddy between; ``OSError`` when Caddy refuses."""
        ...


class _Unchanged(Exception):
    """Nothing to write: the list already is as wanted."""


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
    await _change_skips(admin, server, lambda names: names if name in names else [*names, name])


async def _remove(admin: Admin, server: str, name: str) -> None:
    # Take out only our entry: the edge may have rewritten the list meanwhile with the names it
    # serves loaded certificates for (a managed name is not one of them).
    await _change_skips(admin, server, lambda names: [n for n in names if n != name])


async def _change_skips(
    admin: Admin, server: str, change: Callable[[list[str]], list[str]]
) -> None:
    """Write ``change(the server's skipped names)`` in one read-and-write of the server, so the
    edge's own list of skipped names (the names it serves with loaded certificates) cannot
    change in between and be undone: a name of an imported certificate managed again would be
    an ACME order. Nothing is written when the list stays as it is."""

    def changed(held: Any) -> Any:
        auto = held.get("automatic_https") if isinstance(held, dict) else None
        auto = dict(auto) if isinstance(auto, dict) else {}
        names = auto.get("skip_certificates")
        names = list(names) if isinstance(names, list) else []
        wanted = change(names)
        if wanted == names:
            raise _Unchanged  # a server Caddy no longer holds skips nothing either
        if not isinstance(held, dict):
            raise OSError(f"Caddy holds no server {server}")
        return {**held, "automatic_https": {**auto, "skip_certificates": wanted}}

    try:
        await admin.edit(f"{_SERVERS}/{server}", changed)
    except _Unchanged:
        return
