"""Organization invitations: create (and e-mail), list, revoke, accept."""

from coordinator.accounts import session_store
from coordinator.api.organization_schemas import (
    AcceptInvitationRequest,
    Invitation,
    InvitationAccepted,
    InvitationList,
    InvitationsQuery,
    Inviter,
    InviteRequest,
)
from coordinator.api.organizations import ORG_PATH, TAG, member_answer
from coordinator.api.public_address import public_base_url
from coordinator.api.routing import Call, route
from coordinator.appkeys import SETTINGS_KEY
from coordinator.auth import authenticate
from coordinator.db.organization_models import OrganizationInvitation
from coordinator.organizations import invitations, mail, members
from coordinator.outbound import guard_for


async def _invitation(row: OrganizationInvitation, token: str | None = None) -> Invitation:
    inviter = await invitations.inviter(row)
    return Invitation(
        invitation_id=row.id,
        organization_id=row.organization_id,  # type: ignore[attr-defined]
        email=row.email,
        role=row.role,  # type: ignore[arg-type]
        status=invitations.status_of(row),  # type: ignore[arg-type]
        created_at=row.created_at,
        expires_at=row.expires_at,
        inviter=Inviter(user_id=inviter.id, display_name=inviter.display_name, email=inviter.email)
        if inviter
        else None,
        token=token,
    )


@route(
    "GET",
    ORG_PATH + "/invitations",
    summary="List the organization's invitations",
    tag=TAG,
    permission="organizations:read",
    query=InvitationsQuery,
    response=InvitationList,
)
async def list_invitations(call: Call) -> InvitationList:
    """One page of invitations (their link secrets are never shown again)."""
    query = call.query(InvitationsQuery)
    found = await invitations.page(
        call.actor, call.path["organizationId"], query.status, query.cursor, query.limit
    )
    return InvitationList(
        items=[await _invitation(row) for row in found.items], next_cursor=found.next_cursor
    )


@route(
    "POST",
    ORG_PATH + "/invitations",
    summary="Invite someone by e-mail with a role; the link secret is shown once",
    tag=TAG,
    permission="organization-members:write",
    body=InviteRequest,
    response=Invitation,
    status=201,
    errors=(409,),
)
async def invite(call: Call) -> Invitation:
    """Create an invitation (and e-mail it when the organization has an e-mail channel)."""
    body = call.body(InviteRequest)
    created = await invitations.create(
        call.actor, call.path["organizationId"], body.email, body.role, call.request_id
    )
    app = call.request.app
    accept_url = (
        f"{public_base_url(call.request, app[SETTINGS_KEY])}/console/accept-invitation"
        f"#{created.token}"
    )
    status, error = await mail.send_invitation(
        call.keyring,
        guard_for(app),
        app[SETTINGS_KEY].notification_timeout_seconds,
        created.row,
        created.token,
        accept_url,
    )
    answer = await _invitation(created.row, created.token)
    return answer.model_copy(
        update={"email_status": status, "email_error": error, "accept_url": accept_url}
    )


@route(
    "POST",
    ORG_PATH + "/invitations/{invitationId}/revoke",
    summary="Revoke a pending invitation",
    tag=TAG,
    permission="organization-members:write",
    response=Invitation,
    errors=(409,),
)
async def revoke_invitation(call: Call) -> Invitation:
    """Revoke the invitation; its link stops working."""
    row = await invitations.revoke(
        call.actor, call.path["organizationId"], call.path["invitationId"], call.request_id
    )
    return await _invitation(row)


@route(
    "POST",
    "/organization-invitations/accept",
    summary="Accept an invitation: create the account, or join with the signed-in one",
    tag=TAG,
    permission=None,
    body=AcceptInvitationRequest,
    response=InvitationAccepted,
    status=201,
    errors=(401, 403, 409),
)
async def accept_invitation(call: Call) -> InvitationAccepted:
    """Trade the link secret for a membership (once)."""
    body = call.body(AcceptInvitationRequest)
    request = call.request
    signed_in = "Authorization" in request.headers or bool(
        request.cookies.get(session_store.SESSION_COOKIE)
    )
    actor = await authenticate(request) if signed_in else None
    member = await invitations.accept(
        invitations.Acceptance(
            token=body.token,
            actor=actor,
            display_name=body.display_name,
            password=body.password,
            request_id=call.request_id,
        )
    )
    return InvitationAccepted(
        organization_id=member.organization_id,  # type: ignore[attr-defined]
        member=member_answer(await members.view(member)),
    )
