"""Backup targets as records: an organization's S3-compatible buckets (secret key sealed by the
Keyring, masked in every answer) and directories on its servers, checked, audited, and turned
into an ``ArtifactStore``.

Targets serve the whole organization: a token narrowed to some projects, environments, resources
or servers may name one in a backup request but neither lists (empty), shows (404), adds nor
deletes (403) them.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.backups.dir_target import DirectoryFailed, ServerDirectoryStore, ask
from coordinator.backups.s3_target import S3Location, S3Store
from coordinator.backups.targets import ArtifactStore
from coordinator.db.backup_models import DependencyBackup, DependencyBackupPolicy
from coordinator.db.backup_target_models import BackupTarget
from coordinator.db.volume_backup_models import StorageVolumeBackup
from coordinator.db.volume_policy_models import StorageVolumeBackupPolicy
from coordinator.hub.registry import Registry
from coordinator.ids import new_id
from coordinator.lookup import get_server, visible_or_404
from coordinator.outbound import OutboundGuard
from coordinator.secrets import Keyring
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unavailable
from shared.messages.backup_dirs import BackupDirCheck

MASK: Final = "********"
KINDS: Final = ("s3", "server-directory")
# S3's bucket naming rules (3-63 characters, lower case, digits, dots and hyphens).
_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3TargetInput:
    """What the operator sends for an S3-compatible target."""

    name: str
    endpoint_url: str
    region: str
    bucket: str
    prefix: str
    access_key_id: str
    secret_access_key: str


def _narrowed(actor: Principal) -> bool:
    return bool(
        actor.server_ids or actor.project_ids or actor.environment_ids or actor.resource_ids
    )


def _require_organization_wide(actor: Principal) -> None:
    if _narrowed(actor):
        raise Forbidden(
            "backup targets serve the whole organization; use a token without project, "
            "environment, resource or server limits"
        )


def _binding(target_id: str) -> str:
    return f"backup-target:{target_id}"


def _prefix(value: str) -> str:
    prefix = value.strip().strip("/")
    if ".." in prefix.split("/") or any(ord(c) < 32 for c in prefix):
        raise InvalidRequest("prefix must be a plain key prefix", details={"field": "prefix"})
    return f"{prefix}/" if prefix else ""


async def create_s3(
    actor: Principal, request_id: str, keyring: Keyring, guard: OutboundGuard, given: S3TargetInput
) -> BackupTarget:
    """Check and store an S3-compatible target (its secret key sealed, bound to the row)."""
    _require_organization_wide(actor)
    endpoint = given.endpoint_url.strip().rstrip("/")
    guard.check_url(endpoint, field_name="endpointUrl")
    if not _BUCKET.match(given.bucket):
        raise InvalidRequest(
            "bucket must be 3-63 lower-case letters, digits, dots or hyphens",
            details={"field": "bucket"},
        )
    prefix = _prefix(given.prefix)
    target_id = new_id("bkt")
    async with in_transaction():
        if await BackupTarget.exists(organization_id=actor.organization_id, name=given.name):
            raise Conflict(
                f"a backup target named {given.name!r} exists", details={"name": given.name}
            )
        row = await BackupTarget.create(
            id=target_id,
            organization_id=actor.organization_id,
            name=given.name,
            kind="s3",
            endpoint_url=endpoint,
            region=given.region,
            bucket=given.bucket,
            prefix=prefix,
            access_key_id=given.access_key_id,
            secret_access_key_encrypted=keyring.encrypt(
                given.secret_access_key, _binding(target_id)
            ),
            created_at=datetime.now(UTC),
        )
        await audit.record(
            actor=actor,
            event_type="backup-target.created",
            aggregate_type="backup-target",
            aggregate_id=row.id,
            payload={"name": row.name, "kind": "s3", "endpointUrl": endpoint, "bucket": row.bucket},
            request_id=request_id,
        )
    return row


@dataclass(frozen=True)
class DirectoryTargetInput:
    """What the operator sends for a server-directory target."""

    name: str
    server_id: str
    path: str


def _directory(value: str) -> str:
    path = value.strip()
    if not path.startswith("/") or any(ord(c) < 32 for c in path):
        raise InvalidRequest("path must be an absolute directory", details={"field": "path"})
    if any(part in (".", "..") for part in path.split("/")):
        raise InvalidRequest("path must not contain '.' or '..'", details={"field": "path"})
    return path.rstrip("/") or "/"


async def create_directory(
    actor: Principal, request_id: str, registry: Registry, given: DirectoryTargetInput
) -> BackupTarget:
    """Check and store a directory on one of the organization's servers: the server's agent
    must allow it (``BERTH_AGENT_BACKUP_DIRS``), so it is asked now (503 while offline)."""
    _require_organization_wide(actor)
    try:
        server = await get_server(actor, given.server_id)
    except NotFound:
        raise NotFound(
            f"server {given.server_id!r} not found", details={"field": "serverId"}
        ) from None
    path = _directory(given.path)
    try:
        await ask(registry.require(server.id), lambda mid: BackupDirCheck(id=mid, path=path))
    except DirectoryFailed as exc:  # the agent's own rules refused the path
        raise Forbidden(str(exc), details={"field": "path", **exc.details}) from None
    target_id = new_id("bkt")
    async with in_transaction():
        if await BackupTarget.exists(organization_id=actor.organization_id, name=given.name):
            raise Conflict(
                f"a backup target named {given.name!r} exists", details={"name": given.name}
            )
        row = await BackupTarget.create(
            id=target_id,
            organization_id=actor.organization_id,
            name=given.name,
            kind="server-directory",
            endpoint_url="",
            region="",
            bucket="",
            prefix="",
            access_key_id="",
            secret_access_key_encrypted="",
            server_id=server.id,
            path=path,
            created_at=datetime.now(UTC),
        )
        await audit.record(
            actor=actor,
            event_type="backup-target.created",
            aggregate_type="backup-target",
            aggregate_id=row.id,
            payload={
                "name": row.name,
                "kind": "server-directory",
                "serverId": server.id,
                "path": path,
            },
            request_id=request_id,
        )
    return row


async def get(actor: Principal, target_id: str) -> BackupTarget:
    """The caller's organization's target, or 404."""
    return await visible_or_404(
        BackupTarget,
        "backup target",
        target_id,
        lambda _row: not _narrowed(actor),
        organization_id=actor.organization_id,
    )


async def named(actor: Principal, target_id: str, field: str) -> BackupTarget:
    """A target a backup request names (any token of the organization may name one); a 404
    naming the field otherwise."""
    row = await BackupTarget.get_or_none(id=target_id, organization_id=actor.organization_id)
    if row is None:
        raise NotFound(f"backup target {target_id!r} not found", details={"field": field})
    return row


async def listed(actor: Principal) -> list[BackupTarget]:
    """The organization's targets, oldest first."""
    if _narrowed(actor):
        return []
    return await BackupTarget.filter(organization_id=actor.organization_id).order_by("id")


