"""Invitation e-mail: sent through the organization's e-mail notification channel (its first
enabled e-mail subscription's SMTP relay and sender), the same sender and SSRF guard as
notifications. Without one, the inviter passes the link secret on."""

from dataclasses import replace
from typing import Literal

from coordinator.db.models import Organization
from coordinator.db.notification_models import NotificationSubscription
from coordinator.db.organization_models import OrganizationInvitation
from coordinator.notifications.channels import send_email
from coordinator.notifications.subscriptions import reveal
from coordinator.outbound import OutboundGuard
from coordinator.secrets import Keyring

EmailStatus = Literal["sent", "not-configured", "failed"]


async def send_invitation(
    keyring: Keyring,
    guard: OutboundGuard,
    timeout_seconds: float,
    invitation: OrganizationInvitation,
    secret: str,
    accept_url: str,
) -> tuple[EmailStatus, str | None]:
    """E-mail the invitation to its address; what happened, and why it failed (if it did)."""
    organization_id: str = invitation.organization_id  # type: ignore[attr-defined]
    relay = (
        await NotificationSubscription.filter(
            organization_id=organization_id, channel="email", enabled=True
        )
        .order_by("id")
        .first()
    )
    if relay is None:
        return "not-configured", None
    organization = await Organization.get(id=organization_id)
    target = reveal(keyring, relay)
    target = replace(target, email={**(target.email or {}), "to": [invitation.email]})
    payload = {
        "eventType": "organization.invitation",
        "deliveryId": invitation.id,
        # The subject line: no secret in it (subjects end up in more logs than bodies).
        "summary": (
            f"you are invited to {organization.name} as {invitation.role}; open the link in "
            "acceptUrl, or accept with `berth orgs accept SECRET`"
        ),
        "acceptUrl": accept_url,
        "organizationId": organization_id,
        "role": invitation.role,
        "expiresAt": invitation.expires_at.isoformat(),
        "invitationSecret": secret,
    }
    outcome = await send_email(guard, target, payload, timeout_seconds)
    return ("sent", None) if outcome.ok else ("failed", outcome.error)
