"""Memberships: who acts with which role, role changes, removal, owner transfer, and their effect
on the member's open sessions, streams, terminals and API tokens."""

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.accounts.sessions import end_access
from coordinator.auth import Principal
from coordinator.db import account_models, models
from coordinator.db.organization_models import OrganizationMember
from coordinator.organizations.roles import GRANTABLE, bounds_of, rank
from coordinator.paging import page_after
from coordinator.terminals.token_end import end_token
from coordinator.token_scope import Bounds, within
from coordinator.tokens.api_tokens import Access
from shared.errors import Conflict, Forbidden, NotFound


@dataclass(frozen=True)
class MemberView:
    """A membership with its user's public profile (the Appaloft member shape's facts)."""

    row: OrganizationMember
    user: models.User
    avatar_url: str | None


def check_organization(actor: Principal, organization_id: str) -> None:
    """One acts in one organization at a time: any other id looks missing (switch first)."""
    if organization_id != actor.organization_id:
        raise NotFound("no such organization")


async def role_of(organization_id: str, user_id: str) -> str | None:
    """``user_id``'s role in ``organization_id`` (None: no member)."""
    row = await OrganizationMember.get_or_none(organization_id=organization_id, user_id=user_id)
    return row.role if row else None


async def acting_role(actor: Principal) -> str | None:
    """The caller's role in its organization: its own, or its API token's creator's."""
    return await role_of(actor.organization_id, actor.actor_id)


async def _view(row: OrganizationMember) -> MemberView:
    user = await models.User.get(id=row.user_id)  # type: ignore[attr-defined]
    credential = await account_models.AccountCredential.get_or_none(user_id=user.id)
    return MemberView(row, user, credential.avatar_url if credential else None)


async def get(actor: Principal, organization_id: str, member_id: str) -> OrganizationMember:
    """A membership of the caller's organization, else 404."""
    check_organization(actor, organization_id)
    row = await OrganizationMember.get_or_none(id=member_id, organization_id=organization_id)
    if row is None:
        raise NotFound("no such member")
    return row


async def page(
    actor: Principal, organization_id: str, cursor: str | None, limit: int
) -> tuple[list[MemberView], str | None]:
    """The organization's members, oldest membership id first, and the next page's cursor."""
    check_organization(actor, organization_id)
    found = await page_after(
        OrganizationMember.filter(organization_id=organization_id), cursor, limit
    )
    return [await _view(row) for row in found.items], found.next_cursor


async def view(row: OrganizationMember) -> MemberView:
    """One membership with its user's profile."""
    return await _view(row)


async def _require_outranks(actor: Principal, target_role: str, new_role: str | None) -> str:
    """The caller may only act on members at or below its own role, never grant above it, and
    only owners touch owners. Its role."""
    mine = await acting_role(actor)
    if mine is None:
        raise Forbidden("only members of this organization manage its members")
    touches_owner = "owner" in (target_role, new_role)
    if touches_owner and mine != "owner":
        raise Forbidden(
            "only an owner can make or change an owner",
            details={"actorRole": mine, "memberRole": target_role},
        )
    if rank(target_role) > rank(mine) or (new_role is not None and rank(new_role) > rank(mine)):
        raise Forbidden(
            "a role above one's own cannot be granted or changed",
            details={"actorRole": mine, "memberRole": target_role},
        )
    return mine


async def _refuse_last_owner(row: OrganizationMember) -> None:
    if row.role != "owner":
        return
    owners = await OrganizationMember.filter(
        organization_id=row.organization_id,  # type: ignore[attr-defined]
        role="owner",
    ).count()
    if owners <= 1:
        raise Conflict(
            "the organization's last owner cannot be removed or downgraded; transfer "
            "ownership first",
            details={"blockers": [{"kind": "last-owner", "relatedEntityId": row.id}]},
        )


async def cut_off(
    access: Access,
    organization_id: str,
    user_id: str,
    role: str | None,
    actor: Principal | None,
    request_id: str | None,
    project_roles: dict[str, str] | None = None,
) -> None:
    """The user's rights in the organization shrank (``role`` None: gone). Its sessions there
    lose their open streams and terminals now (each was authorized when it opened; requests
    re-check on every call), and its API tokens there that now reach beyond the role are
    revoked: a token never outlives its creator's rights."""
    sessions = await account_models.AccountSession.filter(
        organization_id=organization_id, user_id=user_id, revoked_at__isnull=True
    ).values_list("id", flat=True)
    await end_access(access, [str(s) for s in sessions], actor, "membership-changed", request_id)
    allowed = bounds_of(role, project_roles)
    tokens = await models.ApiToken.filter(
        Q(user_id=user_id) | Q(created_by_user_id=user_id),
        organization_id=organization_id,
        status="active",
    )
    now = datetime.now(UTC)
    for token in tokens:
        if role is not None and within(Bounds.of(token.scope, token.expires_at), allowed):
            continue
        async with in_transaction():
            await models.ApiToken.filter(id=token.id).update(status="revoked", revoked_at=now)
            await audit.record(
                actor=actor,
                organization_id=organization_id,
                event_type="deploy-token.revoked",
                aggregate_type="deploy-token",
                aggregate_id=token.id,
                payload={"reason": "creator-rights-reduced", "userId": user_id, "role": role},
                request_id=request_id,
            )
        await end_token(
            access.terminals, token.id, reason="token-revoked", actor=actor, request_id=request_id
        )
        access.streams.end(token.id)


