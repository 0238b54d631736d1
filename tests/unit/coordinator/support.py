"""Helpers shared by the coordinator API tests: error envelopes, tokens, audit and DB dumps."""

import os
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from tortoise import Tortoise

from shared.crypto import generate_private_key, public_key_text
from shared.version import AGENT_ENROLL_PATH
from tests.harness import Coordinator

Response = tuple[int, Any, dict[str, str]]

BEARER_CHALLENGE: Final = 'Bearer realm="berth"'
MINTED_REQUEST_ID: Final = r"req_[0-9a-f]{24}"


def on_postgres() -> bool:
    """Whether this run uses Postgres (``BERTH_TEST_DATABASE_URL``) instead of SQLite."""
    return os.environ.get("BERTH_TEST_DATABASE_URL", "").startswith("postgres")


def header(headers: dict[str, str], name: str) -> str | None:
    """Look a response header up case-insensitively."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def assert_error(response: Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``response`` is the error envelope with ``status`` and ``code``; return ``error``."""
    got_status, body, headers = response
    assert got_status == status, body
    assert isinstance(body, dict), body
    assert set(body) == {"error", "requestId"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "retriable", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert body["requestId"] == header(headers, "X-Request-ID")
    if status == 401:
        assert header(headers, "WWW-Authenticate") == BEARER_CHALLENGE
    return dict(error)


def problem_fields(error: dict[str, Any]) -> set[str]:
    """The ``field`` of every entry in ``details.problems`` of a validation error."""
    return {p["field"] for p in error["details"]["problems"]}


def parse_time(value: str) -> datetime:
    """Parse an API timestamp (always timezone-aware)."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed.astimezone(UTC)


async def mint_token(
    coordinator: Coordinator,
    admin_token: str,
    permissions: list[str],
    *,
    server_ids: list[str] | None = None,
    name: str = "ci",
    **extra: Any,
) -> dict[str, Any]:
    """Create a deploy token through the API; return the creation answer."""
    scope: dict[str, Any] = {"permissions": permissions}
    if server_ids is not None:
        scope["deploymentTargetIds"] = server_ids
    status, body, _ = await coordinator.call(
        "POST",
        "/deploy-tokens",
        token=admin_token,
        json={"displayName": name, "scope": scope, **extra},
    )
    assert status == 201, body
    return dict(body)


async def enroll(
    coordinator: Coordinator, join_token: str, public_key: str | None = None
) -> Response:
    """Enroll a (fresh, unless given) agent key with ``join_token``."""
    key = public_key if public_key is not None else public_key_text(generate_private_key())
    return await coordinator.call(
        "POST", AGENT_ENROLL_PATH, json={"joinToken": join_token, "publicKey": key}
    )


async def audit_events(
    coordinator: Coordinator, token: str, **filters: str
) -> list[dict[str, Any]]:
    """Every audit event (all pages), oldest first."""
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {**filters, "limit": "500", **({"cursor": cursor} if cursor else {})}
        status, body, _ = await coordinator.call(
            "GET", f"/audit-events?{urlencode(params)}", token=token
        )
        assert status == 200, body
        events.extend(body["items"])
        cursor = body["nextCursor"]
        if cursor is None:
            return events


async def database_dump(
    *,
    ignore: frozenset[str] | set[str] = frozenset(),
    skip_tables: frozenset[str] | set[str] = frozenset(),
) -> str:
    """Every row of every table of the coordinator's database, as text (SQLite or Postgres).

    Columns named in ``ignore`` are left out; rows are sorted so the text is comparable.
    Tables in ``skip_tables`` (and their SQLite sequence rows) are left out: a live agent
    writes them on its own clock, whatever the request under test did.
    """
    connection = Tortoise.get_connection("default")
    if connection.capabilities.dialect == "sqlite":
        catalog = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        catalog = "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
    _, tables = await connection.execute_query(catalog)
    names = sorted(str(t["name"]) for t in tables)
    assert "api_tokens" in names, names
    lines: list[str] = []
    for name in names:
        if name in skip_tables:
            continue
        _, rows = await connection.execute_query(f'SELECT * FROM "{name}"')  # noqa: S608
        for row in rows:
            if name == "sqlite_sequence" and row["name"] in skip_tables:
                continue
            values = {k: v for k, v in dict(row).items() if k not in ignore}
            lines.append(f"{name}: {values!r}")
    return "\n".join(sorted(lines))
