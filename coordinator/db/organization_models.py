"""Organization memberships and invitations (issue 17): who belongs where, with which role."""

from tortoise import fields
from tortoise.models import Model

from coordinator.db.models import Organization, User


class OrganizationMember(Model):
    """One user's membership of one organization, with its role there."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="members", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="memberships", on_delete=fields.CASCADE
    )
    role = fields.CharField(max_length=16)
    # Per-project grants {projectId: "member" | "viewer"}: when set, the member sees only these
    # projects, each with at most its grant's rights (None: every project, with the role's).
    project_roles = fields.JSONField[dict[str, str]](null=True)
    joined_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "organization_members"
        unique_together = (("organization", "user"),)


class OrganizationInvitation(Model):
    """An invitation to join with a role: a one-time link secret, stored as SHA-256 only."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="invitations", on_delete=fields.CASCADE
    )
    email = fields.CharField(max_length=320)
    role = fields.CharField(max_length=16)
    token_hash = fields.CharField(max_length=64, unique=True)
    inviter_user_id = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    accepted_at = fields.DatetimeField(null=True)
    accepted_user_id = fields.CharField(max_length=40, null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "organization_invitations"
