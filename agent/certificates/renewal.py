"""Forced renewal of a valid managed certificate through Caddy 2.6, which has no command for it.

Caddy renews a certificate once the renewal window of the automation policy that covers its
name has begun (by default the last third of its lifetime), and checks that at every config
load. So the agent puts a policy for the name in front of the others, with the same issuers and
a ``renewal_window_ratio`` chosen so that the current certificate is inside its window and the
renewed one (which expires later) is not: one renewal, even if Caddy reloads its config again
before the agent takes the policy out. It takes it out as soon as the renewed certificate is
in the storage, or after ``MAX_SECONDS`` (a renewal that failed is reported from Caddy's log as
any failed order is). Checked against a real Caddy and Pebble in
``tests/integration/test_certificates_e2e.py``.

A newer Caddy (2.11.7) does not look at a cached certificate at a config load, so the policy
alone renews nothing there: the agent also has it read the certificate from storage again
(``cache_eviction``). Which Caddy it talks to is learnt from the first policy it writes, see
``_put_policy``.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from agent.certificates import cache_eviction
from agent.certificates.caddy_logs import CaddyAdmin
from shared.messages.certificates import CertificateObservation

logger = logging.getLogger(__name__)

POLICY_ID_PREFIX: Final = "berth-renew-"
_POLICIES: Final = "/config/apps/tls/automation/policies"
# How long a renewal policy stays when the renewed certificate never shows.
MAX_SECONDS: Final = 600.0
# How much later than the current certificate's the renewed one's expiry must be to fall
# outside the window (it is issued after the policy is written, so it expires later by at
# least the current one's age): the margin keeps the ratio from renewing it again.
_MARGIN_SECONDS: Final = 60.0
_MAX_RATIO: Final = 0.999999999999
# A policy field the Caddy generation that keeps its certificate cache across config loads
# knows and Caddy 2.6 refuses by name (``json: unknown field "reuse_private_keys"``); written
# with its default value, so it changes nothing where it is taken.
_PROBE_FIELD: Final = "reuse_private_keys"


def policy_id(name: str) -> str:
    """The ``@id`` of ``name``'s renewal policy."""
    return POLICY_ID_PREFIX + name


def renewal_ratio(cert: CertificateObservation, now: datetime) -> float | None:
    """The ``renewal_window_ratio`` whose window holds ``now`` for ``cert`` but not for a
    certificate issued later; None when there is none (expired: Caddy renews it anyway; or
    too new to tell apart from its successor)."""
    lifetime = (cert.not_after - cert.not_before).total_seconds()
    remaining = (cert.not_after - now).total_seconds()
    age = (now - cert.not_before).total_seconds()
    margin = min(_MARGIN_SECONDS, age / 2)
    if lifetime <= 0 or remaining <= 0 or margin <= 0:
        return None
    return min((remaining + margin) / lifetime, _MAX_RATIO)


@dataclass
class _Renewing:
    fingerprint: str  # of the certificate being replaced
    until: float


