"""The caller's own account: profile, password, TOTP enrolment, and deleting the account."""

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.accounts import passwords, sessions, totp
from coordinator.accounts.login import totp_binding
from coordinator.auth import Principal
from coordinator.db import account_models, models
from coordinator.db.organization_models import OrganizationMember
from coordinator.ids import new_id
from coordinator.secrets import Keyring
from coordinator.tokens.api_tokens import Access
from shared.errors import Conflict, Forbidden, InvalidRequest, Unauthorized


@dataclass(frozen=True)
class Account:
    """A user and its credential row (None before a password is set)."""

    user: models.User
    credential: account_models.AccountCredential | None


async def of(actor: Principal) -> Account:
    """The caller's account; an API token that belongs to no user cannot use these routes."""
    user = await models.User.get_or_none(id=actor.actor_id)
    if user is None:
        raise Forbidden("this credential belongs to no user account")
    credential = await account_models.AccountCredential.get_or_none(user_id=user.id)
    return Account(user, credential)


async def local_password_configured() -> bool:
    """Whether any account can log in with a password (the bootstrap status reports it)."""
    return await account_models.AccountCredential.exists()


async def update(
    actor: Principal, display_name: str | None, avatar_url: str | None, request_id: str | None
) -> Account:
    """Change the display name and avatar URL (what is given)."""
    account = await of(actor)
    now = datetime.now(UTC)
    changed = [
        k for k, v in (("displayName", display_name), ("avatarUrl", avatar_url)) if v is not None
    ]
    async with in_transaction():
        if display_name is not None:
            await models.User.filter(id=account.user.id).update(display_name=display_name)
        if avatar_url is not None:
            if account.credential is None:
                raise Conflict("set a password before changing the avatar")
            await account_models.AccountCredential.filter(id=account.credential.id).update(
                avatar_url=avatar_url or None
            )
        if account.credential is not None:
            await account_models.AccountCredential.filter(id=account.credential.id).update(
                updated_at=now
            )
        await audit.record(
            actor=actor,
            event_type="account.profile-updated",
            aggregate_type="user",
            aggregate_id=account.user.id,
            payload={"changed": changed},
            request_id=request_id,
        )
    return await of(actor)


async def set_password(
    actor: Principal,
    current: str | None,
    new: str,
    access: Access,
    request_id: str | None,
) -> list[str]:
    """Set the first password, or change it (the current one is needed); other sessions end.

    Returns the ids of the sessions revoked.
    """
    account = await of(actor)
    passwords.require_strong(new, account.user.email, field="newPassword")
    stored = account.credential.password_hash if account.credential else None
    if stored is not None and not (current and await passwords.verify_password(stored, current)):
        raise Unauthorized("the current password is wrong")
    new_hash = await passwords.hash_password(new)
    now = datetime.now(UTC)
    async with in_transaction():
        if account.credential is None:
            _ = await account_models.AccountCredential.create(
                id=account.user.id,
                user_id=account.user.id,
                password_hash=new_hash,
                password_changed_at=now,
                updated_at=now,
            )
        else:
            await account_models.AccountCredential.filter(id=account.credential.id).update(
                password_hash=new_hash, password_changed_at=now, updated_at=now
            )
        revoked = await sessions.revoke_all(account.user.id, keep=actor.token_id)
        await audit.record(
            actor=actor,
            event_type="account.password-set"
            if account.credential is None
            else ("account.password-changed"),
            aggregate_type="user",
            aggregate_id=account.user.id,
            payload={"revokedSessionIds": revoked},
            request_id=request_id,
        )
    await sessions.end_access(access, revoked, actor, "password-changed", request_id)
    return revoked


@dataclass(frozen=True)
class Enrolment:
    """A TOTP secret waiting for its first code, shown once."""

    secret: str
    uri: str


async def begin_totp(actor: Principal, keyring: Keyring, request_id: str | None) -> Enrolment:
    """Create a pending TOTP secret (replacing an unconfirmed one); active once confirmed."""
    account = await of(actor)
    credential = _with_password(account)
    if credential.totp_enabled_at is not None:
        raise Conflict("two-factor authentication is already on; disable it first")
    secret = totp.new_secret()
    async with in_transaction():
        await account_models.AccountCredential.filter(id=credential.id).update(
            totp_pending_secret=keyring.encrypt(secret, totp_binding(account.user.id)),
            updated_at=datetime.now(UTC),
        )
        await audit.record(
            actor=actor,
            event_type="account.two-factor-enrolment-started",
            aggregate_type="user",
            aggregate_id=account.user.id,
            request_id=request_id,
        )
    return Enrolment(secret, totp.provisioning_uri(secret, account.user.email))


