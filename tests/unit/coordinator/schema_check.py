"""Check a real answer against its operation's documented 2xx response schema in /openapi.json."""

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator

import coordinator.api  # noqa: F401  (registers every route in ROUTES)
from coordinator.api.openapi import build_openapi


@functools.cache
def _document() -> str:
    return json.dumps(build_openapi())


def assert_matches_schema(method: str, path: str, body: Any) -> None:
    """Fail with the schema violations of ``body`` (``path`` as declared, with its {names})."""
    document: dict[str, Any] = json.loads(_document())
    responses = document["paths"][path][method.lower()]["responses"]
    status = next(code for code in responses if code.startswith("2"))
    schema = responses[status]["content"]["application/json"]["schema"]
    # The refs point into the document's components: validate against a root that has them.
    root = {**schema, "components": document["components"]}
    errors = sorted(Draft202012Validator(root).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:10]]
