"""The permission matrix, generated: every operation of ``/openapi.json`` against the catalogue.

For each operation's declared permission P (``x-berth-permission``, coordinator/permissions.py):
a token holding every permission but P is refused with 403 naming P; a token holding only P is
not refused for who it is; each role of ``ROLE_PERMISSIONS`` (a real login session) gets
exactly what its permissions grant. A new route is walked without being listed, and one
without a declared permission fails unless it is one of the known public operations.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
import pytest_asyncio

from coordinator.accounts import passwords
from coordinator.api.openapi import build_openapi
from coordinator.db import account_models, models
from coordinator.db.organization_models import OrganizationMember
from coordinator.ids import new_id
from coordinator.organizations.roles import ROLE_PERMISSIONS
from coordinator.permissions import ALL_PERMISSIONS, PERMISSIONS
from tests.harness import Coordinator
from tests.tenancy import (
    Operation,
    Request,
    module_database,
    operations,
    runs_for_real,
    unauthorized_input,
)
from tests.unit.coordinator.support import mint_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

DOCUMENT = build_openapi()
OPERATIONS = operations(DOCUMENT)
GUARDED = [op for op in OPERATIONS if op.permission is not None]
PASSWORD = "every role walks every route 7"
# Operations anyone may call, each checking what it needs itself. A route added without a
# permission is not here, so it fails test_only_the_known_operations_are_public.
PUBLIC: Final = {
    "GET /openapi.json": "the API description",
    "GET /bootstrap/auth/status": "a fresh install asks what to do next",
    "POST /bootstrap/auth/first-admin": "one-time; refused once the first admin exists",
    "POST /auth/login": "checks the password (and second factor) itself",
    "POST /agent/v1/enroll": "checks the one-time join token itself",
    "GET /agent/v1/install.sh": "the installer script (no secrets)",
    "GET /agent/v1/package": "the agent package (no secrets)",
    "GET /agent/v1/archives/{archiveId}": "checks the agent's signed request itself",
    "GET /agent/v1/connect": "the agent websocket; checks the agent's key itself",
    "POST /organization-invitations/accept": "checks the one-time invitation secret itself",
}


@dataclass
class Matrix:
    """The running coordinator and the credentials the cases use."""

    coordinator: Coordinator
    admin: str
    without: dict[str, str] = field(default_factory=dict)
    only: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def matrix(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path
) -> AsyncIterator[Matrix]:
    """One coordinator; per permission a token without it and one with only it; per role a
    user with a login session."""
    root = tmp_path_factory.mktemp("matrix")
    coordinator = Coordinator(
        root / "coordinator",
        await module_database(root, migrated_sqlite),
        rate_limit_token_per_minute=0,
        rate_limit_anonymous_per_minute=0,
    )
    await coordinator.start()
    try:
        admin = await coordinator.bootstrap()
        found = Matrix(coordinator, admin)
        for permission in PERMISSIONS:
            others = [p for p in PERMISSIONS if p != permission]
            found.without[permission] = (await mint_token(coordinator, admin, others))["token"]
            found.only[permission] = (await mint_token(coordinator, admin, [permission]))["token"]
        hashed = await passwords.hash_password(PASSWORD)
        for role in ROLE_PERMISSIONS:
            found.roles[role] = await _role_session(coordinator, role, hashed)
        yield found
    finally:
        await coordinator.close()


async def _role_session(coordinator: Coordinator, role: str, hashed: str) -> str:
    """A user of the organization with ``role`` and a password; a fresh session's token."""
    email = f"{role}@matrix.example.com"
    if not await models.User.exists(email=email):
        now = datetime.now(UTC)
        user_id = new_id("usr")
        org = await models.Organization.all().first()
        assert org is not None
        _ = await models.User.create(
            id=user_id,
            organization_id=org.id,
            email=email,
            display_name=role,
            role=role,
            created_at=now,
        )
        # The role a session acts with is its membership's (docs/organizations.md).
        _ = await OrganizationMember.create(
            id=new_id("mem"),
            organization_id=org.id,
            user_id=user_id,
            role=role,
            joined_at=now,
            updated_at=now,
        )
        _ = await account_models.AccountCredential.create(
            id=user_id,
            user_id=user_id,
            password_hash=hashed,
            password_changed_at=now,
            updated_at=now,
        )
    status, body, _ = await coordinator.call(
        "POST", "/auth/login", json={"email": email, "password": PASSWORD, "clientKind": "cli"}
    )
    assert status == 201, body
    return str(body["token"])


async def _send(matrix: Matrix, request: Request, token: str) -> tuple[int, Any]:
    status, body, _ = await matrix.coordinator.call(
        request.method, request.path, token=token, json=request.body
    )
    return status, body


def _refused_for(status: int, body: Any, permission: str | None) -> bool:
    """Whether the answer is the 403 that names ``permission`` as the one missing."""
    if status != 403 or not isinstance(body, dict):
        return False
    error = body["error"]
    return bool(
        error["code"] == "forbidden" and error["details"].get("requiredPermission") == permission
    )


async def test_only_the_known_operations_are_public() -> None:
    public = {op.label for op in OPERATIONS if op.permission is None}
    assert public == set(PUBLIC), "a route without a declared permission (or a stale entry)"


async def test_every_declared_permission_is_in_the_catalogue() -> None:
    assert {op.permission for op in GUARDED} <= set(PERMISSIONS)


@pytest.mark.parametrize("operation", GUARDED, ids=lambda op: op.label)
async def test_a_token_without_the_permission_is_refused_403(
    matrix: Matrix, operation: Operation
) -> None:
    assert operation.permission is not None
    status, body = await _send(
        matrix, unauthorized_input(operation), matrix.without[operation.permission]
    )
    assert _refused_for(status, body, operation.permission), (status, body)


@pytest.mark.parametrize("operation", GUARDED, ids=lambda op: op.label)
async def test_a_token_with_only_the_permission_is_let_through(
    matrix: Matrix, operation: Operation
) -> None:
    assert operation.permission is not None
    token = matrix.only[operation.permission]
    if runs_for_real(operation):  # it may end its own credential: give it one of its own
        token = (await mint_token(matrix.coordinator, matrix.admin, [operation.permission]))[
            "token"
        ]
    status, body = await _send(matrix, unauthorized_input(operation), token)
    assert status < 500, (status, body)
    if "account" in operation.definition.get("tags", []):
        # One's own account needs a person's credential (a login session, walked below by
        # role): a token is refused for what it is, never for lacking the permission.
        assert not _refused_for(status, body, operation.permission), (status, body)
        return
    assert status not in (401, 403), (status, body)


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
@pytest.mark.parametrize("operation", GUARDED, ids=lambda op: op.label)
async def test_each_role_gets_what_the_catalogue_grants(
    matrix: Matrix, operation: Operation, role: str
) -> None:
    granted = ROLE_PERMISSIONS[role]
    allowed = ALL_PERMISSIONS in granted or operation.permission in granted
    token = matrix.roles[role]
    if runs_for_real(operation):
        token = await _role_session(matrix.coordinator, role, "")
    status, body = await _send(matrix, unauthorized_input(operation), token)
    assert status != 401, body
    assert status < 500, (status, body)
    if allowed:
        assert status != 403, (role, status, body)
    else:
        assert _refused_for(status, body, operation.permission), (role, status, body)
