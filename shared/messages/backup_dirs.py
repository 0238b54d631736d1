"""Server-directory backup target messages: the coordinator keeps encrypted artifacts in a
directory on a server, written and read by that server's agent one chunk per request
(request/reply is the flow control: memory stays bounded on both sides).

The bytes are the artifact's ciphertext: encryption stays on the coordinator, the agent only
ever stores and returns what it is sent. The agent writes only under directories its local
configuration allows (``BERTH_AGENT_BACKUP_DIRS``), whatever ``path`` says.
"""

from typing import Literal

from shared.messages.backups import MAX_CHUNK_BYTES
from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

# Capability an agent advertises when it can keep backup artifacts in a local directory.
BACKUP_DIRS_CAPABILITY = "backup-dirs.v1"
# Capability an agent advertises when it checks ``seq`` on ``backup_dir_write``/``_read``: a
# coordinator then keeps several of them in flight (a window); with other agents, one.
BACKUP_DIRS_WINDOW_CAPABILITY = "backup-dirs.window.v1"

_TRANSFER = r"^[A-Za-z0-9_-]{1,40}$"
# An absolute path without NUL bytes; the agent applies its own rules (roots, ``..``, links).
_PATH = r"^/[^\x00]{0,499}$"
# An artifact's file name: a backup id and the artifact suffix, nothing that could climb.
_FILE = r"^[A-Za-z0-9_-]{1,40}\.berthbk$"
_DATA_MAX = MAX_CHUNK_BYTES * 4 // 3 + 4


class BackupDirCheck(WireModel):
    """Coordinator → agent: may artifacts be kept in directory ``path``? Answered by
    ``backup_dir_reply`` (``failed`` with the reason, and ``allowedRoots`` either way)."""

    type: Literal["backup_dir_check"] = "backup_dir_check"
    id: int
    path: str = Field(pattern=_PATH)


class BackupDirOpen(WireModel):
    """Coordinator → agent: open artifact ``fileName`` in directory ``path`` as transfer
    ``transferId``: ``write`` creates ``<fileName>.partial`` (renamed into place only by
    ``backup_dir_finish``), ``read`` opens the finished artifact."""

    type: Literal["backup_dir_open"] = "backup_dir_open"
    id: int
    transfer_id: str = Field(pattern=_TRANSFER)
    path: str = Field(pattern=_PATH)
    file_name: str = Field(pattern=_FILE)
    mode: Literal["write", "read"]


class BackupDirWrite(WireModel):
    """Coordinator → agent: append ``data`` (standard base64) to write transfer ``transferId``.
    ``seq`` (0, 1, 2, ... per transfer): an agent that advertises ``backup-dirs.window.v1``
    refuses one out of order (and removes the partial file)."""

    type: Literal["backup_dir_write"] = "backup_dir_write"
    id: int
    transfer_id: str = Field(pattern=_TRANSFER)
    data: str = Field(max_length=_DATA_MAX)
    seq: int | None = Field(default=None, ge=0)


class BackupDirRead(WireModel):
    """Coordinator → agent: the next bytes of read transfer ``transferId`` (``eof`` at the end).
    ``seq`` (0, 1, 2, ... per transfer): an agent that advertises ``backup-dirs.window.v1``
    answers them in that order, refuses any other, and past the end answers ``eof`` again."""

    type: Literal["backup_dir_read"] = "backup_dir_read"
    id: int
    transfer_id: str = Field(pattern=_TRANSFER)
    seq: int | None = Field(default=None, ge=0)


class BackupDirFinish(WireModel):
    """Coordinator → agent: every byte was written; flush it to disk and rename the partial
    file to the artifact's name (only now does the artifact exist)."""

    type: Literal["backup_dir_finish"] = "backup_dir_finish"
    id: int
    transfer_id: str = Field(pattern=_TRANSFER)


class BackupDirAbort(WireModel):
    """Coordinator → agent: end transfer ``transferId``; a write's partial file is removed."""

    type: Literal["backup_dir_abort"] = "backup_dir_abort"
    id: int
    transfer_id: str = Field(pattern=_TRANSFER)


class BackupDirDelete(WireModel):
    """Coordinator → agent: remove artifact ``fileName`` from ``path`` (ok when it is gone)."""

    type: Literal["backup_dir_delete"] = "backup_dir_delete"
    id: int
    path: str = Field(pattern=_PATH)
    file_name: str = Field(pattern=_FILE)


class BackupDirStat(WireModel):
    """Coordinator → agent: is finished artifact ``fileName`` in ``path``? (``exists``)."""

    type: Literal["backup_dir_stat"] = "backup_dir_stat"
    id: int
    path: str = Field(pattern=_PATH)
    file_name: str = Field(pattern=_FILE)


class BackupDirReply(WireModel):
    """Agent → coordinator reply to every ``backup_dir_*`` request: ``ok`` (``data`` and
    ``eof`` for a read, ``exists`` and ``size`` for a stat), or ``failed`` with the reason."""

    type: Literal["backup_dir_reply"] = "backup_dir_reply"
    id: int
    re: int
    status: Literal["ok", "failed"]
    data: str = Field(default="", max_length=_DATA_MAX)
    eof: bool = False
    exists: bool = False
    size: int = Field(default=0, ge=0)
    message: str = Field(default="", max_length=2000)
    allowed_roots: list[str] = Field(default_factory=list, max_length=64)


BackupDirsCoordinatorMessage = (
    BackupDirCheck
    | BackupDirOpen
    | BackupDirWrite
    | BackupDirRead
    | BackupDirFinish
    | BackupDirAbort
    | BackupDirDelete
    | BackupDirStat
)
BackupDirsAgentMessage = BackupDirReply
BACKUP_DIRS_COORDINATOR_TYPES = message_types(BackupDirsCoordinatorMessage)
BACKUP_DIRS_AGENT_TYPES = message_types(BackupDirsAgentMessage)
