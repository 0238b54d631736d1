"""HTTPS host routes: built from the agent's entries, and read back into the same entries."""

from agent.edge_map import map_entry, upstreams_entry
from agent.edge_tls_map import (
    TLS_UPSTREAMS_SUFFIX,
    HostIndex,
    hosts_route_id,
    hosts_routes,
    read_hosts_route,
    shown_binding,
)
from shared.messages.deploy import DomainRoute


def binding(n: int) -> DomainRoute:
    return DomainRoute.model_validate({"id": f"dbd_{n}", "domain_name": f"s{n}.example.test"})


def test_a_host_route_reads_back_into_the_entries_it_was_built_from() -> None:
    entries = [map_entry("res_a", binding(n)) for n in (3, 1, 2)]
    dials = ["127.0.0.1:1", "127.0.0.1:2"]
    upstreams = upstreams_entry("res_a", dials, TLS_UPSTREAMS_SUFFIX)
    [(own, route)] = hosts_routes(entries, [upstreams]).items()
    assert own == hosts_route_id("res_a")
    # Names sorted, each binding at its name's place.
    assert route["match"] == [{"host": [f"s{n}.example.test" for n in (1, 2, 3)]}]
    assert route["handle"][0]["berth_bindings"] == ["dbd_1", "dbd_2", "dbd_3"]
    assert [u["dial"] for u in route["handle"][1]["upstreams"]] == dials
    read, read_upstreams = read_hosts_route(route)
    assert {e["@id"]: e for e in read} == {e["@id"]: e for e in entries}
    assert read_upstreams == upstreams


def test_a_resource_without_upstreams_has_no_route_and_a_bad_route_reads_as_nothing() -> None:
    entries = [map_entry("res_a", binding(1)), map_entry("res_b", binding(2))]
    upstreams = [upstreams_entry("res_b", ["127.0.0.1:1"], TLS_UPSTREAMS_SUFFIX)]
    assert list(hosts_routes(entries, upstreams)) == [hosts_route_id("res_b")]
    route = hosts_routes(entries, upstreams)[hosts_route_id("res_b")]
    # Bindings that do not line up with the names (edited by hand): rewritten at next change.
    edited = {**route, "match": [{"host": ["s2.example.test", "x.example.test"]}]}
    assert read_hosts_route(edited) == ([], None)
    assert read_hosts_route({"@id": hosts_route_id("res_b")}) == ([], None)


def test_the_preview_and_the_failure_pages_see_one_binding() -> None:
    entries = [map_entry("res_a", binding(n)) for n in (1, 2)]
    upstreams = [upstreams_entry("res_a", ["127.0.0.1:1"], TLS_UPSTREAMS_SUFFIX)]
    route = hosts_routes(entries, upstreams)[hosts_route_id("res_a")]
    shown = shown_binding(route, "s2.example.test", "dbd_2")
    assert shown["match"] == [{"host": ["s2.example.test"]}]
    assert shown["handle"][0]["berth_bindings"] == ["dbd_2"]
    assert "s1.example.test" not in str(shown)
    assert route["handle"][0]["berth_bindings"] == ["dbd_1", "dbd_2"]  # not changed
    index = HostIndex()
    index.rebuild(entries)
    assert index.binding("S1.Example.Test") == ("res_a", "dbd_1")
    assert index.binding("other.example.test") is None
