"""One call to Caddy's admin API: JSON in and out, every failure a ``RuntimeFailed``."""

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from agent.http_client import Endpoint, fetch
from shared.errors import RuntimeFailed

_TIMEOUT_SECONDS = 10.0
# Caddy 2.6 reads managed certificates from storage at every config load; one that an
# issuance is writing that moment is half a JSON file, and Caddy refuses the whole load (keeping
# the config it had, so the same call may be sent again). Such a refusal is retried for a
# while; any other is final.
_STORAGE_RACE = "caching certificate: decoding certificate metadata"
_STORAGE_RACE_SECONDS = 5.0
_STORAGE_RACE_PAUSE = 0.05
# One queue of admin requests per Caddy (and event loop): an ``admin_edit`` reads and writes
# back a subtree, and no other request of the agent's may change it in between.
_QUEUES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


class AdminCall(Protocol):
    """How the edge's parts reach Caddy (``CaddyEdge._call``, which tests wrap)."""

    def __call__(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Awaitable[Any]:
        """Send ``body`` (JSON) to ``path``; ``missing_ok``: a 400/404 answers None."""
        ...


class AdminEdit(Protocol):
    """How the edge rewrites a subtree of Caddy's config in one write (``CaddyEdge._edit``)."""

    def __call__(self, path: str, edit: Callable[[Any], Any]) -> Awaitable[None]:
        """Read ``path``, write back ``edit(what was read)``; nothing of the agent's between."""
        ...


def _queue(admin: str) -> asyncio.Lock:
    queues = _QUEUES.setdefault(asyncio.get_running_loop(), {})
    return queues.setdefault(admin, asyncio.Lock())


async def admin_request(
    admin: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """One request to the admin API at ``admin`` (``body`` sent as JSON): its status and text;
    ``TimeoutError`` or ``OSError`` when Caddy cannot be reached. A load
    Caddy refused because it read a certificate while it was being written is sent again (for up
    to ``_STORAGE_RACE_SECONDS``). Every admin client of the agent goes through here, one
    request at a time per Caddy."""
    async with _queue(admin):
        return await _attempts(admin, method, path, body, headers or {})


async def _attempts(
    admin: str, method: str, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, str]:
    deadline = asyncio.get_running_loop().time() + _STORAGE_RACE_SECONDS
    while True:
        status, text = await _request(admin, method, path, body, headers)
        if status != 500 or _STORAGE_RACE not in text:
            return status, text
        if asyncio.get_running_loop().time() > deadline:
            return status, text
        await asyncio.sleep(_STORAGE_RACE_PAUSE)


async def _request(
    admin: str, method: str, path: str, body: Any, extra: dict[str, str]
) -> tuple[int, str]:
    # A connection per call: edge changes are rare, and this keeps no socket between them.
    # Caddy refuses admin requests whose Origin/Host it does not expect.
    headers = {"Origin": admin, **extra}
    payload = None
    if body is not None:
        payload = orjson.dumps(body)
        headers["Content-Type"] = "application/json"
    async with asyncio.timeout(_TIMEOUT_SECONDS):
        answer = await fetch(Endpoint.from_url(admin), method, path, headers=headers, body=payload)
    return answer.status, answer.text


async def admin_call(
    admin: str, method: str, path: str, body: Any = None, *, missing_ok: bool = False
) -> Any:
    """Call ``method path`` on the admin API at ``admin``; the parsed answer, or None."""
    async with _queue(admin):
        return await _call(admin, method, path, body, missing_ok)


async def admin_edit(admin: str, path: str, edit: Callable[[Any], Any]) -> None:
    """Read ``path`` and write back (PATCH) what ``edit`` makes of it, with no other admin
    request of the agent's to this Caddy in between: one write, where changing two places of the
    config (two servers' routes) by id would be two, and each write makes Caddy load its whole
    config. ``edit`` may raise (``RuntimeFailed``) to write nothing."""
    async with _queue(admin):
        current = await _call(admin, "GET", path, None, False)
        await _call(admin, "PATCH", path, edit(current), False)


async def _call(admin: str, method: str, path: str, body: Any, missing_ok: bool) -> Any:
    try:
        status, text = await _attempts(admin, method, path, body, {})
    except TimeoutError as exc:
        raise RuntimeFailed(f"edge proxy admin API {admin} timed out") from exc
    except (OSError, ValueError) as exc:
        raise RuntimeFailed(f"edge proxy admin API {admin} unreachable: {exc}") from exc
    if status >= 400:
        if missing_ok and status in (400, 404):
            return None
        raise RuntimeFailed(f"edge proxy refused {method} {path}: HTTP {status} {_cut(text)}")
    if not text.strip():
        return None
    try:
        return orjson.loads(text)
    except ValueError as exc:
        raise RuntimeFailed(f"edge proxy admin API sent invalid JSON: {exc}") from exc


def _cut(text: str) -> str:
    """Caddy's error, shortened: its head and its tail, where the cause is (an error about
    many names lists all of them first)."""
    text = text.strip()
    return text if len(text) <= 600 else f"{text[:200]} ... {text[-380:]}"
