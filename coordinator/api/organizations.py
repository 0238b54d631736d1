"""Organizations: current context and switching, profile, members, roles, grants, owner transfer
(invitations: ``coordinator.api.organization_invitations``)."""

from collections.abc import Awaitable, Callable
from typing import Final

from coordinator.accounts import profile as account_profile
from coordinator.api.organization_schemas import (
    ContextUser,
    CreateOrganizationRequest,
    CurrentContext,
    DeleteOrganizationRequest,
    Member,
    MemberList,
    MemberRemoved,
    OrganizationDeleted,
    OrganizationPermissions,
    OrganizationProfile,
    OrganizationRef,
    OwnerTransferred,
    OwnerTransferRequest,
    PageQuery,
    ProjectGrantsRequest,
    RemoveMemberRequest,
    RoleRequest,
    SwitchRequest,
    UpdateOrganizationRequest,
)
from coordinator.api.routing import Call, route
from coordinator.api.schemas import LoginMethod
from coordinator.auth import Principal, authenticate
from coordinator.db import models
from coordinator.db.organization_models import OrganizationMember
from coordinator.organizations import context, members
from coordinator.terminals import TERMINALS_KEY
from coordinator.token_streams import TOKEN_STREAMS_KEY
from coordinator.tokens.api_tokens import Access
from shared.errors import InvalidRequest

TAG: Final = "organizations"
ORG_PATH: Final = "/organizations/{organizationId}"


def access_of(call: Call) -> Access:
    return Access(call.request.app[TERMINALS_KEY], call.request.app[TOKEN_STREAMS_KEY])


def _permissions(actor: Principal, role: str | None) -> OrganizationPermissions:
    manage = role is not None and actor.allows("organization-members:write")
    return OrganizationPermissions(
        can_invite_members=manage,
        can_list_members=actor.allows("organizations:read"),
        can_manage_deploy_tokens=actor.allows("deploy-tokens:write"),
        can_remove_members=manage,
        can_transfer_ownership=manage and role == "owner",
        can_update_member_roles=manage,
    )


def _ref(organization: models.Organization, role: str | None) -> OrganizationRef:
    return OrganizationRef(
        organization_id=organization.id,
        name=organization.name,
        slug=organization.slug,
        role=role,  # type: ignore[arg-type]
    )


async def _context(actor: Principal) -> CurrentContext:
    found = await context.current(actor)
    user = found.user
    configured = await account_profile.local_password_configured()
    return CurrentContext(
        user=ContextUser(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            avatar_url=found.avatar_url,
        )
        if user
        else None,
        current_organization=_ref(found.organization, found.role),
        organizations=[_ref(m.organization, m.role) for m in found.organizations],
        login_methods=[
            LoginMethod(key="api-token", configured=True, enabled=True),
            LoginMethod(key="local-password", configured=configured, enabled=True),
        ],
        permissions=_permissions(actor, found.role),
    )


def member_answer(view: members.MemberView) -> Member:
    return Member(
        member_id=view.row.id,
        user_id=view.user.id,
        role=view.row.role,  # type: ignore[arg-type]
        joined_at=view.row.joined_at,
        avatar_url=view.avatar_url,
        display_name=view.user.display_name,
        email=view.user.email,
        status="active",
        project_roles=view.row.project_roles,  # type: ignore[arg-type]
    )


def _profile(
    actor: Principal, organization: models.Organization, role: str | None
) -> OrganizationProfile:
    return OrganizationProfile(
        organization_id=organization.id,
        name=organization.name,
        slug=organization.slug,
        role=role,  # type: ignore[arg-type]
        permissions=_permissions(actor, role),
        logo_url=organization.logo_url,
        created_at=organization.created_at,
        updated_at=organization.updated_at or organization.created_at,
    )


async def _change_member(
    call: Call, change: Callable[..., Awaitable[OrganizationMember]], **values: object
) -> Member:
    """Apply ``change`` (a ``members`` function taking the caller, the organization and member
    ids, ``values``, its access registry and the request id) to the member the path names, and
    answer the member as it is now."""
    row = await change(
        call.actor,
        call.path["organizationId"],
        call.path["memberId"],
        access=access_of(call),
        request_id=call.request_id,
        **values,
    )
    return member_answer(await members.view(row))


@route(
    "GET",
    "/organizations/current-context",
    summary="Show who the caller is, the organization it acts in, its role and its others",
    tag=TAG,
    permission="account:read",
    response=CurrentContext,
)
async def current_context(call: Call) -> CurrentContext:
    """The caller's current context."""
    return await _context(call.actor)


@route(
    "POST",
    "/organizations/current-context/switch",
    summary="Act in another organization the caller belongs to (its session's streams end)",
    tag=TAG,
    permission="account:write",
    body=SwitchRequest,
    response=CurrentContext,
    errors=(401,),
)
async def switch_context(call: Call) -> CurrentContext:
    """Point the caller's session at ``organizationId``; answer the new context."""
    body = call.body(SwitchRequest)
    await context.switch(call.actor, body.organization_id, access_of(call), call.request_id)
    # The principal was resolved before the switch: resolve it again for the new context.
    return await _context(await authenticate(call.request))


