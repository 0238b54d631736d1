"""Request and response models of ``/backup-targets`` (a Berth extension, docs/backups.md)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.schemas import ApiRequest
from shared.wire import WireModel


class CreateBackupTargetRequest(ApiRequest):
    """``POST /backup-targets``: an S3-compatible bucket (the secret key is sealed at once)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    kind: Literal["s3"] = "s3"
    endpoint_url: str = Field(
        min_length=1, max_length=500, description="http(s)://HOST[:PORT] of the S3 API"
    )
    region: str = Field(default="us-east-1", min_length=1, max_length=64)
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="", max_length=200, description="key prefix, e.g. berth/prod")
    access_key_id: str = Field(min_length=1, max_length=200)
    secret_access_key: str = Field(min_length=1, max_length=500)


class BackupTargetItem(WireModel):
    """A target as shown: the secret key is always masked."""

    id: str
    name: str
    kind: Literal["s3"]
    endpoint_url: str
    region: str
    bucket: str
    prefix: str
    access_key_id: str
    secret_access_key: str = Field(description="always masked")
    created_at: datetime


class BackupTargetList(WireModel):
    """``GET /backup-targets``."""

    items: list[BackupTargetItem]
