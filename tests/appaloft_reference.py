"""Compare the Appaloft reference's example response bodies with Berth's OpenAPI response schemas.

The reference (``../shared/seeds/004_*.txt``, the generated Appaloft OpenAPI reference as text)
shows one example response body per operation. Every key path in such a body is a "reference
field" (``items[].source.kind``; ``property1``/``property2`` are the generator's stand-ins for the
keys of a free-form map and become ``{*}``). A field is *present* when Berth's response schema for
the same operation (method + path, path-parameter names ignored) has that key path, *excluded*
when docs/appaloft-compatibility.md lists it (or one of its ancestors) with a reason, and
*missing* otherwise. ``python -m tests.appaloft_coverage`` prints the table; the conformance test
fails on any missing field.
"""

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPATIBILITY_DOC = REPO_ROOT / "docs" / "appaloft-compatibility.md"
SEEDS_ENV = "BERTH_APPALOFT_SEEDS"
_OPERATION_HEADER = re.compile(r"^(GET|POST|PUT|PATCH|DELETE)(/\S*)$")
_PATH_PARAM = re.compile(r"{[^}]+}")
_MAP_KEYS = ("property1", "property2")
_TABLE_ROW = re.compile(
    r"^\|\s*((?:GET|POST|PUT|PATCH|DELETE) /\S*)\s*\|\s*`?([^|`]+?)`?\s*\|(.+)\|\s*$"
)
_REF_PREFIX = "#/components/schemas/"


def seeds_dir() -> Path | None:
    """The shared seeds directory: $BERTH_APPALOFT_SEEDS, else ``shared/seeds`` beside an ancestor.

    CI clones the repository next to ``shared/``; a git worktree sits one level deeper, hence
    the walk up the ancestors instead of a fixed ``../shared``.
    """
    configured = os.environ.get(SEEDS_ENV)
    if configured:
        return Path(configured) if Path(configured).is_dir() else None
    for ancestor in REPO_ROOT.parents:
        candidate = ancestor / "shared" / "seeds"
        if candidate.is_dir():
            return candidate
    return None


def reference_file(seeds: Path) -> Path:
    """The OpenAPI-reference seed (``004_*.txt``)."""
    found = sorted(seeds.glob("004_*.txt"))
    if not found:
        raise FileNotFoundError(f"no 004_*.txt in {seeds}")
    return found[0]


def operation_key(method: str, path: str) -> str:
    """``GET /resources/{}``: the method plus the path with parameter names erased."""
    return f"{method.upper()} {_PATH_PARAM.sub('{}', path)}"


def reference_bodies(text: str) -> dict[str, tuple[str, Any]]:
    """Operation key -> (the reference's own ``METHOD /path``, its example response body).

    Each operation starts with a ``GET/path`` line; its example request is a ``curl`` line and
    the example response body is the JSON value right after it. Operations without a JSON body
    (``null``, ``Empty``: streams and 204s) are left out.
    """
    decoder = json.JSONDecoder()
    sections: list[tuple[str, str, list[str]]] = []
    for line in text.split("\n"):
        header = _OPERATION_HEADER.match(line)
        if header:
            sections.append((header.group(1), header.group(2), []))
        elif sections:
            sections[-1][2].append(line)
    bodies: dict[str, tuple[str, Any]] = {}
    for method, path, lines in sections:
        curl = next((i for i, line in enumerate(lines) if line.startswith("curl ")), None)
        if curl is None:
            continue
        rest = "\n".join(lines[curl + 1 :]).lstrip()
        if not rest.startswith(("{", "[")):
            continue
        body, _ = decoder.raw_decode(rest)
        bodies[operation_key(method, path)] = (f"{method} {path}", body)
    return bodies


