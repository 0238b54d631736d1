"""The agent's copy of its Caddy routes: what it takes from a read, and when it is usable."""

from agent.edge_held import HeldRoutes

PATHS = {"berth": "/config/apps/http/servers/berth", "berth-tls": "/config/apps/http/servers/t"}


def test_the_copy_takes_the_id_routes_of_the_edges_servers_only() -> None:
    held = HeldRoutes()
    assert not held.known("s1")
    servers = {
        "berth": {"routes": [{"@id": "berth-a", "handle": []}, {"handle": []}]},
        "berth-tls": {"routes": [{"@id": "berth-a.d1"}]},
        "someone-else": {"routes": [{"@id": "theirs"}]},
    }
    held.load(servers, PATHS, "s1")
    assert held.known("s1")
    assert not held.known("s2")
    assert held.get("berth-a") == (PATHS["berth"], {"@id": "berth-a", "handle": []})
    assert held.on("berth-a.d1", PATHS["berth-tls"])
    assert not held.on("berth-a.d1", PATHS["berth"])
    assert held.get("theirs") is None
    assert set(held.with_prefix("berth-a.")) == {"berth-a.d1"}


def test_writes_update_the_copy_and_forget_makes_it_unknown() -> None:
    held = HeldRoutes()
    held.put(PATHS["berth"], {"@id": "ignored"})  # no copy yet: nothing to update
    held.load(None, PATHS, "s")  # an empty Caddy: a copy with no routes
    assert held.known("s")
    assert held.get("ignored") is None
    held.put(PATHS["berth"], {"@id": "berth-b"})
    assert held.on("berth-b", PATHS["berth"])
    held.drop("berth-b")
    assert held.get("berth-b") is None
    held.forget()
    assert not held.known("s")