class ForcedRenewals:
    """The names asked to renew, and the renewal policies the agent has in Caddy."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._wanted: set[str] = set()
        self._renewing: dict[str, _Renewing] = {}
        # Names skipped on these servers for a cache eviction and not yet managed again (an
        # unskip that failed is retried at every step: left skipped, Caddy would stop managing
        # the name altogether).
        self._skipped: dict[str, list[str]] = {}
        # Whether this Caddy needs the cache eviction (None: not learnt yet). True is checked
        # again at every renewal (the probe is always offered, so a Caddy 2.6 put back under a
        # running agent is noticed); False is kept for the agent's run, which saves Caddy 2.6
        # a refused write per renewal: a newer Caddy installed under a running agent is then
        # only noticed at the agent's restart (not verified: its maintenance may still renew
        # under the policy before the policy's MAX_SECONDS are up).
        self._evicts: bool | None = None

    def want(self, names: Iterable[str]) -> None:
        """Renew these names' certificates at the next step."""
        self._wanted.update(names)

    @property
    def busy(self) -> bool:
        """Whether a step has work: names to renew, or policies to take out."""
        return bool(self._wanted or self._renewing or self._skipped)

    async def step(self, admin: CaddyAdmin, stored: Mapping[str, CertificateObservation]) -> None:
        """Take out the policies whose renewal is stored (or overdue), then put in the wanted
        names' policies. ``OSError`` when Caddy cannot be reached (the next step retries)."""
        for name in list(self._skipped):
            await self._unskip(admin, name)
        for name, renewing in list(self._renewing.items()):
            now_stored = stored.get(name)
            # By fingerprint: X.509 times have whole seconds, and a certificate renewed within
            # the second it was issued has the same ones.
            renewed = now_stored is not None and now_stored.fingerprint != renewing.fingerprint
            if renewed or self._clock() > renewing.until:
                status, answer = await admin.call("DELETE", f"/id/{policy_id(name)}")
                if status >= 400 and status != 404:
                    raise OSError(f"Caddy refused to drop {name}'s renewal policy: {answer}")
                del self._renewing[name]
                if not renewed:
                    logger.warning("no renewed certificate for %s was stored in time", name)
        if not self._wanted:
            return
        issuers = await self._issuers(admin)
        for name in sorted(self._wanted):
            cert = stored.get(name)
            ratio = renewal_ratio(cert, datetime.now(UTC)) if cert is not None else None
            if cert is None or ratio is None or name in self._renewing:
                logger.info("%s: no certificate to renew early (or renewing already)", name)
                self._wanted.discard(name)
                continue
            policy = {
                "@id": policy_id(name),
                "subjects": [name],
                "issuers": issuers,
                "renewal_window_ratio": ratio,
            }
            await self._put_policy(admin, name, policy)
            self._renewing[name] = _Renewing(cert.fingerprint, self._clock() + MAX_SECONDS)
            self._wanted.discard(name)
            if self._evicts:
                await self._evict(admin, name)

    async def _evict(self, admin: CaddyAdmin, name: str) -> None:
        """Have this Caddy drop ``name``'s cached certificate and read it from storage again,
        under the renewal policy just put in (see ``cache_eviction``)."""
        servers = await cache_eviction.managing_servers(admin, name)
        self._skipped[name] = servers
        try:
            await cache_eviction.skip(admin, name, servers)
        finally:
            await self._unskip(admin, name)

    async def _unskip(self, admin: CaddyAdmin, name: str) -> None:
        await cache_eviction.unskip(admin, name, self._skipped[name])
        del self._skipped[name]

    async def _put_policy(self, admin: CaddyAdmin, name: str, policy: dict[str, Any]) -> None:
        """Insert ``policy`` first (PUT at an index inserts: the first policy naming it
        applies), learning on the way whether this Caddy needs the cache eviction.

        Caddy reports no version in a structured form, so the agent offers the newer form
        (with ``_PROBE_FIELD``) and falls back on a refusal that names that field: Caddy 2.6
        refuses the whole write and keeps its config, so nothing changed there but one refusal.
        """
        if self._evicts is not False:
            status, answer = await admin.call(
                "PUT", f"{_POLICIES}/0", {**policy, _PROBE_FIELD: False}
            )
            if status < 400:
                self._evicts = True
                return
            said = str(answer)
            # Caddy 2.6.2 answers a config it cannot load with 500, not 400: the message decides.
            if "unknown field" not in said or _PROBE_FIELD not in said:
                raise OSError(f"Caddy refused {name}'s renewal policy: {answer}")
            logger.info("Caddy re-reads stored certificates at each config load: no eviction")
            self._evicts = False
        status, answer = await admin.call("PUT", f"{_POLICIES}/0", policy)
        if status >= 400:
            raise OSError(f"Caddy refused {name}'s renewal policy: {answer}")

    @staticmethod
    async def _issuers(admin: CaddyAdmin) -> list[Any]:
        """The issuers of the catch-all policy (the last one, naming no subjects)."""
        status, policies = await admin.call("GET", _POLICIES)
        if status == 200 and isinstance(policies, list):
            for policy in reversed(policies):
                if isinstance(policy, dict) and not policy.get("subjects"):
                    issuers = policy.get("issuers")
                    if isinstance(issuers, list) and issuers:
                        return issuers
        raise OSError("Caddy's TLS automation has no catch-all policy with issuers")
