"""The organization one acts in: current context, switching, creating, the profile, deleting."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.accounts import login, sessions
from coordinator.auth import Principal
from coordinator.db import account_models, models
from coordinator.db.organization_models import OrganizationInvitation, OrganizationMember
from coordinator.ids import new_id
from coordinator.organizations.members import (
    acting_role,
    check_organization,
    cut_off,
    revoke_orphan_tokens,
)
from coordinator.tokens.api_tokens import Access
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound

_SLUG: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Membership:
    """An organization with the caller's role in it."""

    organization: models.Organization
    role: str


async def memberships(user_id: str) -> list[Membership]:
    """The (live) organizations ``user_id`` belongs to, oldest membership first."""
    rows = await OrganizationMember.filter(
        user_id=user_id, organization__deleted_at__isnull=True
    ).order_by("id")
    found: list[Membership] = []
    for row in rows:
        organization = await models.Organization.get(id=row.organization_id)  # type: ignore[attr-defined]
        found.append(Membership(organization, row.role))
    return found


async def live_organization(organization_id: str) -> models.Organization:
    """The organization, unless deleted (404)."""
    row = await models.Organization.get_or_none(id=organization_id, deleted_at__isnull=True)
    if row is None:
        raise NotFound("no such organization")
    return row


async def switch(
    actor: Principal, organization_id: str, access: Access, request_id: str | None
) -> None:
    """Point the caller's session at another organization it belongs to (others look missing).

    The session's open streams and terminals end: each was authorized in the old one.
    """
    session_id = login.session_of(actor)
    _ = await live_organization(organization_id)
    role = await OrganizationMember.get_or_none(
        organization_id=organization_id, user_id=actor.actor_id
    )
    if role is None:
        raise NotFound("no such organization")
    if organization_id == actor.organization_id:
        return
    async with in_transaction():
        await account_models.AccountSession.filter(id=session_id).update(
            organization_id=organization_id
        )
        await audit.record(
            actor=actor,
            organization_id=organization_id,
            event_type="organization.context-switched",
            aggregate_type="user",
            aggregate_id=actor.actor_id,
            payload={
                "sessionId": session_id,
                "fromOrganizationId": actor.organization_id,
                "role": role.role,
            },
            request_id=request_id,
        )
    await sessions.end_access(access, [session_id], actor, "organization-switched", request_id)


def _check_slug(slug: str) -> None:
    if not _SLUG.fullmatch(slug):
        raise InvalidRequest(
            "slug must be lowercase letters and digits separated by single hyphens",
            details={"problems": [{"field": "slug", "message": "invalid slug"}]},
        )


async def create(
    actor: Principal, name: str, slug: str, request_id: str | None
) -> models.Organization:
    """A new organization with the calling user as its owner."""
    user = await models.User.get_or_none(id=actor.actor_id)
    if user is None:
        raise Forbidden("only a user (its session or its API token) can create an organization")
    _check_slug(slug)
    now = datetime.now(UTC)
    try:
        async with in_transaction():
            row = await models.Organization.create(
                id=new_id("org"), name=name, slug=slug, created_at=now, updated_at=now
            )
            _ = await OrganizationMember.create(
                id=new_id("mem"),
                organization_id=row.id,
                user_id=user.id,
                role="owner",
                joined_at=now,
                updated_at=now,
            )
            await audit.record(
                actor=actor,
                organization_id=row.id,
                event_type="organization.created",
                aggregate_type="organization",
                aggregate_id=row.id,
                payload={"name": name, "slug": slug, "role": "owner"},
                request_id=request_id,
            )
    except IntegrityError as exc:
        raise Conflict(f"an organization with slug {slug!r} exists") from exc
    return row


