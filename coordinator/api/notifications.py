"""Notification routes: subscriptions (signed webhooks, Slack, Discord, e-mail), their delivery
logs, a test send, and ``POST /webhooks/verify`` for receivers checking a signature."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, Field, field_validator

from coordinator.api.routing import Call, route
from coordinator.api.schemas import ApiRequest, IdResponse, NoQuery
from coordinator.db.notification_models import NotificationDelivery, NotificationSubscription
from coordinator.notifications import NOTIFICATIONS_KEY, signing, subscriptions
from coordinator.notifications.channels import Channel, SmtpSecurity
from coordinator.notifications.events import EVENT_TYPES, TEST_EVENT, Event, enqueue
from coordinator.outbound import guard_for
from coordinator.secrets import MASK
from shared.errors import InvalidRequest
from shared.wire import WireModel

TAG = "notifications"
DeliveryStatus = Literal[
    "pending", "retry-scheduled", "succeeded", "failed", "canceled", "dead-lettered"
]


def _known_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {sorted(EVENT_TYPES)}")
    return sorted(set(events))


class SmtpSettings(WireModel):
    """The SMTP relay an e-mail subscription sends through (the password is sealed)."""

    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:\[\]-]+$")
    port: int = Field(default=587, ge=1, le=65535)
    security: SmtpSecurity = "starttls"
    username: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, max_length=500)


class EmailSettings(WireModel):
    """Recipients, sender and relay of an e-mail subscription."""

    to: list[str] = Field(min_length=1, max_length=20)
    from_address: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    smtp: SmtpSettings

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if len(address) > 254 or address.count("@") != 1 or any(c.isspace() for c in address):
                raise ValueError(f"{address[:60]!r} is not an e-mail address")
        return value


class CreateSubscriptionRequest(ApiRequest):
    """``POST /notification-subscriptions``."""

    name: str = Field(min_length=1, max_length=120)
    channel: Channel
    events: list[str] = Field(min_length=1, max_length=20)
    enabled: bool = True
    url: AnyHttpUrl | None = None
    signing_secret: str | None = Field(default=None, min_length=16, max_length=500)
    email: EmailSettings | None = None

    _events = field_validator("events")(_known_events)


class ConfigureSubscriptionRequest(ApiRequest):
    """``POST /notification-subscriptions/{subscriptionId}``: only the fields given change."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    events: list[str] | None = Field(default=None, min_length=1, max_length=20)
    enabled: bool | None = None
    url: AnyHttpUrl | None = None
    signing_secret: str | None = Field(default=None, min_length=16, max_length=500)
    email: EmailSettings | None = None

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _known_events(value)


class SmtpView(WireModel):
    """The relay as shown (password ``****``)."""

    host: str
    port: int
    security: str
    username: str | None
    password: str | None


class EmailView(WireModel):
    """An e-mail subscription's settings as shown."""

    to: list[str]
    from_address: str
    smtp: SmtpView


class SubscriptionView(WireModel):
    """``notification-subscriptions.subscription/v1``."""

    schema_version: Literal["notification-subscriptions.subscription/v1"] = (
        "notification-subscriptions.subscription/v1"
    )
    id: str
    name: str
    channel: str
    events: list[str]
    enabled: bool
    url: str | None
    signing_secret: str | None
    email: EmailView | None
    created_at: datetime
    updated_at: datetime
    updated_by_actor_id: str | None
    updated_by_actor_kind: str


class SubscriptionShow(WireModel):
    """``notification-subscriptions.show/v1``."""

    schema_version: Literal["notification-subscriptions.show/v1"] = (
        "notification-subscriptions.show/v1"
    )
    subscription: SubscriptionView


class SubscriptionList(WireModel):
    """``notification-subscriptions.list/v1``, with the event types one may subscribe to."""

    schema_version: Literal["notification-subscriptions.list/v1"] = (
        "notification-subscriptions.list/v1"
    )
    items: list[SubscriptionView]
    event_types: dict[str, str]
    generated_at: datetime


class DeliveryView(WireModel):
    """One delivery with its attempts (response codes, errors, durations)."""

    id: str
    subscription_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    error_code: str | None
    next_attempt_at: datetime | None
    attempts: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class DeliveryList(WireModel):
    """``notification-deliveries.list/v1``, newest first."""

    schema_version: Literal["notification-deliveries.list/v1"] = "notification-deliveries.list/v1"
    subscription_id: str
    items: list[DeliveryView]
    generated_at: datetime


class DeliveriesQuery(ApiRequest):
    """Filter a delivery log."""

    status: DeliveryStatus | None = None
    limit: int = Field(default=50, ge=1, le=500)


class TestSendResponse(WireModel):
    """The queued test delivery."""

    delivery_id: str
    status: DeliveryStatus


class VerifyRequest(ApiRequest):
    """``POST /webhooks/verify``: the raw body, timestamp and signature headers as received."""

    subscription_id: str = Field(min_length=1, max_length=40)
    payload: str = Field(max_length=1_000_000)
    timestamp: str = Field(max_length=20)
    signature: str = Field(max_length=1000)
    tolerance_seconds: int = Field(default=signing.REPLAY_WINDOW_SECONDS, ge=1, le=86400)


