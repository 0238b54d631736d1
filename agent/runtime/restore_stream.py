"""A PostgreSQL or MariaDB restore streamed into ``pg_restore``/``mariadb`` on its stdin, as the
chunks arrive over the agent link: no copy of the dump in the container, at most one chunk held.

The last chunk received is held back until the coordinator's ``restore_finish``, which it sends
only after every record decrypted and the artifact's checksum matched; so the command cannot
reach the end of its input before the whole artifact proved sound. PostgreSQL restores in one
transaction (``--single-transaction``): a restore cut off anywhere (damage, a lost link, an
agent restart) closes ``pg_restore``'s stdin mid-dump and nothing is replaced. MariaDB applies
the SQL as it arrives (its DDL commits implicitly), so a restore cut off midway leaves the
tables restored so far; it is reported failed with the reason.
"""

from typing import Final

from agent.runtime import EngineError
from agent.runtime.backup_ops import commands
from agent.runtime.engine import EngineClient
from agent.runtime.exec_stdin import ExecStdin
from shared.messages import BackupTarget, dependency_names

# The kinds whose restore reads the dump on stdin (Redis swaps in an RDB file instead).
STREAMED_KINDS: Final = frozenset({"postgres", "mysql"})
_PG_RESTORE: Final = (
    "pg_restore",
    "--clean",
    "--if-exists",
    "--no-owner",
    "--single-transaction",
    "--exit-on-error",
)
# How long one chunk may wait for the command to read it (the coordinator gives up sooner).
WRITE_SECONDS: Final = 300.0


def restore_command(target: BackupTarget) -> list[str]:
    """The kind's restore reading the dump from stdin."""
    user, database = target.username, target.database_name
    match target.kind:
        case "postgres":
            return [*_PG_RESTORE, "-h", "127.0.0.1", "-U", user, "-d", database]
        case "mysql":
            return ["mariadb", "-h", "127.0.0.1", "-u", user, database]
        case _:
            raise EngineError(f"a restore of {target.kind} is not streamed")


class StreamedRestore:
    """One restore in flight: ``write`` each chunk, then ``finish``; ``cancel`` on any failure."""

    def __init__(self, running: ExecStdin, size: int) -> None:
        self._running = running
        self._size = size
        self._received = 0
        self._held: bytes | None = None

    @classmethod
    async def start(cls, api: EngineClient, target: BackupTarget, size: int) -> "StreamedRestore":
        """Start the kind's restore in the database's container, reading stdin."""
        name, _, _ = dependency_names(target.dependency_resource_id)
        running = await api.exec_stdin(name, restore_command(target), commands(target).env)
        return cls(running, size)

    async def write(self, chunk: bytes) -> None:
        """Send the chunk held back so far (waiting while the command is behind) and hold
        this one."""
        self._received += len(chunk)
        if self._received > self._size:
            raise EngineError("the restore sent more bytes than announced")
        if self._held:
            await self._running.write(self._held, WRITE_SECONDS)
        self._held = chunk

    async def finish(self) -> None:
        """Send the last chunk, end the input, and wait for the command: its exit code is
        checked and the tail of its output is the reason of a failure."""
        if self._received != self._size:
            raise EngineError(f"the restore ended after {self._received} of {self._size} bytes")
        if self._held:
            await self._running.write(self._held, WRITE_SECONDS)
        self._held = None
        code = await self._running.finish(timeout=None)
        if code != 0:
            raise EngineError(f"the restore exited with {code}: {self._running.output[-1000:]}")

    async def cancel(self) -> None:
        """End the input mid-dump (the command fails; PostgreSQL rolls back) and wait for it."""
        self._held = None
        await self._running.cancel()
