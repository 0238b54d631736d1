"""Each organization's server ids, cached for reads that span a whole fleet."""

import time
from typing import Final

from coordinator.db import models, read_connection

# Servers created or deleted other than through the servers API (a second coordinator on the
# same PostgreSQL database, a repair by hand) show up after at most this long.
MAX_AGE_SECONDS: Final = 30.0


class ServerRoster:
    """Sorted server ids per organization, read once and kept until the servers API reports a
    change (``changed``) or ``MAX_AGE_SECONDS`` pass.

    Why: a rollup over a whole organization of 10,000 servers read and sorted every id on
    every request, several milliseconds of the event loop each time, for a list that changes
    when an operator registers or deletes a server.
    """

    def __init__(self, max_age: float = MAX_AGE_SECONDS) -> None:
        self.max_age = max_age
        self._ids: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._generation: dict[str, int] = {}

    def changed(self, organization_id: str) -> None:
        """A server of ``organization_id`` was created or deleted (call after the commit)."""
        self._generation[organization_id] = self._generation.get(organization_id, 0) + 1
        _ = self._ids.pop(organization_id, None)

    async def ids(self, organization_id: str) -> tuple[str, ...]:
        """The organization's server ids, sorted."""
        now = time.monotonic()
        found = self._ids.get(organization_id)
        if found is not None and now - found[0] < self.max_age:
            return found[1]
        generation = self._generation.get(organization_id, 0)
        rows = (
            await models.Server.filter(organization_id=organization_id)
            .using_db(read_connection())
            .values_list("id", flat=True)
        )
        ids = tuple(sorted(str(i) for i in rows))
        # A change committed while this read ran may be missing from it: not kept then.
        if self._generation.get(organization_id, 0) == generation:
            self._ids[organization_id] = (now, ids)
        return ids