async def update(
    actor: Principal,
    organization_id: str,
    changes: dict[str, str | None],
    request_id: str | None,
) -> models.Organization:
    """Rename, re-slug or set the logo of the caller's organization."""
    check_organization(actor, organization_id)
    row = await live_organization(organization_id)
    if changes.get("slug") is not None:
        _check_slug(str(changes["slug"]))
    logo = changes.get("logoUrl")
    if logo and not str(logo).startswith(("https://", "http://")):
        # Shown as an image by the console: no javascript: or data: URLs.
        raise InvalidRequest(
            "logoUrl must be an http(s) URL",
            details={"problems": [{"field": "logoUrl", "message": "not an http(s) URL"}]},
        )
    fields = {
        column: changes[key]
        for key, column in (("name", "name"), ("slug", "slug"), ("logoUrl", "logo_url"))
        if key in changes and (changes[key] is not None or key == "logoUrl")
    }
    if not fields:
        return row
    try:
        async with in_transaction():
            await models.Organization.filter(id=row.id).update(
                **fields, updated_at=datetime.now(UTC)
            )
            await audit.record(
                actor=actor,
                event_type="organization.profile-updated",
                aggregate_type="organization",
                aggregate_id=row.id,
                payload={"changed": sorted(changes)},
                request_id=request_id,
            )
    except IntegrityError as exc:
        raise Conflict("another organization has this slug") from exc
    return await models.Organization.get(id=row.id)


async def delete(
    actor: Principal, organization_id: str, access: Access, request_id: str | None
) -> datetime:
    """Delete the caller's organization (owners only; blocked while servers or resources
    exist). Its memberships, pending invitations and API tokens end with it."""
    check_organization(actor, organization_id)
    _ = await live_organization(organization_id)
    if await acting_role(actor) != "owner":
        raise Forbidden("only an owner can delete the organization")
    blockers = [
        {"kind": "server", "relatedEntityId": server_id}
        for server_id in await models.Server.filter(organization_id=organization_id).values_list(
            "id", flat=True
        )
    ] + [
        {"kind": "resource", "relatedEntityId": resource_id}
        for resource_id in await models.Resource.filter(
            project__organization_id=organization_id
        ).values_list("id", flat=True)
    ]
    if blockers:
        raise Conflict(
            "the organization still has servers or resources; delete them first",
            details={"blockers": blockers[:50]},
        )
    now = datetime.now(UTC)
    user_ids = [
        str(u)
        for u in await OrganizationMember.filter(organization_id=organization_id).values_list(
            "user_id", flat=True
        )
    ]
    async with in_transaction():
        await models.Organization.filter(id=organization_id).update(deleted_at=now, updated_at=now)
        await OrganizationMember.filter(organization_id=organization_id).delete()
        await OrganizationInvitation.filter(
            organization_id=organization_id, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        await audit.record(
            actor=actor,
            event_type="organization.deleted",
            aggregate_type="organization",
            aggregate_id=organization_id,
            payload={"memberCount": len(user_ids)},
            request_id=request_id,
        )
    for user_id in user_ids:
        await cut_off(access, organization_id, user_id, None, actor, request_id)
    # Tokens of no member (their creator's account is gone) end with the organization too.
    await revoke_orphan_tokens(access, organization_id, actor, request_id)
    return now


@dataclass(frozen=True)
class Current:
    """Who the caller is, where it acts, with which role, and where else it may."""

    user: models.User | None
    avatar_url: str | None
    organization: models.Organization
    role: str | None
    organizations: list[Membership]


async def current(actor: Principal) -> Current:
    """The caller's current context (an API token's is its organization and creator); a
    deleted organization still shows, with no role, so its sessions can switch away."""
    organization = await models.Organization.get(id=actor.organization_id)
    user = await models.User.get_or_none(id=actor.actor_id)
    credential = (
        await account_models.AccountCredential.get_or_none(user_id=user.id) if user else None
    )
    found = await memberships(user.id) if user else []
    if actor.kind != "user-session":
        # A token is bound to its one organization.
        found = [m for m in found if m.organization.id == organization.id]
    return Current(
        user=user,
        avatar_url=credential.avatar_url if credential else None,
        organization=organization,
        role=await acting_role(actor),
        organizations=found,
    )


async def profile(actor: Principal, organization_id: str) -> tuple[models.Organization, str | None]:
    """The caller's organization and its role there."""
    check_organization(actor, organization_id)
    return await live_organization(organization_id), await acting_role(actor)
