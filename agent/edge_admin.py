"""One call to Caddy's admin API: JSON in and out, every failure a ``RuntimeFailed``."""

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, Protocol

import aiohttp

from shared.errors import RuntimeFailed

_TIMEOUT_SECONDS = 10.0
# Caddy 2.6 reads managed certificates from storage at every config load; one that an
# issuance is writing that moment is half a JSON file, and Caddy refuses the whole load (keeping
# the config it had, so the same call may be sent again). Such a refusal is retried for a
# while; any other is final.
_STORAGE_RACE = "caching certificate: decoding certificate metadata"
_STORAGE_RACE_SECONDS = 5.0
_STORAGE_RACE_PAUSE = 0.05


class AdminCall(Protocol):
    """How the edge's parts reach Caddy (``CaddyEdge._call``, which tests wrap)."""

    def __call__(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Awaitable[Any]:
        """Send ``body`` (JSON) to ``path``; ``missing_ok``: a 400/404 answers None."""
        ...


async def admin_request(
    admin: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """One request to the admin API at ``admin`` (``body`` sent as JSON): its status and text;
    ``TimeoutError``, ``OSError`` or ``aiohttp.ClientError`` when Caddy cannot be reached. A load
    Caddy refused because it read a certificate while it was being written is sent again (for up
    to ``_STORAGE_RACE_SECONDS``). Every admin client of the agent goes through here."""
    deadline = asyncio.get_running_loop().time() + _STORAGE_RACE_SECONDS
    while True:
        status, text = await _request(admin, method, path, body, headers or {})
        if status != 500 or _STORAGE_RACE not in text:
            return status, text
        if asyncio.get_running_loop().time() > deadline:
            return status, text
        await asyncio.sleep(_STORAGE_RACE_PAUSE)


async def _request(
    admin: str, method: str, path: str, body: Any, extra: dict[str, str]
) -> tuple[int, str]:
    # A fresh session per call: edge changes are rare, and this keeps no socket between them.
    # Caddy refuses admin requests whose Origin/Host it does not expect.
    headers = {"Origin": admin, **extra}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    async with (
        asyncio.timeout(_TIMEOUT_SECONDS),
        aiohttp.ClientSession() as session,
        session.request(method, admin + path, data=payload, headers=headers) as response,
    ):
        return response.status, (await response.read()).decode("utf-8", "replace")


async def admin_call(
    admin: str, method: str, path: str, body: Any = None, *, missing_ok: bool = False
) -> Any:
    """Call ``method path`` on the admin API at ``admin``; the parsed answer, or None."""
    try:
        status, text = await admin_request(admin, method, path, body)
    except TimeoutError as exc:
        raise RuntimeFailed(f"edge proxy admin API {admin} timed out") from exc
    except (OSError, aiohttp.ClientError, ValueError) as exc:
        raise RuntimeFailed(f"edge proxy admin API {admin} unreachable: {exc}") from exc
    if status >= 400:
        if missing_ok and status in (400, 404):
            return None
        raise RuntimeFailed(f"edge proxy refused {method} {path}: HTTP {status} {_cut(text)}")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RuntimeFailed(f"edge proxy admin API sent invalid JSON: {exc}") from exc


def _cut(text: str) -> str:
    """Caddy's error, shortened: its head and its tail, where the cause is (an error about
    many names lists all of them first)."""
    text = text.strip()
    return text if len(text) <= 600 else f"{text[:200]} ... {text[-380:]}"
