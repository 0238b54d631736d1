"""Enrollment: generate the key pair, trade the join token for registration, save the state."""

import asyncio
import json
import ssl
from pathlib import Path

from agent.http_client import fetch, locate
from agent.identity import AgentKey
from agent.state import Enrollment, StateDir
from agent.tls import client_context
from shared.version import AGENT_ENROLL_PATH, PACKAGE_VERSION

ENROLL_TIMEOUT_SECONDS = 30.0


class EnrollmentRefused(Exception):
    """The coordinator refused the join token or the key (retrying will not help)."""


class EnrollmentUnreachable(Exception):
    """The coordinator could not be reached (retrying later may help)."""


def _error_message(body: bytes, status: int) -> str:
    try:
        envelope = json.loads(body)
        return str(envelope["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"


async def _post_async(
    url: str, payload: dict[str, str], context: ssl.SSLContext | None
) -> dict[str, str]:
    headers = {
        "User-Agent": f"berth-agent/{PACKAGE_VERSION}",
        "Content-Type": "application/json",
    }
    try:
        # HTTPS_PROXY / NO_PROXY from the environment are honoured.
        endpoint, target = locate(url, context, environment_proxy=True)
        async with asyncio.timeout(ENROLL_TIMEOUT_SECONDS):
            answer = await fetch(
                endpoint, "POST", target, headers=headers, body=json.dumps(payload).encode()
            )
        status, body = answer.status, answer.body
    except ssl.SSLCertVerificationError as exc:
        detail = exc.verify_message or str(exc)
        raise EnrollmentRefused(
            f"TLS verification failed for {url}: {detail}; "
            "pass --ca-file if the coordinator uses a private CA"
        ) from exc
    except (TimeoutError, OSError, ValueError) as exc:
        raise EnrollmentUnreachable(f"cannot reach the coordinator at {url}: {exc}") from exc
    if status >= 400:
        message = _error_message(body, status)
        if status < 500:
            raise EnrollmentRefused(f"coordinator refused enrollment: {message}")
        raise EnrollmentUnreachable(f"coordinator error: {message}")
    try:
        data: dict[str, str] = json.loads(body)
    except ValueError as exc:
        raise EnrollmentUnreachable(f"coordinator sent an invalid answer: {exc}") from exc
    return data


def _post(url: str, payload: dict[str, str], context: ssl.SSLContext | None) -> dict[str, str]:
    # The enroll command runs once, before any event loop: a short-lived one for this call.
    return asyncio.run(_post_async(url, payload, context))


def enroll(coordinator_url: str, token: str, state: StateDir, ca_file: Path | None) -> Enrollment:
    """Enroll this host and persist its identity; the private key never leaves the state dir."""
    base = coordinator_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise EnrollmentRefused("--coordinator must start with http:// or https://")
    ca_pem = ca_file.read_bytes() if ca_file is not None else None
    context = (
        client_context(str(ca_file) if ca_file else None) if base.startswith("https") else None
    )
    key = AgentKey.generate()
    answer = _post(
        base + AGENT_ENROLL_PATH, {"joinToken": token, "publicKey": key.public_text()}, context
    )
    try:
        enrollment = Enrollment(
            coordinator_url=base,
            server_id=answer["serverId"],
            server_name=answer["serverName"],
            key_fingerprint=answer["keyFingerprint"],
            ca_file=None,
        )
    except KeyError as exc:
        raise EnrollmentRefused(f"unexpected enrollment answer (missing {exc})") from exc
    state.save(enrollment, key, ca_pem)
    return enrollment