def field_paths(body: Any, prefix: str = "") -> list[str]:
    """Every key path in an example body, parents before children, without repeats."""
    found: list[str] = []
    if isinstance(body, dict):
        for key, value in body.items():
            name = "{*}" if key in _MAP_KEYS else key
            path = f"{prefix}.{name}" if prefix else name
            found.append(path)
            found.extend(field_paths(value, path))
    elif isinstance(body, list):
        for item in body:
            found.extend(field_paths(item, f"{prefix}[]"))
    return list(dict.fromkeys(found))


def schema_paths(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """Every key path an instance of ``schema`` may carry (same notation as field_paths)."""
    found: set[str] = set()
    _walk_schema(document, schema, "", found, ())
    return found


def _walk_schema(
    document: dict[str, Any],
    schema: dict[str, Any],
    prefix: str,
    found: set[str],
    seen: tuple[str, ...],
) -> None:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref in seen:  # a recursive model: its paths were walked one level up
            return
        name = ref.removeprefix(_REF_PREFIX)
        _walk_schema(document, document["components"]["schemas"][name], prefix, found, (*seen, ref))
        return
    for combinator in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(combinator, []):
            _walk_schema(document, branch, prefix, found, seen)
    for key, prop in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        found.add(path)
        _walk_schema(document, prop, path, found, seen)
    extra = schema.get("additionalProperties")
    if extra is True or isinstance(extra, dict):  # a map: any key is a field
        path = f"{prefix}.{{*}}" if prefix else "{*}"
        found.add(path)
        if isinstance(extra, dict):
            _walk_schema(document, extra, path, found, seen)
    items = schema.get("items")
    if isinstance(items, dict):
        _walk_schema(document, items, f"{prefix}[]", found, seen)


@dataclass(frozen=True)
class Exclusion:
    """One row of the compatibility doc's exclusion table."""

    operation: str
    path: str
    reason: str


def load_exclusions(doc: Path = COMPATIBILITY_DOC) -> list[Exclusion]:
    """The ``| METHOD /path | field path | reason |`` rows of the compatibility doc."""
    rows: list[Exclusion] = []
    for line in doc.read_text(encoding="utf-8").splitlines():
        row = _TABLE_ROW.match(line)
        if row:
            method, path = row.group(1).split(" ", 1)
            reason = row.group(3).strip()
            rows.append(Exclusion(operation_key(method, path), row.group(2).strip(), reason))
    return rows


def _covers(excluded: str, path: str) -> bool:
    return path == excluded or path.startswith((f"{excluded}.", f"{excluded}["))


@dataclass
class OperationCoverage:
    """How one served operation's response schema covers the reference's fields."""

    operation: str
    total: int = 0
    present: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * len(self.present) / self.total if self.total else 100.0


def _response_schemas(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if isinstance(schema, dict):
                    yield operation_key(method, path), schema


def coverage(
    document: dict[str, Any], reference: dict[str, tuple[str, Any]], exclusions: list[Exclusion]
) -> list[OperationCoverage]:
    """Per served operation (in the reference and in Berth with a JSON answer), its coverage."""
    results: list[OperationCoverage] = []
    for key, schema in _response_schemas(document):
        if key not in reference:
            continue
        name, body = reference[key]
        berth = schema_paths(document, schema)
        excluded = [e.path for e in exclusions if e.operation == key]
        result = OperationCoverage(name)
        for path in field_paths(body):
            result.total += 1
            if path in berth:
                result.present.append(path)
            elif any(_covers(e, path) for e in excluded):
                result.excluded.append(path)
            else:
                result.missing.append(path)
        results.append(result)
    return results


def stale_exclusions(
    results: list[OperationCoverage], reference: dict[str, tuple[str, Any]], rows: list[Exclusion]
) -> list[Exclusion]:
    """Rows that explain nothing: the field is present now, or the reference has no such field."""
    served = {operation_key(*r.operation.split(" ", 1)): r for r in results}
    stale = []
    for row in rows:
        result = served.get(row.operation)
        if result is None or not any(_covers(row.path, p) for p in result.excluded):
            stale.append(row)
    return stale