async def delete(actor: Principal, request_id: str, target_id: str) -> None:
    """Delete a target no kept backup lives in (their artifacts would be orphaned)."""
    _require_organization_wide(actor)
    row = await get(actor, target_id)
    async with in_transaction():
        policies = (
            await DependencyBackupPolicy.filter(backup_target_id=row.id).count()
            + await StorageVolumeBackupPolicy.filter(backup_target_id=row.id).count()
        )
        if policies:
            raise Conflict(
                f"{policies} backup policy(ies) write to this target: change them first",
                details={"backupTargetId": row.id, "backupPolicies": policies},
            )
        kept = (
            await DependencyBackup.filter(
                backup_target_id=row.id, status__in=("pending", "ready")
            ).count()
            + await StorageVolumeBackup.filter(
                backup_target_id=row.id, status__in=("pending", "ready")
            ).count()
        )
        if kept:
            raise Conflict(
                f"{kept} backup(s) are kept in this target: delete them first",
                details={"backupTargetId": row.id, "backups": kept},
            )
        _ = await BackupTarget.filter(id=row.id).delete()
        await audit.record(
            actor=actor,
            event_type="backup-target.deleted",
            aggregate_type="backup-target",
            aggregate_id=row.id,
            payload={"name": row.name},
            request_id=request_id,
        )


async def store_of(
    target_id: str,
    keyring: Keyring,
    key: bytes,
    guard: OutboundGuard,
    registry: Registry | None = None,
) -> ArtifactStore:
    """The store that reads and writes artifacts in target ``target_id`` (a bucket, or a
    server's directory through ``registry``'s agent links)."""
    row = await BackupTarget.get_or_none(id=target_id)
    if row is None:
        raise Unavailable(f"backup target {target_id!r} no longer exists")
    if row.kind == "server-directory":
        if registry is None or row.server_id is None or row.path is None:
            raise Unavailable(f"backup target {target_id!r} cannot be reached from here")
        return ServerDirectoryStore(registry, row.server_id, row.path, key)
    location = S3Location(
        endpoint_url=row.endpoint_url,
        region=row.region,
        bucket=row.bucket,
        prefix=row.prefix,
        access_key_id=row.access_key_id,
        secret_access_key=keyring.decrypt(row.secret_access_key_encrypted, _binding(row.id)),
    )
    return S3Store(location, key, guard)
