"""Invitations: a one-time link secret with an expiry (stored as SHA-256 only), listed, revoked,
and accepted by a new account (password under the policy) or a signed-in existing one."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.accounts import passwords
from coordinator.auth import Principal
from coordinator.db import account_models, models
from coordinator.db.organization_models import OrganizationInvitation, OrganizationMember
from coordinator.ids import new_id
from coordinator.organizations.members import acting_role, check_organization
from coordinator.organizations.roles import rank
from coordinator.paging import Page, page_after
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized

INVITATION_TOKEN_PREFIX: Final = "berth_inv_"  # noqa: S105 (a prefix, not a secret)
INVITATION_TTL: Final = timedelta(days=7)


def digest(token: str) -> str:
    """SHA-256 hex of an invitation secret (256 random bits: nothing to brute-force)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def status_of(row: OrganizationInvitation, now: datetime | None = None) -> str:
    """``accepted`` | ``revoked`` | ``expired`` | ``pending``."""
    if row.accepted_at is not None:
        return "accepted"
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at <= (now or datetime.now(UTC)):
        return "expired"
    return "pending"


@dataclass(frozen=True)
class Created:
    """A new invitation and its link secret (shown once)."""

    row: OrganizationInvitation
    token: str


async def create(
    actor: Principal, organization_id: str, email: str, role: str, request_id: str | None
) -> Created:
    """Invite ``email`` with ``role`` (never above the caller's own; owners come by transfer)."""
    check_organization(actor, organization_id)
    mine = await acting_role(actor)
    if mine is None or role == "owner" or rank(role) > rank(mine):
        raise Forbidden(
            "an invitation cannot grant a role above the inviter's own (owners are made by "
            "owner transfer)",
            details={"actorRole": mine, "role": role},
        )
    member = await OrganizationMember.filter(
        organization_id=organization_id, user__email__iexact=email
    ).exists()
    if member:
        raise Conflict(f"{email} is already a member of this organization")
    token = INVITATION_TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    async with in_transaction():
        row = await OrganizationInvitation.create(
            id=new_id("inv"),
            organization_id=organization_id,
            email=email,
            role=role,
            token_hash=digest(token),
            inviter_user_id=actor.actor_id,
            created_at=now,
            expires_at=now + INVITATION_TTL,
        )
        await audit.record(
            actor=actor,
            event_type="organization.invitation-created",
            aggregate_type="organization-invitation",
            aggregate_id=row.id,
            payload={"email": email, "role": role, "actorRole": mine},
            request_id=request_id,
        )
    return Created(row, token)


async def page(
    actor: Principal, organization_id: str, status: str | None, cursor: str | None, limit: int
) -> Page[OrganizationInvitation]:
    """The organization's invitations, oldest first, optionally of one status."""
    check_organization(actor, organization_id)
    rows = OrganizationInvitation.filter(organization_id=organization_id)
    now = datetime.now(UTC)
    if status == "accepted":
        rows = rows.filter(accepted_at__isnull=False)
    elif status == "revoked":
        rows = rows.filter(accepted_at__isnull=True, revoked_at__isnull=False)
    elif status == "expired":
        rows = rows.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__lte=now)
    elif status == "pending":
        rows = rows.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)
    return await page_after(rows, cursor, limit)


async def revoke(
    actor: Principal, organization_id: str, invitation_id: str, request_id: str | None
) -> OrganizationInvitation:
    """Revoke a pending invitation (its link stops working); revoking twice changes nothing."""
    check_organization(actor, organization_id)
    row = await OrganizationInvitation.get_or_none(
        id=invitation_id, organization_id=organization_id
    )
    if row is None:
        raise NotFound("no such invitation")
    if row.revoked_at is not None:
        return row
    if row.accepted_at is not None:
        raise Conflict("the invitation was already accepted; remove the member instead")
    async with in_transaction():
        await OrganizationInvitation.filter(id=row.id).update(revoked_at=datetime.now(UTC))
        await audit.record(
            actor=actor,
            event_type="organization.invitation-revoked",
            aggregate_type="organization-invitation",
            aggregate_id=row.id,
            payload={"email": row.email, "role": row.role},
            request_id=request_id,
        )
    return await OrganizationInvitation.get(id=row.id)


