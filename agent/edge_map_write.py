"""A change's host map entries in one admin write, whatever their number."""

from typing import Any

from agent.edge_admin import AdminCall
from agent.edge_held import HeldRoutes
from agent.edge_map import MAP_ENTRIES


async def write_entries(
    call: AdminCall,
    held: HeldRoutes,
    changed: list[dict[str, Any]],
    added: list[dict[str, Any]],
    stale: list[str],
) -> None:
    """Replace ``changed`` entries, append ``added`` ones and delete the ``stale`` ids.

    Each admin write makes Caddy re-provision its whole config, so a redeploy that changes the
    upstreams of a resource's many bindings writes the map's whole entry list once (from the
    agent's copy, in Caddy's order) instead of one ``PATCH`` per entry. One operation alone
    stays a small write by id.
    """
    if len(changed) + len(stale) + (1 if added else 0) > 1:
        replaced = {str(e["@id"]): e for e in changed}
        gone = set(stale)
        current = held.at(MAP_ENTRIES)
        kept = [replaced.get(k, e) for k, e in current.items() if k not in gone]
        await call("PATCH", MAP_ENTRIES, [*kept, *added])
    elif changed:
        await call("PATCH", f"/id/{changed[0]['@id']}", changed[0])
    elif stale:
        await call("DELETE", f"/id/{stale[0]}", missing_ok=True)
    elif len(added) == 1:
        await call("POST", MAP_ENTRIES, added[0])
    elif added:
        # Caddy appends an array POSTed to ``.../...``.
        await call("POST", f"{MAP_ENTRIES}/...", added)
    for entry in [*changed, *added]:
        held.put(MAP_ENTRIES, entry)
    for entry_id in stale:
        held.drop(entry_id)
