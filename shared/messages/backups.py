"""Backup messages: the coordinator pulls a database dump from the agent, and pushes one back
for a restore, one request per chunk (request/reply is the flow control: memory stays bounded)."""

from typing import Final, Literal

from shared.messages.dependencies import DependencyKind
from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

# Capability an agent advertises in ``hello.capabilities`` when it can dump and restore.
BACKUPS_CAPABILITY = "backups.v1"
# Raw bytes per chunk (base64 in ``data`` keeps a frame well under the link's 1 MiB limit).
MAX_CHUNK_BYTES = 384 * 1024

_ID = r"^[A-Za-z0-9_-]{1,40}$"
# A Berth named volume (``berth-`` + its id); never a user's text, never another volume.
_VOLUME = r"^berth-[a-z0-9_-]{1,60}$"
# Capability an agent advertises when it can back up and restore named volumes.
VOLUME_BACKUPS_CAPABILITY = "volume-backups.v1"
# Capability an agent advertises when it checks ``seq`` on ``backup_read``/``restore_write``:
# a coordinator then keeps several of them in flight (a window); with other agents, one.
BACKUP_WINDOW_CAPABILITY = "backups.window.v1"


class BackupTarget(WireModel):
    """Which database to dump or restore and how to log in (the password only travels here)."""

    dependency_resource_id: str = Field(pattern=_ID)
    kind: DependencyKind
    database_name: str = Field(min_length=1, max_length=100)
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(max_length=500)


class BackupOpen(WireModel):
    """Coordinator → agent: start a logical dump (``pg_dump -Fc``) of ``target``; its bytes
    are then read with ``backup_read``. Answered by ``backup_reply``."""

    type: Literal["backup_open"] = "backup_open"
    id: int
    backup_id: str = Field(pattern=_ID)
    target: BackupTarget


class BackupRead(WireModel):
    """Coordinator → agent: the next bytes of dump ``backupId`` (``eof`` once it ended and the
    dump command exited 0; ``failed`` when it exited otherwise). Answered by ``backup_reply``.
    ``seq`` (0, 1, 2, ... per transfer) lets several reads be in flight: an agent that
    advertises ``backups.window.v1`` answers them in that order and refuses any other; past the
    end it answers ``eof`` again. Without it, one read at a time."""

    type: Literal["backup_read"] = "backup_read"
    id: int
    backup_id: str = Field(pattern=_ID)
    seq: int | None = Field(default=None, ge=0)


class RestoreOpen(WireModel):
    """Coordinator → agent: a restore of ``size`` bytes into ``target`` starts; the bytes follow
    in ``restore_write`` frames, then ``restore_finish`` runs the restore. ``backup_reply``."""

    type: Literal["restore_open"] = "restore_open"
    id: int
    backup_id: str = Field(pattern=_ID)
    target: BackupTarget
    size: int = Field(ge=0)