async def revoke_orphan_tokens(
    access: Access, organization_id: str, actor: Principal | None, request_id: str | None
) -> None:
    """Revoke the organization's still-active tokens (its deletion's last step)."""
    ids = [
        str(i)
        for i in await models.ApiToken.filter(
            organization_id=organization_id, status="active"
        ).values_list("id", flat=True)
    ]
    if not ids:
        return
    await models.ApiToken.filter(id__in=ids).update(status="revoked", revoked_at=datetime.now(UTC))
    await end_access(access, ids, actor, "organization-deleted", request_id)


async def change_role(
    actor: Principal,
    organization_id: str,
    member_id: str,
    role: str,
    access: Access,
    request_id: str | None,
) -> OrganizationMember:
    """Set a member's role within the caller's rights; a downgrade applies at once."""
    row = await get(actor, organization_id, member_id)
    mine = await _require_outranks(actor, row.role, role)
    if row.role == role:
        return row
    if rank(role) < rank(row.role):
        await _refuse_last_owner(row)
    before = row.role
    async with in_transaction():
        await OrganizationMember.filter(id=row.id).update(role=role, updated_at=datetime.now(UTC))
        await audit.record(
            actor=actor,
            event_type="organization.member-role-changed",
            aggregate_type="organization-member",
            aggregate_id=row.id,
            payload={
                "userId": row.user_id,  # type: ignore[attr-defined]
                "fromRole": before,
                "toRole": role,
                "actorRole": mine,
            },
            request_id=request_id,
        )
    if rank(role) < rank(before):
        await cut_off(
            access,
            organization_id,
            row.user_id,  # type: ignore[attr-defined]
            role,
            actor,
            request_id,
            row.project_roles,
        )
    return await OrganizationMember.get(id=row.id)


async def remove(
    actor: Principal, organization_id: str, member_id: str, access: Access, request_id: str | None
) -> datetime:
    """Remove a member (never the last owner); its access there ends at once. When."""
    row = await get(actor, organization_id, member_id)
    mine = await _require_outranks(actor, row.role, None)
    await _refuse_last_owner(row)
    now = datetime.now(UTC)
    async with in_transaction():
        await OrganizationMember.filter(id=row.id).delete()
        await audit.record(
            actor=actor,
            event_type="organization.member-removed",
            aggregate_type="organization-member",
            aggregate_id=row.id,
            payload={"userId": row.user_id, "role": row.role, "actorRole": mine},  # type: ignore[attr-defined]
            request_id=request_id,
        )
    await cut_off(access, organization_id, row.user_id, None, actor, request_id)  # type: ignore[attr-defined]
    return now


async def transfer_ownership(
    actor: Principal,
    organization_id: str,
    from_member_id: str,
    to_member_id: str,
    access: Access,
    request_id: str | None,
) -> tuple[OrganizationMember, OrganizationMember, datetime]:
    """An owner hands its ownership to another member and becomes an admin."""
    source = await get(actor, organization_id, from_member_id)
    target = await get(actor, organization_id, to_member_id)
    if source.user_id != actor.actor_id or source.role != "owner":  # type: ignore[attr-defined]
        raise Forbidden(
            "only an owner can transfer its own ownership (fromMemberId must be the caller's "
            "owner membership)"
        )
    if source.id == target.id:
        raise Conflict("fromMemberId and toMemberId name the same member")
    now = datetime.now(UTC)
    async with in_transaction():
        await OrganizationMember.filter(id=target.id).update(role="owner", updated_at=now)
        await OrganizationMember.filter(id=source.id).update(role="admin", updated_at=now)
        await audit.record(
            actor=actor,
            event_type="organization.owner-transferred",
            aggregate_type="organization",
            aggregate_id=organization_id,
            payload={
                "fromMemberId": source.id,
                "toMemberId": target.id,
                "toUserId": target.user_id,  # type: ignore[attr-defined]
                "toPreviousRole": target.role,
            },
            request_id=request_id,
        )
    return (
        await OrganizationMember.get(id=source.id),
        await OrganizationMember.get(id=target.id),
        now,
    )


async def set_project_grants(
    actor: Principal,
    organization_id: str,
    member_id: str,
    project_roles: dict[str, str] | None,
    access: Access,
    request_id: str | None,
) -> OrganizationMember:
    """Limit a member or viewer to some projects, each with a role of at most its own (None:
    every project again). Applies to its open streams and tokens at once."""
    row = await get(actor, organization_id, member_id)
    mine = await _require_outranks(actor, row.role, None)
    if row.role not in GRANTABLE:
        raise Conflict(
            f"an {row.role} reaches every project; per-project grants are for members and viewers"
        )
    wanted = dict(project_roles) if project_roles else None
    for project_id, role in (wanted or {}).items():
        if rank(role) > rank(row.role):
            raise Forbidden(
                f"a grant cannot exceed the member's role ({row.role})",
                details={"projectId": project_id, "role": role},
            )
    if wanted:
        known = await models.Project.filter(
            organization_id=organization_id, id__in=list(wanted)
        ).values_list("id", flat=True)
        missing = sorted(set(wanted) - {str(k) for k in known})
        if missing:
            raise NotFound("no such project", details={"projectIds": missing})
    async with in_transaction():
        await OrganizationMember.filter(id=row.id).update(
            project_roles=wanted, updated_at=datetime.now(UTC)
        )
        await audit.record(
            actor=actor,
            event_type="organization.member-project-grants-changed",
            aggregate_type="organization-member",
            aggregate_id=row.id,
            payload={
                "userId": row.user_id,  # type: ignore[attr-defined]
                "role": row.role,
                "fromProjectRoles": row.project_roles,
                "toProjectRoles": wanted,
                "actorRole": mine,
            },
            request_id=request_id,
        )
    await cut_off(
        access,
        organization_id,
        row.user_id,  # type: ignore[attr-defined]
        row.role,
        actor,
        request_id,
        wanted,
    )
    return await OrganizationMember.get(id=row.id)
