"""Accounts' credentials and login sessions (issue 17): passwords, TOTP, recovery codes.

A session names its organization (today always the default one) so that organization switching
and per-organization roles can be added without reshaping the table.
"""

from tortoise import fields
from tortoise.models import Model

from coordinator.db.models import Organization, User


class AccountCredential(Model):
    """Local-password login and second factor of one user (a row once a password is set)."""

    id = fields.CharField(primary_key=True, max_length=40)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="credential", on_delete=fields.CASCADE
    )
    # argon2id PHC string (parameters and salt inside): verifiable after a parameter change.
    password_hash = fields.CharField(max_length=255)
    password_changed_at = fields.DatetimeField()
    # TOTP secrets are encrypted with the coordinator's keyring (coordinator/secrets.py).
    totp_secret = fields.TextField(null=True)
    totp_enabled_at = fields.DatetimeField(null=True)
    # Enrolment in progress: shown once, active only after a code confirms it.
    totp_pending_secret = fields.TextField(null=True)
    # The last accepted TOTP time step: the same (or an earlier) code is a replay.
    totp_last_step = fields.BigIntField(null=True)
    avatar_url = fields.CharField(max_length=500, null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "account_credentials"


class AccountSession(Model):
    """A login session: bearer secret (stored as SHA-256 only) and CSRF token of a browser."""

    id = fields.CharField(primary_key=True, max_length=40)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="account_sessions", on_delete=fields.CASCADE
    )
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="account_sessions", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    csrf_hash = fields.CharField(max_length=64)
    client_kind = fields.CharField(max_length=16, default="web")
    display_name = fields.CharField(max_length=200)
    ip_address = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()
    last_active_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "account_sessions"


class RecoveryCode(Model):
    """A one-time second-factor code, stored as its SHA-256 only (the codes carry 80 bits)."""

    id = fields.CharField(primary_key=True, max_length=40)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="recovery_codes", on_delete=fields.CASCADE
    )
    code_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "account_recovery_codes"