class RestoreWrite(WireModel):
    """Coordinator → agent: the next bytes of restore ``backupId`` (standard base64).
    ``seq`` (0, 1, 2, ... per transfer) lets several writes be in flight: an agent that
    advertises ``backups.window.v1`` refuses one out of order (and ends the transfer)."""

    type: Literal["restore_write"] = "restore_write"
    id: int
    backup_id: str = Field(pattern=_ID)
    data: str = Field(max_length=MAX_CHUNK_BYTES * 4 // 3 + 4)
    seq: int | None = Field(default=None, ge=0)


class RestoreFinish(WireModel):
    """Coordinator → agent: every byte was sent; restore it into the database
    (``pg_restore --clean --if-exists``) and answer when it is done. With ``check`` the reply
    also carries the restored database's table and row counts (a verification)."""

    type: Literal["restore_finish"] = "restore_finish"
    id: int
    backup_id: str = Field(pattern=_ID)
    check: bool = False


class BackupAbort(WireModel):
    """Coordinator → agent: stop dump or restore ``backupId`` and remove what it left."""

    type: Literal["backup_abort"] = "backup_abort"
    id: int
    backup_id: str = Field(pattern=_ID)


class VolumeManifest(WireModel):
    """What a volume's tar archive holds: every entry, the regular files and their bytes, and
    the SHA-256 of the sorted ``type size path`` lines (a renamed or missing file changes it)."""

    entries: int = Field(ge=0)
    files: int = Field(ge=0)
    file_bytes: int = Field(ge=0)
    paths_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class BackupReply(WireModel):
    """Agent → coordinator reply to every backup request: ``ok`` (with ``data`` for a read),
    or ``failed`` with the reason."""

    type: Literal["backup_reply"] = "backup_reply"
    id: int
    re: int
    backup_id: str = Field(pattern=_ID)
    status: Literal["ok", "failed"]
    data: str = Field(default="", max_length=MAX_CHUNK_BYTES * 4 // 3 + 4)
    eof: bool = False
    message: str = Field(default="", max_length=2000)
    tables: int | None = Field(default=None, ge=0)
    rows: int | None = Field(default=None, ge=0)
    # A volume archive's census: on the last ``backup_read`` of a volume backup, and on the
    # ``restore_finish`` of a volume verification (absent from agents before it).
    manifest: VolumeManifest | None = None


class VolumeBackupOpen(WireModel):
    """Coordinator → agent: start reading Docker named volume ``volumeName`` as a tar stream
    (mounted read-only in a helper container); its bytes are then read with ``backup_read``.
    With ``stopContainers`` the running containers using the volume are stopped for the copy
    and started again when it ends (a copy no writer changes meanwhile)."""

    type: Literal["volume_backup_open"] = "volume_backup_open"
    id: int
    backup_id: str = Field(pattern=_ID)
    volume_name: str = Field(pattern=_VOLUME)
    stop_containers: bool = False


class VolumeRestoreOpen(WireModel):
    """Coordinator → agent: a tar stream of ``size`` bytes for volume ``volumeName`` follows in
    ``restore_write`` frames (into a staging volume); ``restore_finish`` then empties the volume
    and fills it from the staging volume. Answered by ``backup_reply``."""

    type: Literal["volume_restore_open"] = "volume_restore_open"
    id: int
    backup_id: str = Field(pattern=_ID)
    volume_name: str = Field(pattern=_VOLUME)
    size: int = Field(ge=0)


class VolumeVerifyOpen(WireModel):
    """Coordinator → agent: a tar stream of ``size`` bytes follows in ``restore_write`` frames,
    written into a throwaway volume; ``restore_finish`` then reads that volume back, answers
    with its ``manifest`` and removes it (no volume of the server is touched). Agents before
    it answer with an ``unknown message type`` error."""

    type: Literal["volume_verify_open"] = "volume_verify_open"
    id: int
    backup_id: str = Field(pattern=_ID)
    size: int = Field(ge=0)


# The ``backup_reply`` message of a ``volume_restore_settle`` the agent cannot answer.
REPLACE_UNKNOWN: Final = "no replace of this restore is known to the agent"


class VolumeRestoreSettle(WireModel):
    """Coordinator → agent, after the link was lost while the agent replaced a volume (after
    ``restore_finish``): how did the replace of restore ``backupId`` end? The agent waits for
    a replace still running (or redone on its start) and answers ``backup_reply`` ``ok``, or
    ``failed`` with the reason, or ``failed`` with message ``REPLACE_UNKNOWN`` when it knows
    nothing of it (e.g. restarted since). Agents before it answer with an ``unknown message
    type`` error."""

    type: Literal["volume_restore_settle"] = "volume_restore_settle"
    id: int
    backup_id: str = Field(pattern=_ID)


BackupsCoordinatorMessage = (
    BackupOpen
    | BackupRead
    | RestoreOpen
    | RestoreWrite
    | RestoreFinish
    | BackupAbort
    | VolumeBackupOpen
    | VolumeRestoreOpen
    | VolumeVerifyOpen
    | VolumeRestoreSettle
)
BackupsAgentMessage = BackupReply
BACKUPS_COORDINATOR_TYPES = message_types(BackupsCoordinatorMessage)
BACKUPS_AGENT_TYPES = message_types(BackupsAgentMessage)
