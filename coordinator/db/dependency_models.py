"""Tortoise models for dependency resources (databases), their provisioning plans and bindings."""

from tortoise import fields
from tortoise.models import Model


class DependencyResource(Model):
    """A database a resource can bind: run by Berth on a server, or imported by URL (issue 16)

    Credentials are stored only sealed (``sealed_connection_url``, bound to the row's id);
    ``username`` and ``host``/``port``/``database_name`` are the safe parts shown in answers.
    """

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40)
    environment_id = fields.CharField(max_length=40)
    server_id = fields.CharField(max_length=40, null=True)
    name = fields.CharField(max_length=100)
    slug = fields.CharField(max_length=100)
    kind = fields.CharField(max_length=24)
    source_mode = fields.CharField(max_length=24)
    provider_key = fields.CharField(max_length=40)
    description = fields.CharField(max_length=500, default="")
    lifecycle_status = fields.CharField(max_length=16, default="provisioning")
    image = fields.CharField(max_length=512, null=True)
    host = fields.CharField(max_length=253)
    port = fields.IntField()
    database_name = fields.CharField(max_length=100, null=True)
    username = fields.CharField(max_length=100, null=True)
    sealed_connection_url = fields.TextField()
    secret_version = fields.IntField(default=1)
    publish_port = fields.BooleanField(default=False)
    host_port = fields.IntField(null=True)
    cpus = fields.FloatField(null=True)
    memory_bytes = fields.BigIntField(null=True)
    realization_status = fields.CharField(max_length=16, default="pending")
    attempt_id = fields.CharField(max_length=40, null=True)
    attempted_at = fields.DatetimeField(null=True)
    container_id = fields.CharField(max_length=80, null=True)
    realized_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    failure_code = fields.CharField(max_length=64, null=True)
    failure_message = fields.CharField(max_length=2000, null=True)
    created_at = fields.DatetimeField()
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "dependency_resources"


class DependencyProvisioningPlan(Model):
    """A planned provisioning: nothing runs until it is accepted (``acknowledgeMutation``)."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40)
    environment_id = fields.CharField(max_length=40)
    server_id = fields.CharField(max_length=40, null=True)
    kind = fields.CharField(max_length=24)
    name = fields.CharField(max_length=100)
    status = fields.CharField(max_length=16, default="planned")
    summary = fields.JSONField[list[str]]()
    requested_at = fields.DatetimeField()
    accepted_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    dependency_resource_id = fields.CharField(max_length=40, null=True)
    failure_code = fields.CharField(max_length=64, null=True)
    failure_message = fields.CharField(max_length=2000, null=True)

    class Meta:
        table = "dependency_provisioning_plans"


class DependencyBinding(Model):
    """A dependency resource injected into a resource's deployments as env ``target_name``."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40)
    environment_id = fields.CharField(max_length=40)
    resource_id = fields.CharField(max_length=40, db_index=True)
    dependency_resource_id = fields.CharField(max_length=40, db_index=True)
    target_name = fields.CharField(max_length=100)
    status = fields.CharField(max_length=16, default="active")
    secret_version = fields.IntField(default=1)
    rotated_at = fields.DatetimeField(null=True)
    previous_secret_version = fields.IntField(null=True)
    created_at = fields.DatetimeField()
    removed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "dependency_bindings"
