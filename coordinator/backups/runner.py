"""Running backups and restores: pull a dump from the database's agent chunk by chunk into an
encrypted artifact, or push an artifact back, one request per chunk with a few in flight
(coordinator/backups/window.py; bounded memory both ways).

A backup is ``ready`` only after its artifact was completely written, fsynced and renamed into
place; anything else (the agent's link lost, the dump failing, a coordinator restart) ends it
``failed`` with a reason and removes the partial file.
"""

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from coordinator.backups import target_records
from coordinator.backups.artifacts import ArtifactDamaged, load_key
from coordinator.backups.targets import ArtifactSink, ArtifactStore, CoordinatorStore
from coordinator.backups.window import read_replies, window_of, write_chunks
from coordinator.db.backup_models import DependencyBackup
from coordinator.db.dependency_models import DependencyResource
from coordinator.dependencies import kinds
from coordinator.dependencies.realize import (
    READY_TIMEOUT_SECONDS,
    REMOVE_TIMEOUT_SECONDS,
    reveal_url,
)
from coordinator.hub.registry import Registry
from coordinator.hub.session import AgentSession
from coordinator.outbound import OutboundGuard
from coordinator.secrets import Keyring
from coordinator.settings import Settings
from shared.errors import PlatformError, RuntimeFailed
from shared.messages import (
    MAX_CHUNK_BYTES,
    BackupAbort,
    BackupOpen,
    BackupReply,
    BackupTarget,
    CoordinatorMessage,
    DependencyEnsure,
    DependencyRemove,
    DependencyStatus,
    RestoreFinish,
    RestoreOpen,
)

logger = logging.getLogger(__name__)

CHUNK_TIMEOUT_SECONDS: Final = 120.0
# pg_restore of a large database runs long after the last byte arrived.
FINISH_TIMEOUT_SECONDS: Final = 6 * 3600.0


class TransferFailed(RuntimeFailed):
    """The agent answered a backup request with ``failed`` (``runtime_failed``)."""


def _now() -> datetime:
    return datetime.now(UTC)


