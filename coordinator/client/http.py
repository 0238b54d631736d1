"""The coordinator API client: one aiohttp session, bearer auth, error envelopes as ``ApiError``."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import IO, Final, Self

import aiohttp
import orjson

from shared.version import PACKAGE_VERSION

JsonObject = dict[str, object]
Query = Mapping[str, str | int | None]

TIMEOUT_SECONDS: Final = 30.0
# Uploads may be large; they get their own, longer deadline instead of the 30 s one.
UPLOAD_TIMEOUT: Final = aiohttp.ClientTimeout(
    total=None, sock_connect=TIMEOUT_SECONDS, sock_read=300
)


class ClientError(Exception):
    """A failed call the CLI reports on one line: unreachable, timed out, or a bad answer."""


class ApiError(ClientError):
    """An error answer from the coordinator, built from its error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None,
        details: dict[str, object] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details or {}
        where = f"{code}, request {request_id}" if request_id else code
        super().__init__(f"{message} ({where})")


def _problems(details: object) -> str:
    """Summarise ``details.problems`` of a validation error as ``field: message; ...``."""
    problems = details.get("problems") if isinstance(details, dict) else None
    if not isinstance(problems, list):
        return ""
    parts = [f"{p.get('field')}: {p.get('message')}" for p in problems if isinstance(p, dict)]
    return ": " + "; ".join(parts) if parts else ""


def error_from_response(status: int, reason: str, raw: bytes, header_id: str | None) -> ApiError:
    """Build an ``ApiError`` from an error response, enveloped or not (e.g. from a proxy)."""
    try:
        envelope: object = orjson.loads(raw)
    except orjson.JSONDecodeError:
        envelope = None
    error = envelope.get("error") if isinstance(envelope, dict) else None
    if not isinstance(envelope, dict) or not isinstance(error, dict):
        return ApiError(status, f"http_{status}", reason or "unexpected error answer", header_id)
    request_id = envelope.get("requestId")
    details = error.get("details")
    return ApiError(
        status,
        str(error.get("code", f"http_{status}")),
        str(error.get("message", reason)) + _problems(details),
        request_id if isinstance(request_id, str) else header_id,
        details if isinstance(details, dict) else None,
    )


def objects(data: JsonObject, key: str) -> list[JsonObject]:
    """Return ``data[key]`` as a list of JSON objects (an empty list when absent)."""
    value = data.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def text(data: JsonObject, key: str) -> str:
    """Return ``data[key]`` as a string (empty when absent or null)."""
    value = data.get(key)
    return "" if value is None else str(value)


class ApiClient:
    """Calls the coordinator at ``url`` with an API token; use as an async context manager."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        """Open the HTTP session."""
        self._session = aiohttp.ClientSession(
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
                "User-Agent": f"berth-cli/{PACKAGE_VERSION}",
            },
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: JsonObject | None = None,
        raw: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> JsonObject:
        """Send one request; return the JSON object answered or raise ``ClientError``.

        ``body`` is sent as JSON; ``raw`` is sent as is (set its Content-Type in ``headers``).
        """
        if self._session is None:
            raise RuntimeError("ApiClient is used outside 'async with'")
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        sent = dict(headers or {})
        data: bytes | IO[bytes] | None = raw
        if body is not None:
            data = orjson.dumps(body)
            sent["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method,
                self.url + path,
                params=params,
                data=data,
                headers=sent or None,
                timeout=timeout or aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            ) as response:
                raw_answer = await response.read()
        except TimeoutError as exc:
            limit = (timeout.total or timeout.sock_read) if timeout else TIMEOUT_SECONDS
            raise ClientError(
                f"the coordinator at {self.url} did not answer within {limit:.0f} s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise ClientError(f"cannot reach the coordinator at {self.url}: {exc}") from exc
        if response.status >= 400:
            raise error_from_response(
                response.status,
                response.reason or "",
                raw_answer,
                response.headers.get("X-Request-ID"),
            )
        return self._parse(response.status, raw_answer)

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        query: Query | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``GET path`` whose body is read incrementally (no total deadline, only per read).

        Error answers raise ``ApiError``; connection failures stay ``aiohttp`` errors so a
        caller that resumes (the SSE reader) can tell them apart from refusals.
        """
        if self._session is None:
            raise RuntimeError("ApiClient is used outside 'async with'")
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=TIMEOUT_SECONDS, sock_read=read_timeout
        )
        async with self._session.get(
            self.url + path, params=params, headers=dict(headers or {}), timeout=timeout
        ) as response:
            if response.status >= 400:
                raise error_from_response(
                    response.status,
                    response.reason or "",
                    await response.read(),
                    response.headers.get("X-Request-ID"),
                )
            yield response

    def _parse(self, status: int, raw: bytes) -> JsonObject:
        """Decode a success answer, which the API always makes a JSON object (or empty)."""
        if not raw.strip() or raw.strip() == b"null":
            return {}
        try:
            data: object = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ClientError(f"{self.url} answered HTTP {status} without JSON") from exc
        if not isinstance(data, dict):
            raise ClientError(f"{self.url} answered HTTP {status} with JSON that is not an object")
        return data

    async def get(self, path: str, query: Query | None = None) -> JsonObject:
        """``GET path``."""
        return await self.call("GET", path, query=query)

    async def post(self, path: str, body: JsonObject) -> JsonObject:
        """``POST path`` with a JSON body."""
        return await self.call("POST", path, body=body)

    async def get_all(self, path: str, page_size: int, query: Query | None = None) -> JsonObject:
        """Follow ``nextCursor`` to the end; answer one page holding every item."""
        items: list[JsonObject] = []
        cursor: str | None = None
        while True:
            page = await self.get(path, {**(query or {}), "limit": page_size, "cursor": cursor})
            items.extend(objects(page, "items"))
            cursor = text(page, "nextCursor") or None
            if cursor is None:
                return {**page, "items": items, "nextCursor": None}
