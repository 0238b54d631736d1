"""Attach tickets: random, short-lived, single-use credentials bound to one terminal session and
the actor that asked for them; only their SHA-256 is kept."""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from coordinator.auth import hash_token
from shared.errors import Unauthorized

TICKET_PREFIX: Final = "berth_tt_"


@dataclass(frozen=True)
class Ticket:
    """What a ticket unlocks: one session, for one owner, issued through one API token."""

    session_id: str
    owner_id: str
    expires_at: float
    token_id: str | None = None


class TicketBook:
    """Issued, not yet used tickets, by hash. ``clock`` is monotonic seconds (tests pass one)."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._by_hash: dict[str, Ticket] = {}

    def issue(
        self, session_id: str, owner_id: str, token_id: str | None = None
    ) -> tuple[str, float]:
        """Mint a ticket for ``session_id``/``owner_id`` asked for with API token ``token_id``;
        return it and its lifetime in seconds.

        Earlier unused tickets of the same session stay valid until they expire: a client that
        asked twice may use either, but each only once.
        """
        self.prune()
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        self._by_hash[hash_token(ticket)] = Ticket(
            session_id, owner_id, self._clock() + self._ttl, token_id
        )
        return ticket, self._ttl

    def redeem(self, ticket: str, session_id: str) -> Ticket:
        """Use ``ticket`` for ``session_id`` (it is gone afterwards); return what it unlocks.

        Raises ``Unauthorized`` for an unknown, used, expired or other session's ticket; the
        message does not say which, so a guesser learns nothing.
        """
        # Any presentation burns the ticket, even for the wrong session.
        found = self._by_hash.pop(hash_token(ticket), None)
        if (
            found is not None
            and found.session_id == session_id
            and found.expires_at > self._clock()
        ):
            return found
        raise Unauthorized("the terminal ticket is not valid (unknown, used or expired)")

    def revoke_session(self, session_id: str) -> None:
        """Forget every ticket of a session that closed."""
        self._by_hash = {k: t for k, t in self._by_hash.items() if t.session_id != session_id}

    def revoke_token(self, token_id: str) -> int:
        """Forget every ticket issued through API token ``token_id``; return how many."""
        kept = {k: t for k, t in self._by_hash.items() if t.token_id != token_id}
        voided = len(self._by_hash) - len(kept)
        self._by_hash = kept
        return voided

    def prune(self) -> None:
        """Drop expired tickets."""
        now = self._clock()
        self._by_hash = {k: t for k, t in self._by_hash.items() if t.expires_at > now}

    def __len__(self) -> int:
        return len(self._by_hash)
