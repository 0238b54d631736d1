"""Request rate limits: token buckets per API token and per client address, in bounded memory.

Every HTTP request is charged to one bucket, chosen by what the request is:

* ``bootstrap`` (``POST /bootstrap/...``) and ``enroll`` (agent enrollment): per client
  address, tight, since both are unauthenticated and create credentials;
* ``token``: requests carrying a bearer token (or a login session's cookie), per token (keyed
  by the token's SHA-256, so the secret itself is never kept), generous;
* ``anonymous``: everything else without a token, per client address.

A token the limiter does not know (never seen, or forgotten after a 401) is first charged to
a per-address bucket (with the anonymous budget); once that is empty, unknown tokens from the
address are refused before they are looked up. So made-up tokens, each of which would get a
fresh bucket, cannot bypass the per-address limit, while neither anonymous traffic nor token
guessing locks out token holders already in use. Behind a reverse proxy every client has the
proxy's address unless the proxy is trusted (``--trusted-proxy``): then the client is the
nearest untrusted address in ``X-Forwarded-For``.

The agent websocket (``/agent/v1/connect``) is not rate limited: every agent proves itself by
signature right after the upgrade, fleets behind one NAT address must reconnect all at once
after a coordinator restart, and the cost of unauthenticated sockets is bounded by the
connection guard's header timeout and cap (``coordinator/connguard.py``).

A bucket holds ``limit`` requests and refills ``limit`` per ``window``. Buckets live in an LRU
map of at most ``max_keys`` entries; a bucket idle for a window is full, the same as no bucket,
so idle keys are dropped as traffic goes on, changing nothing for them. (Hand-written rather
than a library: the headers need the bucket's exact state, and the whole thing is a few dozen
lines without timers or threads.)
"""

import hashlib
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from coordinator.accounts.session_store import SESSION_COOKIE
from shared.errors import RateLimited, Unauthorized
from shared.version import AGENT_CONNECT_PATH, AGENT_ENROLL_PATH

LIMIT_HEADER: Final = "X-RateLimit-Limit"
REMAINING_HEADER: Final = "X-RateLimit-Remaining"
RESET_HEADER: Final = "X-RateLimit-Reset"
RETRY_AFTER_HEADER: Final = "Retry-After"
# About 300 bytes a key (bucket, LRU entry, key string): at most ~15 MiB per class.
DEFAULT_MAX_KEYS: Final = 50_000


@dataclass(slots=True)
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
        self.window = window_seconds
        self.rate = limit / window_seconds if limit > 0 else 0.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str, now: float) -> _Bucket:
        # The least recently used bucket, untouched for a window, is full again: drop it (one
        # per call, so idle keys drain while traffic lasts and memory follows active keys).
        if self._buckets:
            oldest_key, oldest = next(iter(self._buckets.items()))
            if oldest_key != key and now - oldest.updated >= self.window:
                del self._buckets[oldest_key]
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

    def knows(self, key: str) -> bool:
        """Whether ``key`` has a bucket (was charged recently enough not to be evicted)."""
        return key in self._buckets

    def forget(self, key: str) -> None:
        """Drop ``key``'s bucket."""
        self._buckets.pop(key, None)

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
    """The coordinator's limiter: one ``TokenBuckets`` per class.

    ``trusted_proxies`` are the networks of reverse proxies whose ``X-Forwarded-For`` names
    the client; from anyone else the header is ignored (it would let a client pick its key).
    """

    def __init__(
        self,
        limits: Limits,
        *,
        trusted_proxies: Sequence[str] = (),
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self.classes: dict[str, TokenBuckets] = {
            name: TokenBuckets(getattr(limits, name), max_keys=max_keys)
            for name in ("token", "anonymous", "bootstrap", "enroll")
        }
        # Failed authentications per address, with the anonymous budget: kept apart from the
        # anonymous bucket so that anonymous traffic cannot lock token holders out.
        self.failed = TokenBuckets(limits.anonymous, max_keys=max_keys)
        self.trusted = tuple(ipaddress.ip_network(net, strict=False) for net in trusted_proxies)

    def client_address(self, request: web.Request) -> str:
        """The peer address, or behind a trusted proxy the nearest untrusted forwarded one."""
        peer = request.remote or "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return client_key(peer)
        forwarded = request.headers.getall("X-Forwarded-For", [])
        hops = [hop.strip() for value in forwarded for hop in value.split(",")]
        for hop in reversed(hops):
            if hop and not self._is_trusted(hop):
                return client_key(hop[:64])
        return client_key(peer)

    def _is_trusted(self, address: str) -> bool:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self.trusted)

    def bucket_for(self, request: web.Request) -> tuple[str, str] | None:
        """(class, key) charged for ``request``, or None when it is not limited."""
        path = request.path
        if path == AGENT_CONNECT_PATH:
            return None
        # Bootstrap and enrollment are per address whatever headers come with them.
        if path == AGENT_ENROLL_PATH:
            return "enroll", self.client_address(request)
        if path.startswith("/bootstrap/") and request.method != "GET":
            return "bootstrap", self.client_address(request)
        bearer = _bearer(request)
        if bearer:
            return "token", hashlib.sha256(bearer.encode("utf-8")).hexdigest()
        return "anonymous", self.client_address(request)

    def admit(self, request: web.Request) -> Decision | None:
        """Charge ``request``; None when it is not limited (or its class is switched off)."""
        chosen = self.bucket_for(request)
        if chosen is None:
            return None
        name, key = chosen
        buckets = self.classes[name]
        if name == "token" and self.failed.limit > 0 and not buckets.knows(key):
            # A token not seen before costs its address: made-up tokens, each with a fresh
            # bucket of its own, cannot bypass the per-address limit.
            paid = self.failed.charge(self.client_address(request))
            if not paid.allowed:
                return paid
        if buckets.limit <= 0:
            return None
        return buckets.charge(key)

    def failed_authentication(self, request: web.Request) -> None:
        """A 401 for a bearer token: forget it, so that its next use costs the address again."""
        chosen = self.bucket_for(request)
        if chosen is not None and chosen[0] == "token":
            self.classes["token"].forget(chosen[1])


def client_key(address: str) -> str:
    """An IPv4 address as is; an IPv6 one by its /64, which one client usually owns whole."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _bearer(request: web.Request) -> str:
    """The request's credential: its bearer token, or without one its session cookie (a login
    session is charged like a token, per secret, whichever way it is sent)."""
    if "Authorization" not in request.headers:
        return request.cookies.get(SESSION_COOKIE, "")
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
