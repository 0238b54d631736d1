"""The batch's applier on its own: a write inside an earlier write's body of the same batch is
refused (the bodies are the caller's objects), and what a refusal leaves is not written."""

import copy
from typing import Any

import pytest

from agent.edge_batch import Write, applied
from shared.errors import RuntimeFailed


def servers() -> dict[str, Any]:
    return {
        "berth": {
            "routes": [
                {"@id": "map", "handle": [{"handler": "map", "mappings": []}]},
                {"@id": "fallback", "handle": []},
            ]
        }
    }


def test_writes_apply_in_order_by_id() -> None:
    held = {"@id": "own", "match": [{"host": ["a.test"]}], "handle": []}
    done = applied(
        servers(),
        [
            Write("PUT", "/id/fallback", held, False),
            Write("POST", "/id/map/handle/0/mappings", {"@id": "e1", "input": "b.test"}, False),
            Write("PATCH", "/id/e1", {"@id": "e1", "input": "c.test"}, False),
            Write("DELETE", "/id/gone", None, True),
        ],
    )
    routes = done["berth"]["routes"]
    assert [r["@id"] for r in routes] == ["map", "own", "fallback"]
    assert routes[0]["handle"][0]["mappings"] == [{"@id": "e1", "input": "c.test"}]


def test_a_write_inside_an_earlier_writes_body_is_refused_and_the_body_kept() -> None:
    held = {"@id": "map", "handle": [{"handler": "map", "mappings": []}]}
    before = copy.deepcopy(held)
    with pytest.raises(RuntimeFailed, match="inside an earlier write"):
        applied(
            servers(),
            [
                Write("PATCH", "/id/map", held, False),
                Write("POST", "/id/map/handle/0/mappings", {"@id": "e1"}, False),
            ],
        )
    assert held == before


def test_an_id_not_held_is_refused_unless_missing_is_fine() -> None:
    with pytest.raises(RuntimeFailed, match="PATCH /id/nowhere"):
        applied(servers(), [Write("PATCH", "/id/nowhere", {"@id": "nowhere"}, False)])
    with pytest.raises(RuntimeFailed, match="PUT /config/apps/http/servers/berth/routes/9"):
        applied(
            servers(),
            [Write("PUT", "/config/apps/http/servers/berth/routes/9", {"@id": "x"}, False)],
        )