class VerifyResponse(WireModel):
    """``webhooks.verify/v1``."""

    schema_version: Literal["webhooks.verify/v1"] = "webhooks.verify/v1"
    valid: bool
    reason: Literal["malformed-timestamp", "timestamp-outside-window", "signature-mismatch"] | None
    age_seconds: int | None
    verified_at: datetime


def subscription_view(row: NotificationSubscription) -> SubscriptionView:
    """The API view: secrets only ever as ``****``."""
    email = None
    if row.email:
        smtp = dict(row.email.get("smtp") or {})  # type: ignore[call-overload]
        email = EmailView(
            to=list(row.email.get("to") or []),  # type: ignore[call-overload]
            from_address=str(row.email.get("fromAddress")),
            smtp=SmtpView(
                host=str(smtp.get("host")),
                port=int(smtp.get("port", 0)),
                security=str(smtp.get("security")),
                username=smtp.get("username"),
                password=MASK if row.secret_sealed else None,
            ),
        )
    return SubscriptionView(
        id=row.id,
        name=row.name,
        channel=row.channel,
        events=list(row.events),
        enabled=row.enabled,
        url=row.url,
        signing_secret=MASK if row.channel == "webhook" and row.secret_sealed else None,
        email=email,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by_actor_id=row.updated_by_actor_id,
        updated_by_actor_kind=row.updated_by_actor_kind,
    )


