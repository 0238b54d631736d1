"""Tortoise models for storage volumes and their attachments to resources (issue 16)."""

from tortoise import fields
from tortoise.models import Model

from coordinator.db.models import Organization, Resource


class StorageVolume(Model):
    """Durable storage on one server: a Docker named volume or a bind-mounted host directory."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="storage_volumes", on_delete=fields.CASCADE
    )
    project_id = fields.CharField(max_length=40, db_index=True)
    environment_id = fields.CharField(max_length=40)
    # Null until a deployment places it: the first deployment using it pins it to its server.
    server_id = fields.CharField(max_length=40, null=True)
    name = fields.CharField(max_length=100)
    slug = fields.CharField(max_length=100)
    kind = fields.CharField(max_length=16)
    # The host directory of a bind mount; null for a named volume (its Docker name is derived).
    source_path = fields.CharField(max_length=1000, null=True)
    description = fields.CharField(max_length=2000, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "storage_volumes"
        unique_together = (("environment_id", "slug"),)


class StorageAttachment(Model):
    """A volume mounted into a resource's containers at ``destination_path``."""

    id = fields.CharField(primary_key=True, max_length=40)
    volume: fields.ForeignKeyRelation[StorageVolume] = fields.ForeignKeyField(
        "models.StorageVolume", related_name="attachments", on_delete=fields.RESTRICT
    )
    resource: fields.ForeignKeyRelation[Resource] = fields.ForeignKeyField(
        "models.Resource", related_name="storage_attachments", on_delete=fields.CASCADE
    )
    destination_path = fields.CharField(max_length=1000)
    mount_mode = fields.CharField(max_length=16, default="read-write")
    attached_at = fields.DatetimeField()

    class Meta:
        table = "storage_attachments"
        unique_together = (("resource", "destination_path"),)