@dataclass(frozen=True)
class Acceptance:
    """What accepting an invitation asks for; ``actor`` is the signed-in caller, if any."""

    token: str
    actor: Principal | None
    display_name: str | None
    password: str | None
    request_id: str | None


async def _pending(token: str) -> OrganizationInvitation:
    row = await OrganizationInvitation.get_or_none(token_hash=digest(token))
    if row is None:
        raise NotFound("no such invitation (the link is wrong)")
    state = status_of(row)
    if state != "pending":
        # Replays and stale links: nothing changes, and the answer says why.
        raise Conflict(f"the invitation is {state}", details={"status": state})
    return row


async def _account(row: OrganizationInvitation, asked: Acceptance) -> tuple[models.User, bool]:
    """The accepting user: the signed-in caller (same e-mail), or a new account. Created?"""
    if asked.actor is not None:
        user = await models.User.get_or_none(id=asked.actor.actor_id)
        if user is None or user.email.casefold() != row.email.casefold():
            raise Forbidden("this invitation is for another e-mail address")
        return user, False
    if await models.User.filter(email__iexact=row.email).exists():
        raise Unauthorized(
            "an account with this e-mail address exists: log in and accept with its session"
        )
    if not asked.password:
        raise InvalidRequest(
            "a new account needs a password",
            details={"problems": [{"field": "password", "message": "required"}]},
        )
    passwords.require_strong(asked.password, row.email)
    now = datetime.now(UTC)
    user = models.User(
        id=new_id("usr"),
        organization_id=row.organization_id,  # type: ignore[attr-defined]
        email=row.email,
        display_name=(asked.display_name or row.email.split("@", 1)[0])[:200],
        role="member",
        created_at=now,
    )
    return user, True


async def accept(asked: Acceptance) -> OrganizationMember:
    """Trade a pending invitation for a membership (once); create the account if needed."""
    row = await _pending(asked.token)
    user, created = await _account(row, asked)
    organization_id: str = row.organization_id  # type: ignore[attr-defined]
    if not created and await OrganizationMember.exists(
        organization_id=organization_id, user_id=user.id
    ):
        raise Conflict("already a member of this organization")
    password_hash = await passwords.hash_password(asked.password or "") if created else None
    now = datetime.now(UTC)
    async with in_transaction():
        # Conditional on still pending: two racing acceptances cannot both succeed.
        taken = await OrganizationInvitation.filter(
            id=row.id, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ).update(accepted_at=now, accepted_user_id=user.id)
        if taken != 1:
            raise Conflict("the invitation is no longer pending")
        if created and password_hash is not None:
            await user.save(force_create=True)
            _ = await account_models.AccountCredential.create(
                id=user.id,
                user_id=user.id,
                password_hash=password_hash,
                password_changed_at=now,
                updated_at=now,
            )
        member = await OrganizationMember.create(
            id=new_id("mem"),
            organization_id=organization_id,
            user_id=user.id,
            role=row.role,
            joined_at=now,
            updated_at=now,
        )
        await audit.record(
            actor=asked.actor,
            actor_kind=None if asked.actor else "user",
            actor_id=None if asked.actor else user.id,
            organization_id=organization_id,
            event_type="organization.invitation-accepted",
            aggregate_type="organization-invitation",
            aggregate_id=row.id,
            payload={
                "memberId": member.id,
                "userId": user.id,
                "role": row.role,
                "accountCreated": created,
            },
            request_id=asked.request_id,
        )
    return member


async def inviter(row: OrganizationInvitation) -> models.User | None:
    """Who sent the invitation (None once that account is gone)."""
    if row.inviter_user_id is None:
        return None
    return await models.User.get_or_none(id=row.inviter_user_id)