class BackupRunner:
    """Background backups and restores; what a restart interrupted is failed at start-up."""

    def __init__(
        self,
        registry: Registry,
        keyring: Keyring,
        settings: Settings,
        guard: Callable[[], OutboundGuard] = OutboundGuard,
    ) -> None:
        self.registry = registry
        self.guard = guard
        self.keyring = keyring
        self.key_file = settings.backup_key_file or settings.data_dir / "backup.key"
        self.root = settings.backup_dir or settings.data_dir / "backups"
        self._key: bytes | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Artifacts being written, so that ``close`` releases any a cancelled pull left open.
        self._sinks: dict[str, ArtifactSink] = {}
        # Told (event type, backup id) of each outcome: backup.succeeded, backup.failed,
        # backup.verified, backup.verification-failed, restore.succeeded, restore.failed.
        self.outcome_hooks: list[Callable[[str, str], Awaitable[None]]] = []

    async def _told(self, outcome: str, backup_id: str) -> None:
        for hook in self.outcome_hooks:
            await hook(outcome, backup_id)

    @property
    def key(self) -> bytes:
        """The operator's key (read, or created, on first use)."""
        if self._key is None:
            self._key = load_key(self.key_file)
        return self._key

    def artifact_path(self, backup_id: str) -> Path:
        """Where the artifact of ``backup_id`` lives on the coordinator."""
        return self.root / f"{backup_id}.berthbk"

    async def store(self, backup_target_id: str | None) -> ArtifactStore:
        """The store of a backup's target: the coordinator's storage when none was named."""
        if backup_target_id is None:
            return CoordinatorStore(self.root, self.key)
        return await target_records.store_of(
            backup_target_id, self.keyring, self.key, self.guard(), self.registry
        )

    async def pull(
        self,
        session: AgentSession,
        backup_id: str,
        store: ArtifactStore,
        opening: Callable[[int], CoordinatorMessage],
        on_eof: Callable[[BackupReply], None] | None = None,
    ) -> tuple[ArtifactSink, str]:
        """Open a transfer on the agent, pull it chunk by chunk into a new artifact in
        ``store``; the finished sink and the artifact's SHA-256. Nothing is left on failure.
        ``on_eof`` is shown the last reply (a volume archive's manifest rides on it)."""
        sink = self._sinks[backup_id] = await store.open_writer(backup_id)
        try:
            await self.ask(session, opening, CHUNK_TIMEOUT_SECONDS)
            window = window_of(session)
            replies = read_replies(session, backup_id, window, self.ask, CHUNK_TIMEOUT_SECONDS)
            async with aclosing(replies):
                async for reply in replies:
                    if reply.eof:
                        if on_eof is not None:
                            on_eof(reply)
                        break
                    await sink.add(base64.b64decode(reply.data))
            sha256 = await sink.finish()
        except BaseException:
            await sink.discard()
            raise
        finally:
            self._sinks.pop(backup_id, None)
        return sink, sha256

    async def send(
        self,
        session: AgentSession,
        key: str,
        backup_id: str,
        sha256: str,
        store: ArtifactStore,
    ) -> None:
        """Stream ``backup_id``'s artifact, decrypted and checked, as transfer ``key`` (already
        opened on the agent), one request per chunk, a window of them in flight."""

        async def encoded(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str]:
            # Full frames whatever the records' sizes (older artifacts hold records of a few
            # KiB); the tail goes only after the artifact's checksum matched (the reader's end).
            pending = bytearray()
            async for plain in chunks:
                pending += plain
                while len(pending) >= MAX_CHUNK_BYTES:
                    yield base64.b64encode(pending[:MAX_CHUNK_BYTES]).decode("ascii")
                    del pending[:MAX_CHUNK_BYTES]
            if pending:
                yield base64.b64encode(pending).decode("ascii")

        window = window_of(session)
        # Closed also when the agent fails midway: the target's connection is released at once.
        async with aclosing(store.read(backup_id, sha256)) as chunks:
            frames = encoded(chunks)
            async with aclosing(frames):
                await write_chunks(session, key, frames, window, self.ask, CHUNK_TIMEOUT_SECONDS)

    def spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_backup(self, backup_id: str) -> None:
        """Take the backup in the background."""
        self.spawn(self.backup(backup_id))

    def start_verify(self, backup_id: str) -> None:
        """Verify the backup in the background."""
        self.spawn(self.verify(backup_id))

    def start_restore(self, backup_id: str, into_id: str) -> None:
        """Restore in the background into dependency resource ``into_id``."""
        self.spawn(self.restore(backup_id, into_id))

    async def close(self) -> None:
        """Cancel what runs; the next start marks it failed."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # A pull cancelled before its own discard ran must not leave its partial file.
        for backup_id, sink in list(self._sinks.items()):
            self._sinks.pop(backup_id, None)
            with contextlib.suppress(Exception):
                await sink.discard()

    async def fail_interrupted(self) -> None:
        """Fail backups and restores a previous run left unfinished (and their partial files)."""
        now = _now()
        backups = await DependencyBackup.filter(status="pending").values_list("id", flat=True)
        restores = await DependencyBackup.filter(restore_status="pending").values_list(
            "id", flat=True
        )
        checks = await DependencyBackup.filter(verification_status="pending").values_list(
            "id", flat=True
        )
        for backup_id in backups:
            self.artifact_path(str(backup_id)).with_suffix(".berthbk.partial").unlink(
                missing_ok=True
            )
        reason = "the coordinator restarted during the transfer"
        await DependencyBackup.filter(status="pending").update(
            status="failed", failed_at=now, failure_code="interrupted", failure_message=reason
        )
        await DependencyBackup.filter(restore_status="pending").update(
            restore_status="failed",
            restore_failed_at=now,
            restore_failure_code="interrupted",
            restore_failure_message=reason,
        )
        await DependencyBackup.filter(verification_status="pending").update(
            verification_status="failed", verified_at=now, verification_message=reason
        )
        for outcome, ids in (
            ("backup.failed", backups),
            ("restore.failed", restores),
            ("backup.verification-failed", checks),
        ):
            for backup_id in ids:
                await self._told(outcome, str(backup_id))

    def _target(self, row: DependencyResource) -> BackupTarget:
        url = urlsplit(reveal_url(self.keyring, row))
        return BackupTarget(
            dependency_resource_id=row.id,
            kind=row.kind,  # type: ignore[arg-type]
            database_name=row.database_name or "postgres",
            username=row.username or "postgres",
            password=unquote(url.password or ""),
        )

    @staticmethod
    async def ask(
        session: AgentSession, build: Callable[[int], CoordinatorMessage], timeout: float
    ) -> BackupReply:
        reply = await session.request(build, timeout)
        if not isinstance(reply, BackupReply):
            raise TransferFailed(f"the agent answered {reply.type!r}")
        if reply.status != "ok":
            raise TransferFailed(reply.message or "the agent reported a failure")
        return reply

    @staticmethod
    async def abort(session: AgentSession | None, backup_id: str) -> None:
        if session is None:
            return
        try:
            await session.request(lambda mid: BackupAbort(id=mid, backup_id=backup_id), 10.0)
        except PlatformError as exc:  # the link is gone: the agent ended the transfer itself
            logger.debug("abort of %s not delivered: %s", backup_id, exc)

    async def backup(self, backup_id: str) -> None:
        """Pull the dump of the backup's database into a new encrypted artifact."""
        row = await DependencyBackup.get(id=backup_id)
        database = await DependencyResource.get(id=row.dependency_resource_id)
        session: AgentSession | None = None
        try:
            store = await self.store(row.backup_target_id)
            session = self.registry.require(row.server_id)
            target = self._target(database)
            sink, sha256 = await self.pull(
                session,
                backup_id,
                store,
                lambda mid: BackupOpen(id=mid, backup_id=backup_id, target=target),
            )
        except asyncio.CancelledError:
            raise
        except (PlatformError, OSError, ValueError) as exc:
            await self.abort(session, backup_id)
            code = str(exc.code) if isinstance(exc, PlatformError) else "artifact-write-failed"
            logger.warning("backup %s failed: %s", backup_id, exc)
            await DependencyBackup.filter(id=backup_id).update(
                status="failed",
                failed_at=_now(),
                failure_code=code[:64],
                failure_message=str(exc)[:2000],
            )
            await self._told("backup.failed", backup_id)
            return
        await DependencyBackup.filter(id=backup_id).update(
            status="ready",
            completed_at=_now(),
            artifact_handle=store.handle(backup_id),
            size_bytes=sink.size,
            plain_bytes=sink.plain_bytes,
            sha256=sha256,
        )
        await self._told("backup.succeeded", backup_id)

    async def _push(
        self,
        session: AgentSession,
        key: str,
        row: DependencyBackup,
        target: BackupTarget,
        check: bool,
    ) -> BackupReply:
        """Send the artifact of ``row`` as transfer ``key`` and run the restore there."""
        await self.ask(
            session,
            lambda mid: RestoreOpen(
                id=mid, backup_id=key, target=target, size=row.plain_bytes or 0
            ),
            CHUNK_TIMEOUT_SECONDS,
        )
        store = await self.store(row.backup_target_id)
        await self.send(session, key, row.id, row.sha256 or "", store)
        # Every record decrypted and the checksum matched: only now is anything replaced.
        return await self.ask(
            session,
            lambda mid: RestoreFinish(id=mid, backup_id=key, check=check),
            FINISH_TIMEOUT_SECONDS,
        )

    async def restore(self, backup_id: str, into_id: str) -> None:
        """Push the artifact into dependency resource ``into_id`` and run the restore there."""
        row = await DependencyBackup.get(id=backup_id)
        database = await DependencyResource.get(id=into_id)
        session: AgentSession | None = None
        try:
            if database.server_id is None:
                raise TransferFailed("the target database is not run by Berth")
            session = self.registry.require(database.server_id)
            await self._push(session, backup_id, row, self._target(database), check=False)
        except asyncio.CancelledError:
            raise
        except (PlatformError, OSError) as exc:
            await self.abort(session, backup_id)
            logger.warning("restore of %s failed: %s", backup_id, exc)
            await DependencyBackup.filter(id=backup_id).update(
                restore_status="failed",
                restore_failed_at=_now(),
                restore_failure_code=failure_code(exc),
                restore_failure_message=str(exc)[:2000],
            )
            await self._told("restore.failed", backup_id)
            return
        await DependencyBackup.filter(id=backup_id).update(
            restore_status="ready", restore_completed_at=_now()
        )
        await self._told("restore.succeeded", backup_id)

    async def verify(self, backup_id: str) -> None:
        """Restore the backup into a throwaway database on its server, count its tables and
        rows, record the result on the backup, and remove the throwaway database."""
        row = await DependencyBackup.get(id=backup_id)
        source = await DependencyResource.get(id=row.dependency_resource_id)
        scratch = f"vrf-{backup_id}"
        creds = kinds.Credentials(source.username, kinds.new_password(), source.database_name)
        container = kinds.container_for(
            kinds.spec_of(source.kind),
            source.image or "",
            creds,
            cpus=source.cpus,
            memory_bytes=source.memory_bytes,
            publish_port=False,
            labels={
                "berth.dependency": "true",
                "berth.dependency-resource-id": scratch,
                "berth.backup-verification": backup_id,
            },
        )
        session: AgentSession | None = None
        failure: PlatformError | OSError | None = None
        reply: BackupReply | None = None
        try:
            session = self.registry.require(row.server_id)
            ready = await session.request(
                lambda mid: DependencyEnsure(
                    id=mid,
                    dependency_resource_id=scratch,
                    container=container,
                    ready_timeout_seconds=READY_TIMEOUT_SECONDS,
                ),
                READY_TIMEOUT_SECONDS + 30.0,
            )
            if not isinstance(ready, DependencyStatus) or ready.status != "ready":
                text = ready.message if isinstance(ready, DependencyStatus) else ready.type
                raise TransferFailed(f"the throwaway database did not start: {text}")
            target = BackupTarget(
                dependency_resource_id=scratch,
                kind=container.kind,
                database_name=creds.database_name or "postgres",
                username=creds.username or "postgres",
                password=creds.password,
            )
            reply = await self._push(session, scratch, row, target, check=True)
        except asyncio.CancelledError:
            raise
        except (PlatformError, OSError) as exc:
            await self.abort(session, scratch)
            failure = exc
        finally:
            # Removed before the result is recorded: a recorded result means it is gone.
            await self._remove_scratch(session, scratch)
        if failure is not None:
            logger.warning("verification of %s failed: %s", backup_id, failure)
            await DependencyBackup.filter(id=backup_id).update(
                verification_status="failed",
                verified_at=_now(),
                verification_tables=None,
                verification_rows=None,
                verification_message=f"{failure_code(failure)}: {failure}"[:2000],
            )
            await self._told("backup.verification-failed", backup_id)
            return
        if reply is None:  # pragma: no cover - every path above returned or set it
            return
        await DependencyBackup.filter(id=backup_id).update(
            verification_status="passed",
            verified_at=_now(),
            verification_tables=reply.tables,
            verification_rows=reply.rows,
            verification_message=f"restored {reply.tables} table(s) with {reply.rows} row(s)",
        )
        await self._told("backup.verified", backup_id)

    @staticmethod
    async def _remove_scratch(session: AgentSession | None, scratch: str) -> None:
        if session is None:
            return
        try:
            await session.request(
                lambda mid: DependencyRemove(id=mid, dependency_resource_id=scratch),
                REMOVE_TIMEOUT_SECONDS,
            )
        except PlatformError as exc:  # the agent is gone; the container stays labelled
            logger.warning("could not remove verification database %s: %s", scratch, exc)


def failure_code(exc: BaseException) -> str:
    if isinstance(exc, ArtifactDamaged):
        return "artifact-damaged"
    return (str(exc.code) if isinstance(exc, PlatformError) else "io-error")[:64]


class BackupListener:
    """The backups capability on the agent links: replies only (resolved by the session), so
    nothing to consume; a link that closes fails the transfers waiting on it (the session)."""

    @property
    def message_types(self) -> frozenset[str]:
        """None: ``backup_reply`` frames are replies."""
        return frozenset()

    async def on_message(self, session: AgentSession, message: Any) -> None:
        """Never called (no unsolicited frames)."""

    async def on_connected(self, session: AgentSession, hello: Any) -> None:
        """Nothing resumes: a transfer the link lost already failed."""

    def on_disconnected(self, session: AgentSession) -> None:
        """Nothing to do: the session fails the requests in flight (``unavailable``)."""
