"""Request and response models of the ``/organizations`` routes (docs/organizations.md)."""

from datetime import datetime
from typing import Literal

from pydantic import Field
from pydantic.config import JsonDict

from coordinator.api.schemas import ApiRequest, LoginMethod
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

_SECRET: JsonDict = {"writeOnly": True}

RoleName = Literal["owner", "admin", "member", "viewer"]
InvitationStatus = Literal["accepted", "expired", "pending", "revoked"]


class ContextUser(WireModel):
    """The caller as the current context shows it."""

    user_id: str
    email: str
    display_name: str
    avatar_url: str | None


class OrganizationRef(WireModel):
    """An organization with the caller's role in it."""

    organization_id: str
    name: str
    slug: str
    role: RoleName | None


class OrganizationPermissions(WireModel):
    """What the caller may do to the organization's membership (drives the console's buttons)."""

    can_invite_members: bool
    can_list_members: bool
    can_manage_deploy_tokens: bool
    can_remove_members: bool
    can_transfer_ownership: bool
    can_update_member_roles: bool


class CurrentContext(WireModel):
    """``GET /organizations/current-context`` and ``POST .../switch``."""

    user: ContextUser | None
    current_organization: OrganizationRef
    organizations: list[OrganizationRef]
    login_methods: list[LoginMethod]
    permissions: OrganizationPermissions


class SwitchRequest(ApiRequest):
    """``POST /organizations/current-context/switch``."""

    organization_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)


class CreateOrganizationRequest(ApiRequest):
    """``POST /organizations`` (Berth): a new organization owned by the caller."""

    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=1, max_length=100)


class OrganizationProfile(WireModel):
    """``GET``/``POST /organizations/{organizationId}/profile``."""

    organization_id: str
    name: str
    slug: str
    role: RoleName | None
    permissions: OrganizationPermissions
    logo_url: str | None
    created_at: datetime
    updated_at: datetime


class UpdateOrganizationRequest(ApiRequest):
    """``POST /organizations/{organizationId}/profile``: any of name, slug, logo."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: str | None = Field(default=None, min_length=1, max_length=100)
    logo_url: str | None = Field(default=None, max_length=500)


class OrganizationConfirmation(WireModel):
    """Names the organization being deleted."""

    organization_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH)


class DeleteOrganizationRequest(ApiRequest):
    """``DELETE /organizations/{organizationId}``."""

    confirmation: OrganizationConfirmation


class OrganizationDeleted(WireModel):
    """``DELETE /organizations/{organizationId}``'s answer."""

    organization_id: str
    deleted_at: datetime


class Member(WireModel):
    """A membership (Appaloft's member shape)."""

    member_id: str
    user_id: str
    role: RoleName
    joined_at: datetime
    avatar_url: str | None
    display_name: str
    email: str
    status: Literal["active"]
    # Berth: per-project grants {projectId: role} (None: every project with the role's rights).
    project_roles: dict[str, Literal["member", "viewer"]] | None = None


class MemberList(WireModel):
    """``GET /organizations/{organizationId}/members``."""

    items: list[Member]
    next_cursor: str | None


class PageQuery(ApiRequest):
    """Cursor pagination (``0 < limit <= 250``)."""

    limit: int = Field(default=100, gt=0, le=250)
    cursor: str | None = Field(default=None, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)


class InvitationsQuery(PageQuery):
    """``GET /organizations/{organizationId}/invitations``."""

    status: InvitationStatus | None = None


class RoleRequest(ApiRequest):
    """``POST /organizations/{organizationId}/members/{memberId}/role``."""

    role: RoleName


class RemoveMemberRequest(ApiRequest):
    """``DELETE /organizations/{organizationId}/members/{memberId}`` (an empty body)."""


class MemberRemoved(WireModel):
    """A removal's answer."""

    member_id: str
    organization_id: str
    removed_at: datetime


class OwnerTransferRequest(ApiRequest):
    """``POST /organizations/{organizationId}/owner-transfer``."""

    from_member_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
    to_member_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)


class OwnerTransferred(WireModel):
    """An owner transfer's answer: both memberships after it."""

    from_member: Member
    to_member: Member
    transferred_at: datetime


class Inviter(WireModel):
    """Who sent an invitation."""

    user_id: str
    display_name: str
    email: str


class Invitation(WireModel):
    """An invitation (Appaloft's shape); ``token`` only in the create answer, shown once."""

    invitation_id: str
    organization_id: str
    email: str
    role: RoleName
    status: InvitationStatus
    created_at: datetime
    expires_at: datetime
    inviter: Inviter | None
    token: str | None = None
    # Create only (Berth): whether the invitation went out by e-mail (the organization's
    # e-mail notification channel), and why not.
    email_status: Literal["sent", "not-configured", "failed"] | None = None
    email_error: str | None = None
    # Create only (Berth): the console's accept page with the secret in the fragment (never
    # sent to a server by the browser), on the coordinator's public address.
    accept_url: str | None = None


class InvitationList(WireModel):
    """``GET /organizations/{organizationId}/invitations``."""

    items: list[Invitation]
    next_cursor: str | None


class InviteRequest(ApiRequest):
    """``POST /organizations/{organizationId}/invitations``."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    role: Literal["admin", "member", "viewer"]


class AcceptInvitationRequest(ApiRequest):
    """``POST /organization-invitations/accept`` (Berth): the link's secret, and for a new
    account its display name and password."""

    token: str = Field(min_length=1, max_length=200, json_schema_extra=_SECRET)
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    password: str | None = Field(default=None, max_length=256, json_schema_extra=_SECRET)


class InvitationAccepted(WireModel):
    """The membership an accepted invitation made."""

    organization_id: str
    member: Member


class ProjectGrantsRequest(ApiRequest):
    """``POST /organizations/{organizationId}/members/{memberId}/project-grants`` (Berth)."""

    project_roles: dict[str, Literal["member", "viewer"]] | None = Field(
        default=None, max_length=1000
    )
