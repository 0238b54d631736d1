"""Request and response models of ``/backup-targets`` (a Berth extension, docs/backups.md)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.schemas import ApiRequest
from shared.wire import WireModel


class CreateBackupTargetRequest(ApiRequest):
    """``POST /backup-targets``: an S3-compatible bucket (the secret key is sealed at once), or
    (``kind: server-directory``) a directory on one of the organization's servers."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    kind: Literal["s3", "server-directory"] = "s3"
    endpoint_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="kind s3 (required): http(s)://HOST[:PORT] of the S3 API",
    )
    region: str = Field(default="us-east-1", min_length=1, max_length=64)
    bucket: str | None = Field(
        default=None, min_length=3, max_length=63, description="kind s3 (required)"
    )
    prefix: str = Field(default="", max_length=200, description="key prefix, e.g. berth/prod")
    access_key_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="kind s3 (required)"
    )
    secret_access_key: str | None = Field(
        default=None, min_length=1, max_length=500, description="kind s3 (required)"
    )
    server_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="kind server-directory (required): the server whose agent keeps the files",
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="kind server-directory (required): an absolute directory under one of the "
        "agent's BERTH_AGENT_BACKUP_DIRS",
    )


class BackupTargetItem(WireModel):
    """A target as shown: the secret key is always masked; a server directory's S3 fields are
    empty, an S3 bucket's ``serverId`` and ``path`` null."""

    id: str
    name: str
    kind: Literal["s3", "server-directory"]
    endpoint_url: str
    region: str
    bucket: str
    prefix: str
    access_key_id: str
    secret_access_key: str = Field(description="always masked")
    created_at: datetime
    server_id: str | None = None
    path: str | None = None


class BackupTargetList(WireModel):
    """``GET /backup-targets``."""

    items: list[BackupTargetItem]
