"""Error codes, the error body both transports carry, and the exception tree handlers raise.

Exception tree::

    PlatformError                 code=internal
    ├── InvalidRequest            code=invalid_request   (HTTP 400)
    ├── InvalidMessage            code=invalid_message   (websocket frame failed validation)
    ├── UnknownType               code=unknown_type
    ├── IdReuse                   code=id_reuse
    ├── UnsupportedProtocol       code=unsupported_protocol
    ├── Unauthorized              code=unauthorized      (HTTP 401)
    ├── Forbidden                 code=forbidden         (HTTP 403)
    ├── NotFound                  code=not_found         (HTTP 404)
    ├── Conflict                  code=conflict          (HTTP 409)
    ├── PayloadTooLarge           code=payload_too_large (HTTP 413)
    ├── Timeout                   code=timeout           (HTTP 504)
    ├── Unavailable               code=unavailable       (HTTP 503)
    ├── RuntimeFailed             code=runtime_failed    (HTTP 502)
    ├── RateLimited               code=rate_limited      (HTTP 429, retriable)
    └── RequestTimeout            code=request_timeout   (HTTP 408, the client was too slow)

Codes are append-only. ``details`` may gain keys; the body's top-level keys never change.
Secrets and key material never go into ``message`` or ``details``.
"""

from enum import StrEnum
from typing import Any, ClassVar

from shared.wire import Field, WireModel


class ErrorCode(StrEnum):
    """Stable machine-readable error codes shared by HTTP and websocket errors."""

    INVALID_REQUEST = "invalid_request"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    ID_REUSE = "id_reuse"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    RUNTIME_FAILED = "runtime_failed"
    INTERNAL = "internal"
    RATE_LIMITED = "rate_limited"
    REQUEST_TIMEOUT = "request_timeout"


RETRIABLE_CODES = frozenset({ErrorCode.TIMEOUT, ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED})


class ErrorBody(WireModel):
    """The error object carried by every HTTP error response and every websocket error frame."""

    code: ErrorCode = Field(description="Stable machine-readable code.")
    message: str = Field(description="Human-readable explanation; never contains a secret.")
    retriable: bool = Field(default=False, description="Whether repeating the call may succeed.")
    details: dict[str, Any] = Field(default_factory=dict, description="Extra structured context.")


class PlatformError(Exception):
    """Base of every error a handler raises on purpose; carries a stable code."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_body(self) -> ErrorBody:
        """Return the wire body for this error."""
        return ErrorBody(
            code=self.code,
            message=self.message,
            retriable=self.code in RETRIABLE_CODES,
            details=self.details,
        )


class InvalidRequest(PlatformError):
    """An HTTP request body, query or path parameter failed validation."""

    code = ErrorCode.INVALID_REQUEST


class InvalidMessage(PlatformError):
    """A websocket frame was not JSON or did not match its message schema."""

    code = ErrorCode.INVALID_MESSAGE


class UnknownType(PlatformError):
    """A websocket frame named a message type this side does not know."""

    code = ErrorCode.UNKNOWN_TYPE


class IdReuse(PlatformError):
    """A websocket frame reused or went back on a message id."""

    code = ErrorCode.ID_REUSE


class UnsupportedProtocol(PlatformError):
    """The peer speaks no protocol version this side supports."""

    code = ErrorCode.UNSUPPORTED_PROTOCOL


class Unauthorized(PlatformError):
    """Credentials are missing, wrong, expired or revoked."""

    code = ErrorCode.UNAUTHORIZED


class Forbidden(PlatformError):
    """Credentials are valid but lack the permission for this operation."""

    code = ErrorCode.FORBIDDEN


class NotFound(PlatformError):
    """The addressed entity does not exist or is hidden from the caller."""

    code = ErrorCode.NOT_FOUND


class MethodNotAllowed(PlatformError):
    """The path exists but not with this HTTP method."""

    code = ErrorCode.METHOD_NOT_ALLOWED


class Conflict(PlatformError):
    """The request clashes with current state (duplicate name, wrong lifecycle state)."""

    code = ErrorCode.CONFLICT


class PayloadTooLarge(PlatformError):
    """A request body or frame exceeds the size limit."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class Timeout(PlatformError):
    """A peer did not answer within its deadline."""

    code = ErrorCode.TIMEOUT


class Unavailable(PlatformError):
    """A needed peer (for example the server's agent) is not connected."""

    code = ErrorCode.UNAVAILABLE


class RuntimeFailed(PlatformError):
    """The container runtime on the agent reported a failure."""

    code = ErrorCode.RUNTIME_FAILED


class RateLimited(PlatformError):
    """The caller spent its request budget; ``Retry-After`` says when to come back."""

    code = ErrorCode.RATE_LIMITED


class RequestTimeout(PlatformError):
    """The client did not send its request (for example its body) within the deadline."""

    code = ErrorCode.REQUEST_TIMEOUT


_BY_CODE: dict[ErrorCode, type[PlatformError]] = {
    cls.code: cls
    for cls in (
        PlatformError,
        InvalidRequest,
        InvalidMessage,
        UnknownType,
        IdReuse,
        UnsupportedProtocol,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        Timeout,
        Unavailable,
        RuntimeFailed,
        RateLimited,
        RequestTimeout,
    )
}


def error_from_body(body: ErrorBody) -> PlatformError:
    """Rebuild the matching exception from a received error body."""
    return _BY_CODE.get(body.code, PlatformError)(body.message, details=body.details)
