"""Tortoise ORM models: the coordinator's tables. ORM objects never leave ``coordinator/``."""

from tortoise import fields
from tortoise.models import Model


class Organization(Model):
    """The single organization a v1 coordinator serves (created with the first admin)."""

    id = fields.CharField(primary_key=True, max_length=40)
    name = fields.CharField(max_length=200)
    slug = fields.CharField(max_length=100, unique=True)
    created_at = fields.DatetimeField()
    # Profile and lifecycle (issue 17): a deleted organization keeps its row, invisible.
    logo_url = fields.CharField(max_length=500, null=True)
    updated_at = fields.DatetimeField(null=True)
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "organizations"


class User(Model):
    """A human operator (the first admin is created by the bootstrap call)."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="users", on_delete=fields.CASCADE
    )
    email = fields.CharField(max_length=320, unique=True)
    display_name = fields.CharField(max_length=200)
    role = fields.CharField(max_length=32, default="admin")
    created_at = fields.DatetimeField()

    class Meta:
        table = "users"


class ApiToken(Model):
    """A bearer token in the Appaloft deploy-token shape. Only a SHA-256 hash is stored."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="api_tokens", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="api_tokens", null=True, on_delete=fields.SET_NULL
    )
    display_name = fields.CharField(max_length=200)
    token_hash = fields.CharField(max_length=64, unique=True)
    secret_suffix = fields.CharField(max_length=8)
    scope = fields.JSONField[dict[str, list[str]]]()
    status = fields.CharField(max_length=16, default="active")
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    rotated_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    # Who minted it (a user's session or token; None for the first admin's): the token never
    # outlives that user's rights in the organization (docs/organizations.md).
    created_by_user_id = fields.CharField(max_length=40, null=True, db_index=True)

    class Meta:
        table = "api_tokens"


class Server(Model):
    """A deployment target backed by one enrolled agent."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="servers", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=100)
    host = fields.CharField(max_length=255, null=True)
    port = fields.IntField(null=True)
    provider_key = fields.CharField(max_length=64, default="berth-agent")
    target_kind = fields.CharField(max_length=32, default="single-server")
    lifecycle_status = fields.CharField(max_length=16, default="active")
    deactivated_at = fields.DatetimeField(null=True)
    deactivation_reason = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()
    agent_public_key = fields.CharField(max_length=100, null=True)
    agent_key_fingerprint = fields.CharField(max_length=48, null=True)
    agent_enrolled_at = fields.DatetimeField(null=True)
    agent_version = fields.CharField(max_length=64, null=True)
    agent_facts = fields.JSONField[dict[str, object]](null=True)
    last_connected_at = fields.DatetimeField(null=True)
    last_seen_at = fields.DatetimeField(null=True)

    class Meta:
        table = "servers"
        unique_together = (("organization", "name"),)


class JoinToken(Model):
    """A one-time, expiring token an agent trades for enrollment. Only a hash is stored."""

    id = fields.CharField(primary_key=True, max_length=40)
    server: fields.ForeignKeyRelation[Server] = fields.ForeignKeyField(
        "models.Server", related_name="join_tokens", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "join_tokens"


class AuditEvent(Model):
    """Append-only record of one mutation: who, what, when. Payloads are redacted first."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, null=True)
    actor_kind = fields.CharField(max_length=32)
    actor_id = fields.CharField(max_length=64, null=True)
    event_type = fields.CharField(max_length=64)
    aggregate_type = fields.CharField(max_length=32)
    aggregate_id = fields.CharField(max_length=64, null=True)
    payload = fields.JSONField[dict[str, object]]()
    request_id = fields.CharField(max_length=128, null=True)
    occurred_at = fields.DatetimeField()

    class Meta:
        table = "audit_events"


