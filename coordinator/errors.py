"""The HTTP transport's one conversion point: exceptions to the error envelope, plus request ids."""

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from shared.errors import (
    ErrorBody,
    ErrorCode,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PlatformError,
    Timeout,
)
from shared.wire import WireModel, dump_json

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER: Final = "X-Request-ID"
_REQUEST_ID_KEY: Final = web.RequestKey("request_id", str)
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The response a handler already started sending (set when its headers go out).
_STARTED_KEY: Final = web.RequestKey("started_response", web.StreamResponse)

# The only table that maps error codes to HTTP statuses.
HTTP_STATUS: Final[dict[ErrorCode, int]] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.INVALID_MESSAGE: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.ID_REUSE: 400,
    ErrorCode.UNSUPPORTED_PROTOCOL: 426,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.RUNTIME_FAILED: 502,
    ErrorCode.INTERNAL: 500,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.REQUEST_TIMEOUT: 408,
}


class ErrorEnvelope(WireModel):
    """Body of every non-2xx HTTP response."""

    error: ErrorBody
    request_id: str


def request_id(request: BaseRequest) -> str:
    """Return this request's id (the client's ``X-Request-ID`` if well-formed, else minted)."""
    value = request.get(_REQUEST_ID_KEY)
    if isinstance(value, str):
        return value
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    value = incoming if _VALID_REQUEST_ID.fullmatch(incoming) else "req_" + secrets.token_hex(12)
    request[_REQUEST_ID_KEY] = value
    return value


def error_response(request: BaseRequest, error: PlatformError) -> web.Response:
    """Build the enveloped response for ``error``."""
    envelope = ErrorEnvelope(error=error.to_body(), request_id=request_id(request))
    status = HTTP_STATUS.get(error.code, 500)
    response = web.Response(
        status=status, text=dump_json(envelope), content_type="application/json"
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="berth"'
    retry_after = error.details.get("retryAfterSeconds") if status == 429 else None
    if isinstance(retry_after, int):  # a 429 says when to come back (login backoff)
        response.headers["Retry-After"] = str(max(1, retry_after))
    return response


# aiohttp's parser messages quote the offending bytes; an error body quotes at most this much.
_PARSER_MESSAGE_CHARS: Final = 200


class EnvelopeRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering the errors aiohttp raises itself with the envelope.

    A request line or header over aiohttp's limits, a malformed request or a handler timeout never
    reaches the middleware: aiohttp answers them in ``handle_error`` with plain text.
    """

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Log as aiohttp does, then answer with the envelope (the connection still closes)."""
        _ = super().handle_error(request, status, exc, message)
        error: PlatformError
        if status == 413:
            error = PayloadTooLarge("request is too large")
        elif status == 504:
            error = Timeout("the request took too long")
        elif 400 <= status < 500:
            text = (message or "bad request").splitlines()[0][:_PARSER_MESSAGE_CHARS]
            error = InvalidRequest(f"malformed HTTP request: {text}")
        else:
            error = PlatformError("internal error")
        response = error_response(request, error)
        response.set_status(status)  # keep aiohttp's status (e.g. 431)
        response.headers[REQUEST_ID_HEADER] = request_id(request)
        response.force_close()  # as aiohttp does: the stream may be out of sync
        return response


class EnvelopeServer(web.Server):
    """``web.Server`` whose connections use ``EnvelopeRequestHandler`` (aiohttp has no option)."""

    def __call__(self) -> RequestHandler:
        """Create the handler for one new connection, as ``web.Server`` does."""
        return EnvelopeRequestHandler(self, loop=self._loop, **self._kwargs)


def _from_http_exception(exc: web.HTTPException) -> PlatformError:
    if exc.status == 404:
        return NotFound("no such route")
    if exc.status == 405:
        return MethodNotAllowed("method not allowed on this route")
    if exc.status == 413:
        return PayloadTooLarge("request body is too large")
    if 400 <= exc.status < 500:
        return InvalidRequest(exc.reason or "bad request")
    return PlatformError("internal error")


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every exception into the error envelope; nothing else formats errors."""
    request_id(request)
    try:
        return await handler(request)
    except PlatformError as exc:
        return error_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(request, _from_http_exception(exc))
        if "Allow" in exc.headers:  # a 405 must say which methods the path accepts (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        started = request.get(_STARTED_KEY)
        client_left = isinstance(exc, ConnectionError) and _client_gone(request)
        if client_left and isinstance(started, web.StreamResponse):
            # The client left mid-response (an SSE reader closing its tab): nothing to answer,
            # and not a server error. aiohttp finishes the response it already started.
            logger.debug("client left during %s %s [%s]", request.method, request.path, exc)
            return started
        logger.exception(
            "unhandled error on %s %s [%s]", request.method, request.path, request_id(request)
        )
        return error_response(request, PlatformError("internal error"))


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """Signal handler: put ``X-Request-ID`` on every response, streams and upgrades included."""
    response.headers[REQUEST_ID_HEADER] = request_id(request)
    request[_STARTED_KEY] = response
