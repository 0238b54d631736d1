"""Writing the host maps: a change's entries in one admin write, whatever their number; a
resource's upstreams; the HTTPS host routes and the names their redirects list."""

from typing import Any

from agent.edge_admin import AdminCall
from agent.edge_held import HeldRoutes
from agent.edge_map import MAP_UPSTREAMS
from agent.edge_setup import FALLBACKS, SERVER_PATH, TLS_SERVER_PATH
from agent.edge_tls_map import (
    REDIRECTS_ROUTE_ID,
    TLS_MAP_ENTRIES,
    TLS_MAP_UPSTREAMS,
    host_match,
    hosts_routes,
    is_hosts_route,
)


async def write_entries(
    call: AdminCall,
    held: HeldRoutes,
    at: str,
    changed: list[dict[str, Any]],
    added: list[dict[str, Any]],
    stale: list[str],
) -> None:
    """Replace ``changed`` entries, append ``added`` ones and delete the ``stale`` ids of the
    map whose entries are at ``at`` (``at`` or ``MAP_UPSTREAMS``).

    Each admin write makes Caddy re-provision its whole config, so a change of several entries
    (a resource's bindings moving in or out of the map at once) writes the map's whole entry
    list once (from the agent's copy, in Caddy's order) instead of one call per entry. One
    operation alone stays a small write by id.
    """
    if len(changed) + len(stale) + (1 if added else 0) > 1:
        replaced = {str(e["@id"]): e for e in changed}
        gone = set(stale)
        current = held.at(at)
        kept = [replaced.get(k, e) for k, e in current.items() if k not in gone]
        await call("PATCH", at, [*kept, *added])
    elif changed:
        await call("PATCH", f"/id/{changed[0]['@id']}", changed[0])
    elif stale:
        await call("DELETE", f"/id/{stale[0]}", missing_ok=True)
    elif len(added) == 1:
        await call("POST", at, added[0])
    elif added:
        # Caddy appends an array POSTed to ``.../...``.
        await call("POST", f"{at}/...", added)
    for entry in [*changed, *added]:
        held.put(at, entry)
    for entry_id in stale:
        held.drop(entry_id)


async def put_upstreams(
    call: AdminCall, held: HeldRoutes, entry: dict[str, Any], at: str = MAP_UPSTREAMS
) -> None:
    """Add the resource's upstream ``entry`` to the map whose upstream entries are at ``at``,
    or replace the one held if it differs."""
    current = held.get(str(entry["@id"]))
    if current is None:
        await call("POST", at, entry)
    elif current[1] != entry:
        await call("PATCH", f"/id/{entry['@id']}", entry)
    held.put(at, entry)


async def drop_upstreams(call: AdminCall, held: HeldRoutes, entry_id: str) -> None:
    """Delete the resource's upstream entry if one is held (none of its hosts is mapped)."""
    if held.get(entry_id) is not None:
        await call("DELETE", f"/id/{entry_id}", missing_ok=True)
        held.drop(entry_id)


def record_tls_changes(
    held: HeldRoutes,
    changed: list[dict[str, Any]],
    added: list[dict[str, Any]],
    stale: list[str],
    upstreams: dict[str, Any] | None,
    upstreams_id: str,
) -> None:
    """Record a resource's changes to its HTTPS host route in the agent's copy only (its host
    entries, and its upstream entry, or None when none of its hosts is mapped there):
    ``write_tls_map`` then writes the host routes that differ from them."""
    if upstreams is not None:
        held.put(TLS_MAP_UPSTREAMS, upstreams)
    for entry in [*changed, *added]:
        held.put(TLS_MAP_ENTRIES, entry)
    for entry_id in [*stale, *([] if upstreams is not None else [upstreams_id])]:
        held.drop(entry_id)


async def write_tls_map(call: AdminCall, held: HeldRoutes) -> None:
    """Write the HTTPS host routes that differ from the agent's copy of their entries (add,
    replace or delete each by id), then the redirects' matcher if its names changed (an
    ``AdminBatch`` sends them all as one write)."""
    wanted = hosts_routes(held.at(TLS_MAP_ENTRIES).values(), held.at(TLS_MAP_UPSTREAMS).values())
    current = {k: v for k, v in held.at(TLS_SERVER_PATH).items() if is_hosts_route(k)}
    for stale in sorted(current.keys() - wanted.keys()):
        await call("DELETE", f"/id/{stale}", missing_ok=True)
        held.drop(stale)
    fallback = FALLBACKS[TLS_SERVER_PATH]
    for own, route in wanted.items():
        if own not in current:
            if held.on(fallback, TLS_SERVER_PATH):
                # PUT at the fallback's id inserts there: the fallback moves one down.
                await call("PUT", f"/id/{fallback}", route)
            else:
                await call("POST", f"{TLS_SERVER_PATH}/routes", route)
        elif current[own] != route:
            await call("PATCH", f"/id/{own}", route)
        held.put(TLS_SERVER_PATH, route)
    redirects = held.get(REDIRECTS_ROUTE_ID)
    match = host_match(str(e["input"]) for e in held.at(TLS_MAP_ENTRIES).values())
    if redirects is not None and redirects[1].get("match") != match:
        await call("PATCH", f"/id/{REDIRECTS_ROUTE_ID}/match", match)
        held.put(SERVER_PATH, {**redirects[1], "match": match})