@route(
    "POST",
    "/organizations",
    summary="Create an organization owned by the caller",
    tag=TAG,
    permission="account:write",
    body=CreateOrganizationRequest,
    response=OrganizationProfile,
    status=201,
    errors=(409,),
)
async def create_organization(call: Call) -> OrganizationProfile:
    """A new organization; the caller is its first owner (switch to act in it)."""
    body = call.body(CreateOrganizationRequest)
    row = await context.create(call.actor, body.name, body.slug, call.request_id)
    owner = _permissions(call.actor, "owner")
    return _profile(call.actor, row, "owner").model_copy(update={"permissions": owner})


@route(
    "GET",
    ORG_PATH + "/profile",
    summary="Show the organization's profile and the caller's role in it",
    tag=TAG,
    permission="organizations:read",
    response=OrganizationProfile,
)
async def show_profile(call: Call) -> OrganizationProfile:
    """The profile of the organization the caller acts in (any other looks missing)."""
    row, role = await context.profile(call.actor, call.path["organizationId"])
    return _profile(call.actor, row, role)


@route(
    "POST",
    ORG_PATH + "/profile",
    summary="Rename the organization, change its slug or logo",
    tag=TAG,
    permission="organizations:write",
    body=UpdateOrganizationRequest,
    response=OrganizationProfile,
    errors=(409,),
)
async def update_profile(call: Call) -> OrganizationProfile:
    """Apply the given fields."""
    body = call.body(UpdateOrganizationRequest)
    changes = body.model_dump(by_alias=True, exclude_unset=True)
    row = await context.update(call.actor, call.path["organizationId"], changes, call.request_id)
    return _profile(call.actor, row, await members.acting_role(call.actor))


@route(
    "DELETE",
    ORG_PATH,
    summary="Delete the organization (owners; blocked while servers or resources exist)",
    tag=TAG,
    permission="organizations:write",
    body=DeleteOrganizationRequest,
    response=OrganizationDeleted,
    errors=(409,),
)
async def delete_organization(call: Call) -> OrganizationDeleted:
    """Delete after the confirmation names the organization."""
    organization_id = call.path["organizationId"]
    body = call.body(DeleteOrganizationRequest)
    if body.confirmation.organization_id != organization_id:
        raise InvalidRequest(
            "confirmation.organizationId must repeat the organization's id",
            details={"problems": [{"field": "confirmation.organizationId", "message": "mismatch"}]},
        )
    deleted_at = await context.delete(call.actor, organization_id, access_of(call), call.request_id)
    return OrganizationDeleted(organization_id=organization_id, deleted_at=deleted_at)


@route(
    "GET",
    ORG_PATH + "/members",
    summary="List the organization's members",
    tag=TAG,
    permission="organizations:read",
    query=PageQuery,
    response=MemberList,
)
async def list_members(call: Call) -> MemberList:
    """One page of members."""
    query = call.query(PageQuery)
    found, cursor = await members.page(
        call.actor, call.path["organizationId"], query.cursor, query.limit
    )
    return MemberList(items=[member_answer(v) for v in found], next_cursor=cursor)


@route(
    "POST",
    ORG_PATH + "/members/{memberId}/role",
    summary="Change a member's role (never above one's own; a downgrade applies at once)",
    tag=TAG,
    permission="organization-members:write",
    body=RoleRequest,
    response=Member,
    errors=(409,),
)
async def change_role(call: Call) -> Member:
    """Set the member's role."""
    body = call.body(RoleRequest)
    return await _change_member(call, members.change_role, role=body.role)


@route(
    "POST",
    ORG_PATH + "/members/{memberId}/project-grants",
    summary="Limit a member or viewer to some projects, each with its own role (null: all)",
    tag=TAG,
    permission="organization-members:write",
    body=ProjectGrantsRequest,
    response=Member,
    errors=(409,),
)
async def set_project_grants(call: Call) -> Member:
    """Replace the member's per-project grants."""
    body = call.body(ProjectGrantsRequest)
    grants = dict(body.project_roles) if body.project_roles is not None else None
    return await _change_member(call, members.set_project_grants, project_roles=grants)


@route(
    "DELETE",
    ORG_PATH + "/members/{memberId}",
    summary="Remove a member (never the last owner); its streams and terminals end at once",
    tag=TAG,
    permission="organization-members:write",
    body=RemoveMemberRequest,
    response=MemberRemoved,
    errors=(409,),
)
async def remove_member(call: Call) -> MemberRemoved:
    """Remove the member."""
    organization_id = call.path["organizationId"]
    removed_at = await members.remove(
        call.actor, organization_id, call.path["memberId"], access_of(call), call.request_id
    )
    return MemberRemoved(
        member_id=call.path["memberId"], organization_id=organization_id, removed_at=removed_at
    )


@route(
    "POST",
    ORG_PATH + "/owner-transfer",
    summary="Hand the caller's ownership to another member (the caller becomes an admin)",
    tag=TAG,
    permission="organization-members:write",
    body=OwnerTransferRequest,
    response=OwnerTransferred,
    errors=(409,),
)
async def transfer_ownership(call: Call) -> OwnerTransferred:
    """Transfer ownership."""
    body = call.body(OwnerTransferRequest)
    source, target, when = await members.transfer_ownership(
        call.actor,
        call.path["organizationId"],
        body.from_member_id,
        body.to_member_id,
        access_of(call),
        call.request_id,
    )
    return OwnerTransferred(
        from_member=member_answer(await members.view(source)),
        to_member=member_answer(await members.view(target)),
        transferred_at=when,
    )