class Project(Model):
    """A group of environments and resources."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="projects", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=100)
    slug = fields.CharField(max_length=100)
    description = fields.CharField(max_length=2000, null=True)
    lifecycle_status = fields.CharField(max_length=16, default="active")
    archived_at = fields.DatetimeField(null=True)
    archive_reason = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "projects"
        unique_together = (("organization", "slug"),)


class Environment(Model):
    """A named stage of a project (production, staging...) that owns variables."""

    id = fields.CharField(primary_key=True, max_length=40)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="environments", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=100)
    kind = fields.CharField(max_length=32, default="production")
    parent_environment_id = fields.CharField(max_length=40, null=True)
    lifecycle_status = fields.CharField(max_length=16, default="active")
    locked_at = fields.DatetimeField(null=True)
    lock_reason = fields.CharField(max_length=500, null=True)
    archived_at = fields.DatetimeField(null=True)
    archive_reason = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "environments"
        unique_together = (("project", "name"),)


class Resource(Model):
    """A deployable application with its source and runtime, network and health profiles."""

    id = fields.CharField(primary_key=True, max_length=40)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="resources", on_delete=fields.CASCADE
    )
    environment: fields.ForeignKeyRelation[Environment] = fields.ForeignKeyField(
        "models.Environment", related_name="resources", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=100)
    slug = fields.CharField(max_length=100)
    kind = fields.CharField(max_length=32, default="application")
    description = fields.CharField(max_length=2000, null=True)
    lifecycle_status = fields.CharField(max_length=16, default="active")
    archived_at = fields.DatetimeField(null=True)
    source = fields.JSONField[dict[str, object]](null=True)
    runtime_profile = fields.JSONField[dict[str, object]](null=True)
    network_profile = fields.JSONField[dict[str, object]](null=True)
    health_policy = fields.JSONField[dict[str, object]](null=True)
    access_profile = fields.JSONField[dict[str, object]](null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "resources"
        unique_together = (("environment", "slug"),)


class Variable(Model):
    """A configuration entry owned by an environment or a resource (secrets encrypted)."""

    id = fields.CharField(primary_key=True, max_length=40)
    owner_kind = fields.CharField(max_length=16)
    owner_id = fields.CharField(max_length=40, db_index=True)
    key = fields.CharField(max_length=255)
    exposure = fields.CharField(max_length=16, default="runtime")
    kind = fields.CharField(max_length=32, default="plain-config")
    is_secret = fields.BooleanField(default=False)
    value = fields.TextField(null=True)
    ciphertext = fields.TextField(null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "variables"
        unique_together = (("owner_kind", "owner_id", "key", "exposure"),)


class SourceArchive(Model):
    """An uploaded source folder (gzip tar) a resource builds from, stored under the data dir."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    resource_id = fields.CharField(max_length=40, db_index=True)
    sha256 = fields.CharField(max_length=64)
    size_bytes = fields.BigIntField()
    file_count = fields.IntField(default=0)
    locator = fields.CharField(max_length=500, null=True)
    created_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "source_archives"


class ArchiveDownloadToken(Model):
    """Short-lived credential that lets one server fetch one archive for one deployment."""

    id = fields.CharField(primary_key=True, max_length=40)
    archive_id = fields.CharField(max_length=40, db_index=True)
    server_id = fields.CharField(max_length=40)
    deployment_id = fields.CharField(max_length=40)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "archive_download_tokens"


