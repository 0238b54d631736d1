"""Each Appaloft reference response field is in Berth's OpenAPI schema or excluded with a reason."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

import coordinator.api  # noqa: F401  (registers every route in ROUTES)
from coordinator.api.openapi import build_openapi
from tests.appaloft_coverage import render
from tests.appaloft_reference import (
    Exclusion,
    OperationCoverage,
    coverage,
    field_paths,
    load_exclusions,
    reference_bodies,
    reference_file,
    schema_paths,
    seeds_dir,
    stale_exclusions,
)

_STRICT = os.environ.get("BERTH_REQUIRE_DOCKER") == "1" or bool(os.environ.get("CI"))


@pytest.fixture(scope="module")
def reference() -> dict[str, tuple[str, Any]]:
    seeds = seeds_dir()
    if seeds is None:
        message = "the Appaloft reference ../shared/seeds is missing"
        if _STRICT:
            pytest.fail(message)
        pytest.skip(message)
    return reference_bodies(reference_file(seeds).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def results(reference: dict[str, tuple[str, Any]]) -> list[OperationCoverage]:
    document: dict[str, Any] = json.loads(json.dumps(build_openapi()))
    return coverage(document, reference, load_exclusions())


def test_every_reference_field_is_present_or_excluded_with_a_reason(
    results: list[OperationCoverage], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print("\n" + render(results))
    missing = {r.operation: r.missing for r in results if r.missing}
    assert not missing, (
        "reference fields neither in /openapi.json nor in docs/appaloft-compatibility.md: "
        f"{missing}"
    )


def test_the_reference_is_read_whole(reference: dict[str, tuple[str, Any]]) -> None:
    # 250 operations in the reference, 239 with a JSON example body (the rest are streams/204s).
    assert len(reference) >= 230
    name, body = reference["GET /audit-events"]
    assert name == "GET /audit-events"
    assert "items[].auditEventId" in field_paths(body)


def test_served_operations_are_matched_by_method_and_path(
    results: list[OperationCoverage],
) -> None:
    served = {r.operation for r in results}
    assert {"GET /resources/{resourceId}", "GET /deployments/{deploymentId}"} <= served
    assert len(served) >= 80


def test_exclusion_rows_name_a_reason(tmp_path: Path) -> None:
    rows = load_exclusions()
    assert rows
    assert all(row.reason for row in rows)
    doc = tmp_path / "doc.md"
    doc.write_text("| GET /a/{x} | `b[].c` | gone for good |\n| x | y | z |\n", encoding="utf-8")
    assert load_exclusions(doc) == [Exclusion("GET /a/{}", "b[].c", "gone for good")]


def test_a_missing_field_fails_and_an_exclusion_covers_its_subtree() -> None:
    document = {
        "paths": {
            "/things/{id}": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/T"}}
                            }
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "T": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/T"}},
                        "name": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                }
            }
        },
    }
    assert schema_paths(document, {"$ref": "#/components/schemas/T"}) == {
        "items",
        "name",
        "labels",
        "labels.{*}",
    }
    body = {"name": "a", "labels": {"property1": "x"}, "extra": {"deep": 1}, "items": [{"x": 1}]}
    reference = {"GET /things/{}": ("GET /things/{thingId}", body)}
    [result] = coverage(document, reference, [])
    assert result.present == ["name", "labels", "labels.{*}", "items"]
    assert result.missing == ["extra", "extra.deep", "items[].x"]
    [result] = coverage(document, reference, [Exclusion("GET /things/{}", "extra", "why")])
    assert result.excluded == ["extra", "extra.deep"]
    assert result.missing == ["items[].x"]


def test_no_exclusion_row_is_stale(
    results: list[OperationCoverage], reference: dict[str, tuple[str, Any]]
) -> None:
    # A row whose field is now present (or never was in the reference) would make the doc lie.
    stale = stale_exclusions(results, reference, load_exclusions())
    assert not stale, f"rows of docs/appaloft-compatibility.md that explain nothing: {stale}"
