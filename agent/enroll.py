"""Enrollment: generate the key pair, trade the join token for registration, save the state."""

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from agent.state import Enrollment, StateDir
from agent.tls import client_context
from shared.crypto import generate_private_key, public_key_text
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


def _post(url: str, payload: dict[str, str], context: ssl.SSLContext | None) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 (scheme checked by the caller)
        url,
        data=json.dumps(payload).encode(),
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"berth-agent/{PACKAGE_VERSION}",
        },
        method="POST",
    )
    # urllib's default opener honours HTTPS_PROXY / NO_PROXY from the environment.
    handlers: list[urllib.request.BaseHandler] = []
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=ENROLL_TIMEOUT_SECONDS) as response:
            data: dict[str, str] = json.loads(response.read())
            return data
    except urllib.error.HTTPError as exc:
        message = _error_message(exc.read(), exc.code)
        if 400 <= exc.code < 500:
            raise EnrollmentRefused(f"coordinator refused enrollment: {message}") from exc
        raise EnrollmentUnreachable(f"coordinator error: {message}") from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise EnrollmentRefused(
                f"TLS verification failed for {url}: {reason.verify_message}; "
                "pass --ca-file if the coordinator uses a private CA"
            ) from exc
        raise EnrollmentUnreachable(f"cannot reach the coordinator at {url}: {reason}") from exc
    except (TimeoutError, ConnectionError) as exc:
        raise EnrollmentUnreachable(f"cannot reach the coordinator at {url}: {exc}") from exc


def enroll(coordinator_url: str, token: str, state: StateDir, ca_file: Path | None) -> Enrollment:
    """Enroll this host and persist its identity; the private key never leaves the state dir."""
    base = coordinator_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise EnrollmentRefused("--coordinator must start with http:// or https://")
    ca_pem = ca_file.read_bytes() if ca_file is not None else None
    context = (
        client_context(str(ca_file) if ca_file else None) if base.startswith("https") else None
    )
    key = generate_private_key()
    answer = _post(
        base + AGENT_ENROLL_PATH, {"joinToken": token, "publicKey": public_key_text(key)}, context
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
