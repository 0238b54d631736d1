"""Channels: how a queued delivery is rendered and sent (signed webhook, Slack, Discord, e-mail).

Every HTTP channel goes through the outbound guard (coordinator/outbound.py): the URL is checked
again at each attempt and the connector connects only to checked addresses. E-mail resolves the
SMTP relay's name and refuses it unless every address is allowed.
"""

import asyncio
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Final, Literal

import aiohttp
import aiosmtplib
import orjson

from coordinator.notifications import signing
from coordinator.outbound import OutboundGuard, TargetRefused, literal_address
from shared.errors import InvalidRequest

Channel = Literal["webhook", "slack", "discord", "email"]
CHANNELS: Final[tuple[Channel, ...]] = ("webhook", "slack", "discord", "email")
SmtpSecurity = Literal["none", "starttls", "tls"]
_SUMMARY_LIMIT: Final = 1800  # Discord refuses content over 2,000 characters


@dataclass(frozen=True)
class Target:
    """Where one subscription's deliveries go, with its secrets revealed for this attempt."""

    channel: Channel
    url: str | None
    secret: str | None
    email: dict[str, Any] | None


@dataclass(frozen=True)
class Outcome:
    """One attempt's result: ``ok``, else whether trying again may help."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    error_code: str | None = None
    retriable: bool = True


def chat_text(payload: dict[str, Any]) -> str:
    """One line for chat channels and e-mail subjects: the event type and its summary (line
    breaks in error messages become spaces; a header may not contain them)."""
    text = f"[Berth] {payload.get('eventType')}: {payload.get('summary')}"
    return " ".join(text.split())[:_SUMMARY_LIMIT]


def render(channel: Channel, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON body a channel posts: the event itself, or a Slack/Discord message."""
    if channel == "slack":
        # Slack incoming webhooks take {"text"}; the event rides along for workflow steps.
        return {"text": chat_text(payload)}
    if channel == "discord":
        return {"content": chat_text(payload), "username": "Berth"}
    return payload


async def post(
    http: aiohttp.ClientSession,
    guard: OutboundGuard,
    target: Target,
    payload: dict[str, Any],
    timeout_seconds: float,
) -> Outcome:
    """POST the rendered payload once; signed when the subscription has a secret."""
    if target.url is None:
        return Outcome(False, error="no url", error_code="no-target", retriable=False)
    body = orjson.dumps(render(target.channel, payload))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Berth-Notifications/1",
        signing.EVENT_HEADER: str(payload.get("eventType")),
        signing.DELIVERY_HEADER: str(payload.get("deliveryId")),
    }
    if target.secret:
        headers.update(signing.signed_headers(target.secret, body))
    try:
        # Address literals never reach the resolver, so the URL is checked here as well.
        guard.check_url(target.url)
    except InvalidRequest as exc:
        return Outcome(False, error=exc.message, error_code="target-refused", retriable=False)
    try:
        async with http.post(
            target.url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            allow_redirects=False,
        ) as response:
            if 200 <= response.status < 300:
                return Outcome(True, status_code=response.status)
            # 4xx other than 408/429 will not change by asking again.
            retriable = response.status >= 500 or response.status in (408, 429)
            return Outcome(
                False,
                status_code=response.status,
                error=f"the endpoint answered {response.status}",
                error_code="endpoint-error",
                retriable=retriable,
            )
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, TargetRefused):
            return Outcome(
                False, error=str(exc.os_error), error_code="target-refused", retriable=False
            )
        return Outcome(False, error=f"connect failed: {exc.os_error}", error_code="unreachable")
    except TimeoutError:
        return Outcome(False, error="the endpoint did not answer in time", error_code="timeout")
    except aiohttp.ClientError as exc:
        return Outcome(False, error=type(exc).__name__, error_code="unreachable")


def email_message(settings: dict[str, Any], payload: dict[str, Any]) -> EmailMessage:
    """The plain-text message of one event."""
    message = EmailMessage()
    message["From"] = str(settings["fromAddress"])
    message["To"] = ", ".join(settings["to"])
    message["Subject"] = chat_text(payload)[:200]
    message["X-Berth-Event"] = str(payload.get("eventType"))
    message["X-Berth-Delivery"] = str(payload.get("deliveryId"))
    details = orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode()
    message.set_content(f"{payload.get('summary')}\n\n{details}\n")
    return message


async def _checked_relay(guard: OutboundGuard, host: str, port: int) -> str:
    """The address to connect to: the literal, or the first of the name's (all checked)."""
    refused = TargetRefused(f"SMTP relay {host} is a private, loopback or own address")
    address = literal_address(host)
    if address is not None:
        if not guard.address_allowed(address, port):
            raise refused
        return str(address)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = [literal_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not found or any(a is None or not guard.address_allowed(a, port) for a in found):
        raise refused
    return str(found[0])


async def send_email(
    guard: OutboundGuard, target: Target, payload: dict[str, Any], timeout_seconds: float
) -> Outcome:
    """Send one message through the subscription's SMTP relay."""
    settings = target.email or {}
    smtp = dict(settings.get("smtp") or {})
    host, port = str(smtp["host"]), int(smtp["port"])
    security: SmtpSecurity = smtp.get("security", "starttls")
    try:
        address = await _checked_relay(guard, host, port)
    except TargetRefused as exc:
        return Outcome(False, error=str(exc), error_code="target-refused", retriable=False)
    except OSError as exc:
        return Outcome(False, error=f"cannot resolve {host}: {exc}", error_code="unreachable")
    # Without TLS the checked address is dialled (a changed DNS answer cannot swap it); with
    # TLS the name is dialled so the certificate is checked against it.
    hostname = address if security == "none" else host
    try:
        _ = await aiosmtplib.send(
            email_message(settings, payload),
            hostname=hostname,
            port=port,
            username=smtp.get("username") or None,
            password=target.secret if smtp.get("username") else None,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            timeout=timeout_seconds,
        )
    except aiosmtplib.SMTPResponseException as exc:
        return Outcome(
            False,
            status_code=exc.code,
            error=exc.message[:500],
            error_code="smtp-refused",
            retriable=exc.code >= 400 and exc.code < 500,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500], error_code="unreachable")
    return Outcome(True, status_code=250)
