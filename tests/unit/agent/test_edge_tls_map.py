"""HTTPS host routes: built from the agent's entries, and read back into entries whose binding
the agent learns again (Caddy holds names, resource and upstreams, not binding ids)."""

from typing import Any

from agent.edge_map import map_entry, upstreams_entry
from agent.edge_tls_map import (
    TLS_UPSTREAMS_SUFFIX,
    HostIndex,
    hosts_route_id,
    hosts_routes,
    read_hosts_route,
    shown_binding,
    unread,
)
from shared.messages.deploy import DomainRoute


def binding(n: int) -> DomainRoute:
    return DomainRoute.model_validate({"id": f"dbd_{n}", "domainName": f"s{n}.example.test"})


def test_a_host_route_reads_back_into_its_names_and_upstreams_without_bindings() -> None:
    entries = [map_entry("res_a", binding(n)) for n in (3, 1, 2)]
    dials = ["127.0.0.1:1", "127.0.0.1:2"]
    upstreams = upstreams_entry("res_a", dials, TLS_UPSTREAMS_SUFFIX)
    [(own, route)] = hosts_routes(entries, [upstreams]).items()
    assert own == hosts_route_id("res_a")
    assert route["match"] == [{"host": [f"s{n}.example.test" for n in (1, 2, 3)]}]
    assert "dbd_" not in str(route)  # no binding id goes to Caddy
    assert route["handle"][0]["berth_resource"] == "res_a"
    assert [u["dial"] for u in route["handle"][1]["upstreams"]] == dials
    read, read_upstreams = read_hosts_route(route)
    assert read_upstreams == upstreams
    assert sorted(e["input"] for e in read) == [f"s{n}.example.test" for n in (1, 2, 3)]
    assert all(unread(e) and e["outputs"][0] == "res_a" for e in read)
    assert not any(unread(e) for e in entries)
    # Distinct ids, under the resource's prefix (its next reconciliation finds them stale),
    # none a binding's (or the host route's own).
    ids = {e["@id"] for e in read}
    assert len(ids) == 3
    assert all(i.startswith("berth-res_a.") for i in ids)
    assert ids.isdisjoint({e["@id"] for e in entries} | {own})
    # The route those entries render is the one read: relearning bindings writes nothing.
    assert hosts_routes(read, [upstreams]) == {own: route}


def test_an_earlier_agents_route_is_read_with_its_binding_ids() -> None:
    entries = [map_entry("res_a", binding(n)) for n in (1, 2)]
    upstreams = upstreams_entry("res_a", ["127.0.0.1:1"], TLS_UPSTREAMS_SUFFIX)
    route = hosts_routes(entries, [upstreams])[hosts_route_id("res_a")]
    earlier: dict[str, Any] = {
        **route,
        "handle": [
            {**route["handle"][0], "berth_bindings": ["dbd_1", "dbd_2"]},
            route["handle"][1],
        ],
    }
    read, _ = read_hosts_route(earlier)
    assert {e["@id"]: e for e in read} == {e["@id"]: e for e in entries}
    # Ids that do not line up with the names (edited by hand) are not trusted.
    edited = {**earlier, "match": [{"host": ["s1.example.test"]}]}
    assert all(unread(e) for e in read_hosts_route(edited)[0])


def test_a_resource_without_upstreams_has_no_route_and_a_bad_route_reads_as_nothing() -> None:
    entries = [map_entry("res_a", binding(1)), map_entry("res_b", binding(2))]
    upstreams = [upstreams_entry("res_b", ["127.0.0.1:1"], TLS_UPSTREAMS_SUFFIX)]
    assert list(hosts_routes(entries, upstreams)) == [hosts_route_id("res_b")]
    route = hosts_routes(entries, upstreams)[hosts_route_id("res_b")]
    # No resource tag (edited by hand): nothing is read, the next change rewrites it.
    untagged = {**route, "handle": route["handle"][1:]}
    assert read_hosts_route(untagged) == ([], None)
    assert read_hosts_route({"@id": hosts_route_id("res_b")}) == ([], None)


def test_the_preview_and_the_failure_pages_see_one_binding() -> None:
    entries = [map_entry("res_a", binding(n)) for n in (1, 2)]
    upstreams = [upstreams_entry("res_a", ["127.0.0.1:1"], TLS_UPSTREAMS_SUFFIX)]
    route = hosts_routes(entries, upstreams)[hosts_route_id("res_a")]
    shown = shown_binding(route, "s2.example.test")
    assert shown["match"] == [{"host": ["s2.example.test"]}]
    assert "s1.example.test" not in str(shown)
    assert route["match"] == [{"host": ["s1.example.test", "s2.example.test"]}]  # not changed
    index = HostIndex()
    read, _ = read_hosts_route(route)
    index.rebuild([*entries[:1], *read[1:]])  # s2 read back, not relearnt yet
    assert index.binding("S1.Example.Test") == ("res_a", "dbd_1")
    assert index.binding("s2.example.test") is None
    assert index.binding("other.example.test") is None