async def confirm_totp(
    actor: Principal, code: str, keyring: Keyring, request_id: str | None
) -> list[str]:
    """Turn TOTP on with a code from the pending secret; returns the recovery codes (once)."""
    account = await of(actor)
    credential = _with_password(account)
    if credential.totp_pending_secret is None:
        raise Conflict("no two-factor enrolment is in progress; start one first")
    secret = keyring.decrypt(credential.totp_pending_secret, totp_binding(account.user.id))
    step = totp.accepted_step(secret, code, None)
    if step is None:
        raise InvalidRequest(
            "the code does not match the new secret",
            details={"problems": [{"field": "code", "message": "wrong or expired code"}]},
        )
    codes = totp.new_recovery_codes()
    now = datetime.now(UTC)
    async with in_transaction():
        await account_models.AccountCredential.filter(id=credential.id).update(
            totp_secret=credential.totp_pending_secret,
            totp_pending_secret=None,
            totp_enabled_at=now,
            totp_last_step=step,
            updated_at=now,
        )
        await account_models.RecoveryCode.filter(user_id=account.user.id).delete()
        await account_models.RecoveryCode.bulk_create(
            [
                account_models.RecoveryCode(
                    id=new_id("rcv"),
                    user_id=account.user.id,
                    code_hash=totp.recovery_code_hash(c),
                    created_at=now,
                )
                for c in codes
            ]
        )
        await audit.record(
            actor=actor,
            event_type="account.two-factor-enabled",
            aggregate_type="user",
            aggregate_id=account.user.id,
            payload={"recoveryCodeCount": len(codes)},
            request_id=request_id,
        )
    return codes


async def disable_totp(
    actor: Principal, code: str, keyring: Keyring, request_id: str | None
) -> None:
    """Turn TOTP off; needs a current code (or an unused recovery code)."""
    account = await of(actor)
    credential = _with_password(account)
    if credential.totp_enabled_at is None or credential.totp_secret is None:
        raise Conflict("two-factor authentication is not on")
    secret = keyring.decrypt(credential.totp_secret, totp_binding(account.user.id))
    step = totp.accepted_step(secret, code, credential.totp_last_step)
    async with in_transaction():
        if step is None:
            used = await account_models.RecoveryCode.filter(
                user_id=account.user.id,
                code_hash=totp.recovery_code_hash(code),
                used_at__isnull=True,
            ).update(used_at=datetime.now(UTC))
            if used != 1:
                raise Unauthorized("the code is wrong or was already used")
        await account_models.AccountCredential.filter(id=credential.id).update(
            totp_secret=None,
            totp_pending_secret=None,
            totp_enabled_at=None,
            totp_last_step=None,
            updated_at=datetime.now(UTC),
        )
        await account_models.RecoveryCode.filter(user_id=account.user.id).delete()
        await audit.record(
            actor=actor,
            event_type="account.two-factor-disabled",
            aggregate_type="user",
            aggregate_id=account.user.id,
            request_id=request_id,
        )


def _with_password(account: Account) -> account_models.AccountCredential:
    if account.credential is None:
        raise Conflict("set a password first (POST /account/password)")
    return account.credential


async def _refuse_last_owner(user_id: str) -> None:
    """An organization must keep an owner (docs/organizations.md): transfer ownership first."""
    owned = await OrganizationMember.filter(
        user_id=user_id, role="owner", organization__deleted_at__isnull=True
    ).values_list("organization_id", flat=True)
    blockers = [
        {"kind": "last-owner", "relatedEntityId": str(organization_id)}
        for organization_id in owned
        if await OrganizationMember.filter(organization_id=organization_id, role="owner").count()
        <= 1
    ]
    if blockers:
        raise Conflict(
            "the last owner of an organization cannot delete its account; transfer ownership first",
            details={"blockers": blockers},
        )


async def delete(actor: Principal, access: Access, request_id: str | None) -> datetime:
    """Delete the caller's account, unless it is the organization's last admin (409)."""
    account = await of(actor)
    user = account.user
    if user.role == "admin":
        organization_id = user.organization_id  # type: ignore[attr-defined]
        admins = await models.User.filter(organization_id=organization_id, role="admin").count()
        if admins <= 1:
            raise Conflict(
                "the last admin cannot delete its account",
                details={"blockers": [{"kind": "last-admin", "relatedEntityId": user.id}]},
            )
    await _refuse_last_owner(user.id)
    now = datetime.now(UTC)
    async with in_transaction():
        revoked = await sessions.revoke_all(user.id, keep=None)
        tokens = models.ApiToken.filter(user_id=user.id, status="active")
        token_ids = [str(i) for i in await tokens.values_list("id", flat=True)]
        await models.ApiToken.filter(id__in=token_ids).update(status="revoked", revoked_at=now)
        await audit.record(
            actor=actor,
            event_type="account.deleted",
            aggregate_type="user",
            aggregate_id=user.id,
            payload={
                "email": user.email,
                "revokedSessionIds": revoked,
                "revokedTokenIds": token_ids,
            },
            request_id=request_id,
        )
        await models.User.filter(id=user.id).delete()
    # Its sessions' and API tokens' streams and terminals end now, as on any revocation.
    await sessions.end_access(access, [*revoked, *token_ids], actor, "account-deleted", request_id)
    return now
