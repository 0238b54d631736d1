"""The host map's pure parts: which bindings are entries, an entry's slots, and how a change's
entries become admin writes (one, whatever their number)."""

from typing import Any

from agent.edge_held import HeldRoutes
from agent.edge_map import MAP_ENTRIES, SLOTS, map_entry, map_route, mappable
from agent.edge_map_write import write_entries
from shared.messages.deploy import DomainRoute

A, B, C = "127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"


def domain(**extra: object) -> DomainRoute:
    fields = {"id": "dbd_1", "domain_name": "shop.example.test", "tls_mode": "disabled"}
    return DomainRoute.model_validate({**fields, **extra})


def test_only_a_plain_proxy_to_a_divisor_of_the_slots_is_mapped() -> None:
    assert mappable(domain(), [A])
    assert mappable(domain(), [A, B])
    assert not mappable(domain(), [A, B, C])  # would not spread evenly over four slots
    assert not mappable(domain(), [])  # stopped: the 503 route
    assert not mappable(domain(), [A, A])
    assert not mappable(domain(path_prefix="/api"), [A])
    assert not mappable(domain(redirect_to="example.test", redirect_status=301), [A])
    assert not mappable(domain(ownership_token="tok"), [A])


def test_an_entry_repeats_its_upstreams_over_the_slots_and_names_its_route() -> None:
    entry = map_entry("res_1", domain(), [A, B])
    assert entry["@id"] == "berth-res_1.dbd_1"
    assert entry["input"] == "shop.example.test"
    assert entry["outputs"] == [A, B, A, B, "res_1", "dbd_1", "berth-res_1.dbd_1"]
    assert len(map_route()["handle"][0]["destinations"]) == SLOTS + 3


class Calls:
    def __init__(self) -> None:
        self.made: list[tuple[str, str, Any]] = []

    async def __call__(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        self.made.append((method, path, body))


def held_with(*ids: str) -> HeldRoutes:
    held = HeldRoutes()
    route = map_route([{"@id": i, "input": f"{i}.test", "outputs": [A]} for i in ids])
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
        await write_entries(calls, held, changed, added, stale)
        assert [(m, p) for m, p, _ in calls.made] == [wanted]


async def test_several_operations_are_one_write_of_the_whole_list_in_caddys_order() -> None:
    calls, held = Calls(), held_with("x", "y", "v")
    new_x = {"@id": "x", "input": "x.test", "outputs": [B]}
    await write_entries(calls, held, [new_x], [{"@id": "z"}], ["y"])
    [(method, path, body)] = calls.made
    assert (method, path) == ("PATCH", MAP_ENTRIES)
    assert [e["@id"] for e in body] == ["x", "v", "z"]
    assert body[0] == new_x
    # The copy follows the write: the next change starts from it.
    assert list(held.at(MAP_ENTRIES)) == ["x", "v", "z"]
    assert held.get("y") is None
