"""The host map's pure parts: which bindings are entries, the entries of a host and of a
resource's upstreams, an older agent's map read into this one's, and how a change's entries
become admin writes (one, whatever their number)."""

from typing import Any

from agent.edge_held import HeldRoutes
from agent.edge_map import (
    MAP_ENTRIES,
    MAP_UPSTREAMS,
    SLOTS,
    entries,
    map_entry,
    map_route,
    mappable,
    shown,
    upgraded,
    upstream_entries,
    upstreams_entry,
)
from agent.edge_map_write import drop_upstreams, put_upstreams, write_entries
from shared.messages.deploy import DomainRoute

A, B, C = "127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"


def domain(**extra: object) -> DomainRoute:
    # Wire names, as the agent reads a plan (its lean layer reads no Python names).
    fields = {"id": "dbd_1", "domain_name": "shop.example.test", "tls_mode": "disabled", **extra}
    return DomainRoute.model_validate({_wire_name(k): v for k, v in fields.items()})


def _wire_name(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


def test_only_a_plain_proxy_to_a_divisor_of_the_slots_is_mapped() -> None:
    assert mappable(domain(), [A])
    assert mappable(domain(), [A, B])
    assert not mappable(domain(), [A, B, C])  # would not spread evenly over four slots
    assert not mappable(domain(), [])  # stopped: the 503 route
    assert not mappable(domain(), [A, A])
    assert not mappable(domain(path_prefix="/api"), [A])
    assert not mappable(domain(redirect_to="example.test", redirect_status=301), [A])
    assert not mappable(domain(ownership_token="tok"), [A])


def test_a_host_entry_names_its_binding_and_the_resources_entry_repeats_its_upstreams() -> None:
    entry = map_entry("res_1", domain())
    assert entry == {
        "@id": "berth-res_1.dbd_1",
        "input": "shop.example.test",
        "outputs": ["res_1", "dbd_1"],
    }
    ups = upstreams_entry("res_1", [A, B])
    assert ups == {"@id": "berth-res_1.~upstreams", "input": "res_1", "outputs": [A, B, A, B]}
    route = map_route([entry], [ups])
    hosts, resources = route["handle"][0], route["handle"][1]
    assert len(hosts["destinations"]) == len(entry["outputs"])
    assert len(resources["destinations"]) == SLOTS
    # The host entry is looked up once, into request variables (``vars``, after the maps:
    # they are read lazily), and the second map is keyed on what it found.
    kept = route["handle"][2]
    assert kept["handler"] == "vars"
    assert [kept[name] for name in ("berth_map_resource", "berth_map_binding")] == hosts[
        "destinations"
    ]
    assert resources["source"] == "{http.vars.berth_map_resource}"
    # The failure pages' route id is made of the two names, as ``domain_route_id`` makes it.
    tag = route["handle"][3]["routes"][0]["handle"][0]
    assert (
        tag["berth_route"] == "berth-{http.vars.berth_map_resource}.{http.vars.berth_map_binding}"
    )
    assert tag["berth_resource"] == "{http.vars.berth_map_resource}"
    assert (entries(route), upstream_entries(route)) == ([entry], [ups])


def test_an_older_agents_single_map_is_read_into_the_two_without_losing_a_host() -> None:
    def old(resource: str, binding: str, dials: list[str]) -> dict[str, Any]:
        rid = f"berth-{resource}.{binding}"
        return {"@id": rid, "input": f"{binding}.test", "outputs": [*dials, resource, binding, rid]}

    old_route = {
        "@id": "berth-edge-map",
        "handle": [
            {
                "handler": "map",
                "mappings": [
                    old("res_1", "b1", [A] * 4),
                    old("res_2", "b2", [B, C] * 2),
                    old("res_1", "b3", [A] * 4),
                ],
            },
            {"handler": "subroute", "routes": []},
        ],
    }
    hosts, ups = upgraded(old_route)
    assert [(h["input"], h["outputs"]) for h in hosts] == [
        ("b1.test", ["res_1", "b1"]),
        ("b2.test", ["res_2", "b2"]),
        ("b3.test", ["res_1", "b3"]),
    ]
    assert ups == [upstreams_entry("res_1", [A]), upstreams_entry("res_2", [B, C])]
    # This agent's map reads back as it is.
    current = map_route(hosts, ups)
    assert upgraded(current) == (hosts, ups)


def test_the_preview_shows_a_binding_with_its_resources_upstreams_alone() -> None:
    mine, other = map_entry("res_1", domain()), map_entry("res_2", domain(id="dbd_2"))
    route = map_route([mine, other], [upstreams_entry("res_1", [A]), upstreams_entry("res_2", [B])])
    seen = shown(route, mine)
    assert entries(seen) == [mine]
    assert upstream_entries(seen) == [upstreams_entry("res_1", [A])]
    assert B not in str(seen)


class Calls:
    def __init__(self) -> None:
        self.made: list[tuple[str, str, Any]] = []

    async def __call__(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        self.made.append((method, path, body))


def held_with(*ids: str) -> HeldRoutes:
    held = HeldRoutes()
    route = map_route([{"@id": i, "input": f"{i}.test", "outputs": ["r", i]} for i in ids])
    held.load({"berth": {"routes": [route]}}, {"berth": "/config/apps/http/servers/berth"}, "s")
    return held


async def test_one_operation_is_a_small_write_by_id() -> None:
    for changed, added, stale, wanted in (
        ([{"@id": "x", "outputs": [B]}], [], [], ("PATCH", "/id/x")),
        ([], [{"@id": "z"}], [], ("POST", MAP_ENTRIES)),
        ([], [{"@id": "z"}, {"@id": "w"}], [], ("POST", f"{MAP_ENTRIES}/...")),
        ([], [], ["y"], ("DELETE", "/id/y")),
    ):
        calls, held = Calls(), held_with("x", "y")
        await write_entries(calls, held, MAP_ENTRIES, changed, added, stale)
        assert [(m, p) for m, p, _ in calls.made] == [wanted]


async def test_several_operations_are_one_write_of_the_whole_list_in_caddys_order() -> None:
    calls, held = Calls(), held_with("x", "y", "v")
    new_x = {"@id": "x", "input": "x.test", "outputs": [B]}
    await write_entries(calls, held, MAP_ENTRIES, [new_x], [{"@id": "z"}], ["y"])
    [(method, path, body)] = calls.made
    assert (method, path) == ("PATCH", MAP_ENTRIES)
    assert [e["@id"] for e in body] == ["x", "v", "z"]
    assert body[0] == new_x
    # The copy follows the write: the next change starts from it.
    assert list(held.at(MAP_ENTRIES)) == ["x", "v", "z"]
    assert held.get("y") is None


async def test_a_resources_upstreams_are_added_replaced_and_dropped_by_id() -> None:
    calls, held = Calls(), held_with("x")
    first = upstreams_entry("res_1", [A])
    await put_upstreams(calls, held, first)
    await put_upstreams(calls, held, first)  # held as wanted: nothing written
    await put_upstreams(calls, held, upstreams_entry("res_1", [B]))
    await drop_upstreams(calls, held, first["@id"])
    await drop_upstreams(calls, held, first["@id"])  # gone already: nothing written
    assert [(m, p) for m, p, _ in calls.made] == [
        ("POST", MAP_UPSTREAMS),
        ("PATCH", f"/id/{first['@id']}"),
        ("DELETE", f"/id/{first['@id']}"),
    ]
    assert held.at(MAP_UPSTREAMS) == {}