def delivery_view(row: NotificationDelivery) -> DeliveryView:
    """A delivery as the log shows it."""
    return DeliveryView(
        id=row.id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,  # type: ignore[arg-type]
        attempt_count=row.attempt_count,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        error_code=row.error_code,
        next_attempt_at=row.next_attempt_at,
        attempts=list(row.attempts),
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


def _stored_email(email: EmailSettings | None) -> dict[str, Any] | None:
    if email is None:
        return None
    stored = email.model_dump(by_alias=True)
    stored["smtp"].pop("password", None)  # sealed apart, never stored in the clear
    return stored


def _check_target(call: Call, channel: str, url: str | None, email: EmailSettings | None) -> None:
    if channel == "email":
        if email is None:
            raise InvalidRequest("an email subscription needs email (to, fromAddress, smtp)")
        if url is not None:
            raise InvalidRequest("an email subscription takes no url")
        return
    if url is None:
        raise InvalidRequest(f"a {channel} subscription needs a url")
    if email is not None:
        raise InvalidRequest(f"a {channel} subscription takes no email settings")
    # What the URL alone shows is refused here; names are checked again at each delivery.
    guard_for(call.request.app).check_url(url, field_name="url")


@route(
    "POST",
    "/notification-subscriptions",
    summary="Subscribe a webhook, Slack, Discord or e-mail target to events",
    tag=TAG,
    permission="notifications:write",
    body=CreateSubscriptionRequest,
    response=IdResponse,
    status=201,
)
async def create_subscription(call: Call) -> IdResponse:
    """Check the target (SSRF guard), seal the secret, audit."""
    body = call.body(CreateSubscriptionRequest)
    subscriptions.require_organization_wide(call.actor)
    url = str(body.url) if body.url else None
    _check_target(call, body.channel, url, body.email)
    if body.channel == "webhook" and body.signing_secret is None:
        raise InvalidRequest("a webhook subscription needs a signingSecret (16+ characters)")
    if body.channel != "webhook" and body.signing_secret is not None:
        raise InvalidRequest("only webhook subscriptions are signed (signingSecret)")
    password = body.email.smtp.password if body.email else None
    row = await subscriptions.create(
        call.actor,
        call.keyring,
        call.request_id,
        {
            "name": body.name,
            "channel": body.channel,
            "events": body.events,
            "enabled": body.enabled,
            "url": subscriptions.shown_url(body.channel, url),
            "email": _stored_email(body.email),
        },
        subscriptions.sealed_value(body.channel, url, body.signing_secret, password),
    )
    return IdResponse(id=row.id)


@route(
    "GET",
    "/notification-subscriptions",
    summary="List notification subscriptions and the event types one can subscribe to",
    tag=TAG,
    permission="notifications:read",
    query=NoQuery,
    response=SubscriptionList,
)
async def list_subscriptions(call: Call) -> SubscriptionList:
    """The organization's subscriptions, oldest first."""
    rows = await subscriptions.listed(call.actor)
    return SubscriptionList(
        items=[subscription_view(r) for r in rows],
        event_types=dict(EVENT_TYPES),
        generated_at=datetime.now(UTC),
    )


@route(
    "GET",
    "/notification-subscriptions/{subscriptionId}",
    summary="Show a notification subscription",
    tag=TAG,
    permission="notifications:read",
    response=SubscriptionShow,
)
async def show_subscription(call: Call) -> SubscriptionShow:
    """Another organization's subscription is a 404."""
    row = await subscriptions.get(call.actor, call.path["subscriptionId"])
    return SubscriptionShow(subscription=subscription_view(row))


@route(
    "POST",
    "/notification-subscriptions/{subscriptionId}",
    summary="Configure a notification subscription (events, target, enabled, secret)",
    tag=TAG,
    permission="notifications:write",
    body=ConfigureSubscriptionRequest,
    response=IdResponse,
)
async def configure_subscription(call: Call) -> IdResponse:
    """Only the fields given change; a new secret replaces the sealed one."""
    body = call.body(ConfigureSubscriptionRequest)
    subscriptions.require_organization_wide(call.actor)
    row = await subscriptions.get(call.actor, call.path["subscriptionId"])
    changes: dict[str, Any] = {
        k: v
        for k, v in (("name", body.name), ("events", body.events), ("enabled", body.enabled))
        if v is not None
    }
    url = str(body.url) if body.url else None
    secret: str | None = None
    if url is not None or body.email is not None:
        _check_target(call, row.channel, url, body.email)
        if url is not None:
            changes["url"] = subscriptions.shown_url(row.channel, url)
        if body.email is not None:
            changes["email"] = _stored_email(body.email)
        secret = subscriptions.sealed_value(
            row.channel, url, None, body.email.smtp.password if body.email else None
        )
    if body.signing_secret is not None:
        if row.channel != "webhook":
            raise InvalidRequest("only webhook subscriptions are signed (signingSecret)")
        secret = body.signing_secret
    updated = await subscriptions.configure(
        call.actor, call.keyring, call.request_id, row, changes, secret
    )
    return IdResponse(id=updated.id)


@route(
    "DELETE",
    "/notification-subscriptions/{subscriptionId}",
    summary="Delete a notification subscription (queued deliveries are canceled)",
    tag=TAG,
    permission="notifications:write",
    response=IdResponse,
)
async def delete_subscription(call: Call) -> IdResponse:
    """The delivery log stays for the ledger and audits."""
    subscriptions.require_organization_wide(call.actor)
    row = await subscriptions.get(call.actor, call.path["subscriptionId"])
    await subscriptions.delete(call.actor, call.request_id, row)
    return IdResponse(id=row.id)


@route(
    "POST",
    "/notification-subscriptions/{subscriptionId}/test",
    summary="Queue a test notification to this subscription",
    tag=TAG,
    permission="notifications:write",
    response=TestSendResponse,
    status=202,
)
async def test_subscription(call: Call) -> TestSendResponse:
    """Delivered like any event (signed, retried, logged); answers before delivery."""
    row = await subscriptions.get(call.actor, call.path["subscriptionId"])
    now = datetime.now(UTC)
    event = Event(
        event_type=TEST_EVENT,
        event_id=f"{TEST_EVENT}:{call.request_id}"[:120],
        organization_id=row.organization_id,
        summary=f"test notification for subscription {row.name}",
        subject={"subscriptionId": row.id},
        data={"requestedBy": call.actor.actor_id},
        occurred_at=now,
    )
    queued = await enqueue([row], event)
    if not queued:
        raise InvalidRequest("this request already queued a test notification")
    call.request.app[NOTIFICATIONS_KEY].outbox.wake()
    return TestSendResponse(delivery_id=queued[0].id, status="pending")


@route(
    "GET",
    "/notification-subscriptions/{subscriptionId}/deliveries",
    summary="A subscription's delivery log: status, attempts, response codes",
    tag=TAG,
    permission="notifications:read",
    query=DeliveriesQuery,
    response=DeliveryList,
)
async def list_deliveries(call: Call) -> DeliveryList:
    """Newest first; filter by status."""
    query = call.query(DeliveriesQuery)
    row = await subscriptions.get(call.actor, call.path["subscriptionId"])
    rows = await subscriptions.deliveries(row, status=query.status, limit=query.limit)
    return DeliveryList(
        subscription_id=row.id,
        items=[delivery_view(r) for r in rows],
        generated_at=datetime.now(UTC),
    )


@route(
    "POST",
    "/webhooks/verify",
    summary="Check a received webhook's signature and timestamp against a subscription's secret",
    tag=TAG,
    permission="notifications:read",
    body=VerifyRequest,
    response=VerifyResponse,
)
async def verify_webhook(call: Call) -> VerifyResponse:
    """For receivers that cannot compute HMAC themselves; the secret never leaves Berth."""
    body = call.body(VerifyRequest)
    row = await subscriptions.get(call.actor, body.subscription_id)
    target = subscriptions.reveal(call.keyring, row)
    if row.channel != "webhook" or not target.secret:
        raise InvalidRequest("only webhook subscriptions have a signing secret")
    verdict = signing.verify(
        target.secret,
        body.payload.encode("utf-8"),
        body.timestamp,
        body.signature,
        tolerance_seconds=body.tolerance_seconds,
    )
    return VerifyResponse(
        valid=verdict.valid,
        reason=verdict.reason,  # type: ignore[arg-type]
        age_seconds=verdict.age_seconds,
        verified_at=datetime.now(UTC),
    )
