"""Request rate limits: token buckets per API token and per client address, in bounded memory.

Every HTTP request is charged to one bucket, chosen by what the request is:

* ``bootstrap`` (``POST /bootstrap/...``) and ``enroll`` (agent enrollment): per client
  address, tight, since both are unauthenticated and create credentials;
* ``token``: requests carrying a bearer token, per token (keyed by the token's SHA-256, so the
  secret itself is never kept), generous;
* ``anonymous``: everything else without a token, per client address.

A request whose token turns out to be invalid (401) is also charged to its address's anonymous
bucket afterwards, and once that bucket is empty a bearer request from the address is refused
before the token is looked up, so random tokens cannot bypass the per-address limit.

The agent websocket (``/agent/v1/connect``) is not rate limited: every agent proves itself by
signature right after the upgrade, fleets behind one NAT address must reconnect all at once
after a coordinator restart, and the cost of unauthenticated sockets is bounded by the
connection guard's header timeout and cap (``coordinator/connguard.py``).

A bucket holds ``limit`` requests and refills ``limit`` per ``window``. Buckets live in an LRU
map of at most ``max_keys`` entries; a full bucket is the same as no bucket, so evicting idle
keys changes nothing for them. (Hand-written rather than a library: the headers need the
bucket's exact state, and the whole thing is a few dozen lines without timers or threads.)
"""

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from shared.errors import RateLimited, Unauthorized
from shared.version import AGENT_CONNECT_PATH, AGENT_ENROLL_PATH

LIMIT_HEADER: Final = "X-RateLimit-Limit"
REMAINING_HEADER: Final = "X-RateLimit-Remaining"
RESET_HEADER: Final = "X-RateLimit-Reset"
RETRY_AFTER_HEADER: Final = "Retry-After"
DEFAULT_MAX_KEYS: Final = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Decision:
    """The outcome of charging one request: what the headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int  # Unix seconds at which the bucket is full again
    retry_after: int  # seconds until one request is allowed (0 when allowed)


class TokenBuckets:
    """Buckets of ``limit`` requests refilled at ``limit / window`` per second, one per key."""

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.rate = limit / window_seconds if limit > 0 else 0.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.limit), now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)  # least recently used
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.limit, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def charge(self, key: str, cost: float = 1.0) -> Decision:
        """Take ``cost`` from ``key``'s bucket if it holds that much; say what is left."""
        now = self._clock()
        bucket = self._refilled(key, now)
        allowed = bucket.tokens >= cost
        if allowed:
            bucket.tokens -= cost
        return self._decision(bucket, allowed, cost)

    def empty(self, key: str) -> bool:
        """Whether ``key``'s bucket cannot pay for one more request (without creating it)."""
        if key not in self._buckets:
            return False
        return self._refilled(key, self._clock()).tokens < 1.0

    def _decision(self, bucket: _Bucket, allowed: bool, cost: float) -> Decision:
        missing = self.limit - bucket.tokens
        wall = time.time()
        reset = wall + (missing / self.rate if self.rate else 0.0)
        retry = 0 if allowed else math.ceil((max(cost, 1.0) - bucket.tokens) / self.rate)
        return Decision(allowed, self.limit, int(bucket.tokens), math.ceil(reset), retry)


@dataclass(frozen=True)
class Limits:
    """Requests per minute of each class; 0 switches a class off."""

    token: int = 1200
    anonymous: int = 300
    bootstrap: int = 10
    enroll: int = 30


class RateLimiter:
    """The coordinator's limiter: one ``TokenBuckets`` per class."""

    def __init__(self, limits: Limits, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.classes: dict[str, TokenBuckets] = {
            name: TokenBuckets(getattr(limits, name), max_keys=max_keys)
            for name in ("token", "anonymous", "bootstrap", "enroll")
        }

    def bucket_for(self, request: web.Request) -> tuple[str, str] | None:
        """(class, key) charged for ``request``, or None when it is not limited."""
        path = request.path
        if path == AGENT_CONNECT_PATH:
            return None
        address = client_address(request)
        if path == AGENT_ENROLL_PATH:
            return "enroll", address
        if path.startswith("/bootstrap/") and request.method != "GET":
            return "bootstrap", address
        bearer = _bearer(request)
        if bearer:
            return "token", hashlib.sha256(bearer.encode("utf-8")).hexdigest()
        return "anonymous", address

    def admit(self, request: web.Request) -> Decision | None:
        """Charge ``request``; None when it is not limited (or its class is switched off)."""
        chosen = self.bucket_for(request)
        if chosen is None:
            return None
        name, key = chosen
        buckets = self.classes[name]
        if buckets.limit <= 0:
            return None
        if name == "token":
            # An address that spent its anonymous budget on failed tokens is refused outright.
            anonymous = self.classes["anonymous"]
            address = client_address(request)
            if anonymous.limit > 0 and anonymous.empty(address):
                return anonymous.charge(address)
        return buckets.charge(key)

    def failed_authentication(self, request: web.Request) -> None:
        """A 401: charge the request's address as if it had come without a token."""
        anonymous = self.classes["anonymous"]
        if anonymous.limit > 0:
            anonymous.charge(client_address(request))


def client_address(request: web.Request) -> str:
    """The peer address (the coordinator does not trust forwarding headers)."""
    return request.remote or "unknown"


def _bearer(request: web.Request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


_DECISION_KEY: Final = web.RequestKey("rate_limit_decision", Decision)
LIMITER_KEY: Final = web.AppKey("rate_limiter", RateLimiter)


def middleware_for(limiter: RateLimiter) -> Middleware:
    """The middleware (inside the error middleware, so a 429 gets the error envelope)."""

    @web.middleware
    async def rate_limit(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        decision = limiter.admit(request)
        if decision is not None:
            request[_DECISION_KEY] = decision
            if not decision.allowed:
                raise RateLimited(
                    "too many requests; retry after the Retry-After header's seconds",
                    details={"retryAfterSeconds": decision.retry_after},
                )
        try:
            return await handler(request)
        except Unauthorized:
            if _bearer(request):
                limiter.failed_authentication(request)
            raise

    return rate_limit


async def add_rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Signal handler: the bucket's state on every limited response, ``Retry-After`` on 429."""
    decision = request.get(_DECISION_KEY)
    if not isinstance(decision, Decision):
        return
    response.headers[LIMIT_HEADER] = str(decision.limit)
    response.headers[REMAINING_HEADER] = str(decision.remaining)
    response.headers[RESET_HEADER] = str(decision.reset_epoch)
    if not decision.allowed:
        response.headers[RETRY_AFTER_HEADER] = str(max(1, decision.retry_after))
