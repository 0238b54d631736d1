"""Subscriptions: create, configure, delete, look up (organization-scoped), seal and reveal.

Signing secrets and SMTP passwords are sealed with the Keyring, bound to the subscription, and
only ever shown as ``****``. Every mutation writes an audit event in the same transaction.
"""

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.notification_models import NotificationDelivery, NotificationSubscription
from coordinator.ids import new_id
from coordinator.lookup import visible_or_404
from coordinator.notifications.channels import Target
from coordinator.secrets import MASK, Keyring
from shared.errors import Forbidden, InvalidRequest

AGGREGATE = "notification-subscription"
CHAT_CHANNELS: Final = frozenset({"slack", "discord"})


def secret_binding(subscription_id: str) -> str:
    """Associated data tying a sealed secret to one subscription."""
    return f"notification-subscription:{subscription_id}:secret"


def shown_url(channel: str, url: str | None) -> str | None:
    """The URL as stored in the clear and shown: a chat webhook's path is its credential."""
    if url is None or channel not in CHAT_CHANNELS:
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{MASK}"


def sealed_value(
    channel: str, url: str | None, signing_secret: str | None, smtp_password: str | None
) -> str | None:
    """The one secret a subscription seals: the signing secret (webhook), the whole URL (Slack,
    Discord: their URL is the credential), or the SMTP password (e-mail)."""
    if channel in CHAT_CHANNELS:
        return url
    if channel == "email":
        return smtp_password
    return signing_secret


def reveal(keyring: Keyring, row: NotificationSubscription) -> Target:
    """The subscription's target with its secret decrypted (for one delivery attempt)."""
    secret = (
        keyring.decrypt(row.secret_sealed, secret_binding(row.id)) if row.secret_sealed else None
    )
    if row.channel in CHAT_CHANNELS:
        return Target(channel=row.channel, url=secret, secret=None, email=None)  # type: ignore[arg-type]
    return Target(channel=row.channel, url=row.url, secret=secret, email=row.email)  # type: ignore[arg-type]


def require_organization_wide(actor: Principal) -> None:
    """Subscriptions hear about the whole organization, so a narrowed token may not set them."""
    if actor.server_ids or actor.project_ids or actor.environment_ids or actor.resource_ids:
        raise Forbidden(
            "notification subscriptions cover the whole organization; "
            "use a token without project, environment, resource or server limits"
        )


async def get(actor: Principal, subscription_id: str) -> NotificationSubscription:
    """A subscription of the caller's organization, else 404."""
    return await visible_or_404(
        NotificationSubscription,
        "notification subscription",
        subscription_id,
        lambda row: row.organization_id == actor.organization_id,
    )


async def listed(actor: Principal) -> list[NotificationSubscription]:
    """The organization's subscriptions, oldest first."""
    return await NotificationSubscription.filter(organization_id=actor.organization_id).order_by(
        "id"
    )


def _audit_view(fields: dict[str, Any]) -> dict[str, Any]:
    email = fields.get("email")
    return {
        "name": fields.get("name"),
        "channel": fields.get("channel"),
        "events": fields.get("events"),
        "enabled": fields.get("enabled"),
        "url": fields.get("url"),
        "email": {k: v for k, v in email.items() if k != "smtp"}
        if isinstance(email, dict)
        else None,
    }


async def create(
    actor: Principal,
    keyring: Keyring,
    request_id: str,
    fields: dict[str, Any],
    secret: str | None,
) -> NotificationSubscription:
    """Store a new subscription (``fields`` already validated) with its secret sealed."""
    now = datetime.now(UTC)
    subscription_id = new_id("nsb")
    async with in_transaction():
        row = await NotificationSubscription.create(
            id=subscription_id,
            organization_id=actor.organization_id,
            secret_sealed=keyring.encrypt(secret, secret_binding(subscription_id))
            if secret
            else None,
            created_at=now,
            updated_at=now,
            updated_by_actor_id=actor.actor_id,
            updated_by_actor_kind=actor.kind,
            **fields,
        )
        await audit.record(
            actor=actor,
            event_type="notification-subscription-created",
            aggregate_type=AGGREGATE,
            aggregate_id=row.id,
            payload={**_audit_view(fields), "secretSet": secret is not None},
            request_id=request_id,
        )
    return row


async def configure(
    actor: Principal,
    keyring: Keyring,
    request_id: str,
    row: NotificationSubscription,
    changes: dict[str, Any],
    secret: str | None,
) -> NotificationSubscription:
    """Apply ``changes`` (and a new secret when given) with an audit event."""
    merged = {
        "name": row.name,
        "channel": row.channel,
        "events": row.events,
        "enabled": row.enabled,
        "url": row.url,
        "email": row.email,
        **changes,
    }
    if merged["channel"] != "email" and not merged["url"]:
        raise InvalidRequest("a webhook, slack or discord subscription needs a url")
    values: dict[str, Any] = {
        **changes,
        "updated_at": datetime.now(UTC),
        "updated_by_actor_id": actor.actor_id,
        "updated_by_actor_kind": actor.kind,
    }
    if secret is not None:
        values["secret_sealed"] = keyring.encrypt(secret, secret_binding(row.id))
    async with in_transaction():
        await NotificationSubscription.filter(id=row.id).update(**values)
        await audit.record(
            actor=actor,
            event_type="notification-subscription-configured",
            aggregate_type=AGGREGATE,
            aggregate_id=row.id,
            payload={
                **_audit_view(merged),
                "changed": sorted(changes),
                "secretChanged": secret is not None,
            },
            request_id=request_id,
        )
    return await NotificationSubscription.get(id=row.id)


async def delete(actor: Principal, request_id: str, row: NotificationSubscription) -> None:
    """Remove the subscription; its queued deliveries are canceled, its log kept."""
    now = datetime.now(UTC)
    async with in_transaction():
        await NotificationSubscription.filter(id=row.id).delete()
        _ = await NotificationDelivery.filter(
            subscription_id=row.id, status__in=("pending", "retry-scheduled")
        ).update(
            status="canceled",
            finished_at=now,
            updated_at=now,
            next_attempt_at=None,
            error_code="subscription-deleted",
        )
        await audit.record(
            actor=actor,
            event_type="notification-subscription-deleted",
            aggregate_type=AGGREGATE,
            aggregate_id=row.id,
            payload={"name": row.name, "channel": row.channel},
            request_id=request_id,
        )


async def deliveries(
    row: NotificationSubscription, *, status: str | None, limit: int
) -> list[NotificationDelivery]:
    """The subscription's delivery log, newest first."""
    query = NotificationDelivery.filter(subscription_id=row.id)
    if status:
        query = query.filter(status=status)
    return await query.order_by("-id").limit(limit)