class Deployment(Model):
    """One attempt to run a resource on a server: a durable job with an immutable plan snapshot."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40, db_index=True)
    environment_id = fields.CharField(max_length=40, db_index=True)
    resource_id = fields.CharField(max_length=40, db_index=True)
    server_id = fields.CharField(max_length=40, db_index=True)
    status = fields.CharField(max_length=24, default="created", db_index=True)
    trigger_kind = fields.CharField(max_length=24, default="create")
    source_deployment_id = fields.CharField(max_length=40, null=True)
    rollback_of_deployment_id = fields.CharField(max_length=40, null=True)
    rollback_candidate_deployment_id = fields.CharField(max_length=40, null=True)
    runtime_plan = fields.JSONField[dict[str, object]](null=True)
    environment_snapshot = fields.JSONField[dict[str, object]](null=True)
    artifact = fields.JSONField[dict[str, object]](null=True)
    plan_sent_at = fields.DatetimeField(null=True)
    plan_acked_at = fields.DatetimeField(null=True)
    cancel_requested_at = fields.DatetimeField(null=True)
    error_code = fields.CharField(max_length=64, null=True)
    error_message = fields.TextField(null=True)
    event_count = fields.IntField(default=0)
    log_count = fields.IntField(default=0)
    created_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    archived_at = fields.DatetimeField(null=True)

    class Meta:
        table = "deployments"


class DeploymentEvent(Model):
    """Timeline entry of a deployment, numbered from 1 without gaps per deployment."""

    id = fields.BigIntField(primary_key=True)
    deployment_id = fields.CharField(max_length=40)
    sequence = fields.IntField()
    emitted_at = fields.DatetimeField()
    source = fields.CharField(max_length=24, default="domain-event")
    event_type = fields.CharField(max_length=64)
    phase = fields.CharField(max_length=24)
    status = fields.CharField(max_length=24)
    retriable = fields.BooleanField(default=False)
    summary = fields.TextField()

    class Meta:
        table = "deployment_events"
        unique_together = (("deployment_id", "sequence"),)


class DeploymentLog(Model):
    """Pull, build and start output of a deployment, one row per line, secrets already masked."""

    id = fields.BigIntField(primary_key=True)
    deployment_id = fields.CharField(max_length=40)
    sequence = fields.IntField()
    timestamp = fields.DatetimeField()
    source = fields.CharField(max_length=24, default="berth")
    phase = fields.CharField(max_length=24)
    level = fields.CharField(max_length=8)
    stream = fields.CharField(max_length=8, default="system")
    message = fields.TextField()
    masked = fields.BooleanField(default=False)
    # The agent numbers its own lines; replays after a reconnect are dropped by this key.
    agent_sequence = fields.IntField(null=True)

    class Meta:
        table = "deployment_logs"
        unique_together = (("deployment_id", "sequence"), ("deployment_id", "agent_sequence"))


class DomainBinding(Model):
    """A custom domain (plus optional path prefix) routed to a resource: issue 15, first step."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="domain_bindings", on_delete=fields.CASCADE
    )
    project_id = fields.CharField(max_length=40, db_index=True)
    environment_id = fields.CharField(max_length=40)
    resource: fields.ForeignKeyRelation[Resource] = fields.ForeignKeyField(
        "models.Resource", related_name="domain_bindings", on_delete=fields.CASCADE
    )
    server_id = fields.CharField(max_length=40, null=True)
    destination_id = fields.CharField(max_length=40, null=True)
    # The ASCII (IDNA) form, lowercase, no trailing dot: what DNS and Caddy see.
    domain_name = fields.CharField(max_length=253)
    path_prefix = fields.CharField(max_length=200, default="/")
    proxy_kind = fields.CharField(max_length=16, default="caddy")
    tls_mode = fields.CharField(max_length=16, default="auto")
    certificate_policy = fields.CharField(max_length=16, default="auto")
    redirect_to = fields.CharField(max_length=253, null=True)
    redirect_status = fields.IntField(null=True)
    status = fields.CharField(max_length=24, default="pending_verification")
    ownership_token = fields.CharField(max_length=64)
    ownership_method = fields.CharField(max_length=16, null=True)
    ownership_confirmed_at = fields.DatetimeField(null=True)
    dns_observation = fields.JSONField[dict[str, object]](null=True)
    verification_attempt_count = fields.IntField(default=0)
    latest_verification_attempt_id = fields.CharField(max_length=40, null=True)
    # What the agent last reported: ``ready`` once its edge serves this binding as stored,
    # ``not-ready`` until then (new or changed binding, or left out of the last deployment).
    proxy_readiness = fields.CharField(max_length=16, default="not-ready")
    created_at = fields.DatetimeField()

    class Meta:
        table = "domain_bindings"
        # One route per host + path across the whole coordinator: Caddy cannot serve two.
        unique_together = (("domain_name", "path_prefix"),)
