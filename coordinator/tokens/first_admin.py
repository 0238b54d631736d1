"""First admin: the one-time bootstrap of the organization, its admin and an all-powerful token."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import API_TOKEN_PREFIX, hash_token, mint_token
from coordinator.db import account_models, models
from coordinator.db.organization_models import OrganizationMember
from coordinator.ids import new_id
from shared.errors import Conflict

# v1 serves one organization; a fixed id makes a racing second bootstrap fail on the primary key.
DEFAULT_ORGANIZATION_ID: Final = "org_default"
DEFAULT_ORGANIZATION_SLUG: Final = "default"
_ALREADY: Final = "the first admin already exists; authenticate with its API token"


@dataclass(frozen=True)
class Status:
    """Whether the organization and its first admin exist."""

    organization: models.Organization | None
    admin_exists: bool


@dataclass(frozen=True)
class FirstAdmin:
    """The new admin's id, and its API token (plaintext shown once) with the token's id."""

    user_id: str
    token: str
    token_id: str


async def status() -> Status:
    """What a fresh install has so far."""
    org = await models.Organization.get_or_none(id=DEFAULT_ORGANIZATION_ID)
    admin = await models.User.filter(role="admin").order_by("created_at").first()
    return Status(org, admin is not None)


async def create(
    email: str, display_name: str, request_id: str | None, password_hash: str | None = None
) -> FirstAdmin:
    """Create the organization, the admin and an all-permission token; refuse a second call.

    With ``password_hash`` (argon2id, see coordinator/accounts/passwords.py) the admin can also
    log in with a password.
    """
    now = datetime.now(UTC)
    token = mint_token(API_TOKEN_PREFIX)
    user_id = new_id("usr")
    token_id = new_id("tok")
    if await models.Organization.exists(id=DEFAULT_ORGANIZATION_ID):
        raise Conflict(_ALREADY)
    try:
        async with in_transaction():
            _ = await models.Organization.create(
                id=DEFAULT_ORGANIZATION_ID,
                name="Default",
                slug=DEFAULT_ORGANIZATION_SLUG,
                created_at=now,
            )
            _ = await models.User.create(
                id=user_id,
                organization_id=DEFAULT_ORGANIZATION_ID,
                email=email,
                display_name=display_name,
                role="admin",
                created_at=now,
            )
            # The first admin owns the organization (docs/organizations.md).
            _ = await OrganizationMember.create(
                id=new_id("mem"),
                organization_id=DEFAULT_ORGANIZATION_ID,
                user_id=user_id,
                role="owner",
                joined_at=now,
                updated_at=now,
            )
            if password_hash is not None:
                _ = await account_models.AccountCredential.create(
                    id=user_id,
                    user_id=user_id,
                    password_hash=password_hash,
                    password_changed_at=now,
                    updated_at=now,
                )
            _ = await models.ApiToken.create(
                id=token_id,
                organization_id=DEFAULT_ORGANIZATION_ID,
                user_id=user_id,
                display_name="first admin",
                token_hash=hash_token(token),
                secret_suffix=token[-4:],
                scope={"permissions": ["*"]},
                status="active",
                created_at=now,
            )
            await audit.record(
                actor=None,
                actor_kind="bootstrap",
                actor_id=user_id,
                organization_id=DEFAULT_ORGANIZATION_ID,
                event_type="bootstrap.first-admin-created",
                aggregate_type="user",
                aggregate_id=user_id,
                payload={
                    "email": email,
                    "apiTokenId": token_id,
                    "localPassword": password_hash is not None,
                },
                request_id=request_id,
            )
    except IntegrityError as exc:
        # Two racing bootstrap calls: the loser hits the fixed organization id.
        raise Conflict(_ALREADY) from exc
    return FirstAdmin(user_id, token, token_id)
