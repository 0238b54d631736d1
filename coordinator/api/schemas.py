"""HTTP request and response models (coordinator-only, so they live here, not in ``shared/``)."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, computed_field
from pydantic.config import JsonDict

from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from coordinator.permissions import Permission
from shared.messages import CheckResult
from shared.wire import WireModel


class ApiRequest(WireModel):
    """Base for request bodies and queries: unknown fields are refused with a clear 400."""

    model_config = ConfigDict(extra="forbid")


class NoQuery(ApiRequest):
    """A route that takes no query parameters."""


class IdResponse(WireModel):
    """Appaloft's command acknowledgement."""

    id: str


class CountResponse(WireModel):
    """Appaloft's count shape."""

    count: int


class PageQuery(ApiRequest):
    """Cursor pagination: ``limit`` items after ``cursor`` (an item id from ``nextCursor``)."""

    limit: int = Field(default=100, gt=0, le=500)
    cursor: str | None = Field(default=None, max_length=40)


# ---- bootstrap -------------------------------------------------------------------------------


class LoginMethod(WireModel):
    """One way to authenticate, as Appaloft reports them."""

    key: str
    configured: bool
    enabled: bool
    reason: str | None = None


class BootstrapStatusResponse(WireModel):
    """``GET /bootstrap/auth/status``."""

    bootstrap_required: bool
    first_admin_configured: bool
    organization_configured: bool
    login_methods: list[LoginMethod]
    first_admin_email: str | None
    login_url: str | None
    organization_id: str | None
    organization_slug: str | None
    next_steps: list[str]


class FirstAdminRequest(ApiRequest):
    """``POST /bootstrap/auth/first-admin``."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: str = Field(min_length=1, max_length=200)
    # Berth: the admin's local-password login (optional; it can be set later, docs/accounts.md).
    password: str | None = Field(
        default=None, max_length=256, json_schema_extra={"writeOnly": True}
    )


class FirstAdminResponse(WireModel):
    """The seed's answer plus ``apiToken`` (shown once, never retrievable again)."""

    bootstrap_required: bool
    created: bool
    email: str
    login_methods: list[LoginMethod]
    organization_id: str
    organization_slug: str
    user_id: str
    generated_password: str | None
    login_url: str | None
    api_token: str
    api_token_id: str


# ---- deploy tokens ---------------------------------------------------------------------------


class TokenScope(WireModel):
    """Appaloft's deploy-token scope plus ``permissions`` (what the token may do)."""

    deployment_target_ids: list[str] = Field(default_factory=list, max_length=200)
    environment_ids: list[str] = Field(default_factory=list, max_length=200)
    project_ids: list[str] = Field(default_factory=list, max_length=200)
    repository_full_names: list[str] = Field(default_factory=list, max_length=200)
    resource_ids: list[str] = Field(default_factory=list, max_length=200)
    workflow_commands: list[str] = Field(default_factory=list, max_length=50)
    permissions: list[Permission] = Field(
        default_factory=lambda: list[Permission](["servers:read"]),
        description="Operations the token may call; '*' is everything. Default: servers:read.",
    )


class CreateDeployTokenRequest(ApiRequest):
    """``POST /deploy-tokens``."""

    organization_id: str | None = None
    display_name: str = Field(min_length=1, max_length=200)
    scope: TokenScope = Field(default_factory=TokenScope)
    expires_at: datetime | None = None


class CreateDeployTokenResponse(WireModel):
    """Creation answer; ``token`` is the only time the plaintext is shown."""

    token_id: str
    token: str
    organization_id: str
    display_name: str
    secret_suffix: str
    scopes: TokenScope
    scope: TokenScope
    created_at: datetime
    expires_at: datetime | None


class DeployTokenItem(WireModel):
    """A token as listed and shown: never the plaintext, only its last characters."""

    token_id: str
    organization_id: str
    display_name: str
    status: Literal["active", "revoked"]
    secret_suffix: str
    scope: TokenScope
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    rotated_at: datetime | None
    revoked_at: datetime | None


class DeployTokenList(WireModel):
    """``GET /deploy-tokens``."""

    items: list[DeployTokenItem]
    next_cursor: str | None = None


class ListDeployTokensQuery(ApiRequest):
    """Query of ``GET /deploy-tokens``."""

    organization_id: str | None = None
    status: Literal["active", "revoked"] | None = None
    limit: int = Field(default=100, gt=0, le=100)
    cursor: str | None = Field(default=None, max_length=40)


class OrganizationQuery(ApiRequest):
    """Query naming the organization (optional: a v1 coordinator has one)."""

    organization_id: str | None = None


class TokenConfirmation(WireModel):
    """Confirmation naming the token being changed."""

    token_id: str = Field(
        max_length=ID_MAX_LENGTH, pattern=ID_PATTERN, description="must equal the path's tokenId"
    )


class TokenCommandRequest(ApiRequest):
    """Body of rotate and revoke."""

    organization_id: str | None = None
    confirmation: TokenConfirmation


class RotateDeployTokenResponse(WireModel):
    """Rotation answer: the new plaintext, shown once; the old one stops working at once."""

    token_id: str
    token: str
    rotated_at: datetime
    scopes: TokenScope


class RevokeDeployTokenResponse(WireModel):
    """Revocation answer."""

    token_id: str
    revoked_at: datetime


# ---- servers ---------------------------------------------------------------------------------


class CreateServerRequest(ApiRequest):
    """``POST /servers``; ``joinTokenTtlSeconds`` overrides the default one-hour expiry."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    host: str | None = Field(default=None, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    provider_key: str | None = Field(default=None, max_length=64)
    target_kind: Literal["single-server"] | None = None
    join_token_ttl_seconds: int | None = Field(default=None, ge=60, le=7 * 24 * 3600)


class JoinTokenResponse(WireModel):
    """A server's id with a fresh one-time join token and the command that uses it."""

    id: str
    join_token: str
    join_token_expires_at: datetime
    install_command: str


class JoinTokenRequest(ApiRequest):
    """Body of ``agent-enrollments`` and ``agent-key/rotate``."""

    join_token_ttl_seconds: int | None = Field(default=None, ge=60, le=7 * 24 * 3600)


class EdgeProxy(WireModel):
    """Appaloft's edge proxy block (the proxy itself arrives with deployments)."""

    kind: str = "none"
    status: str = "pending"
    last_attempt_at: datetime | None = None
    last_succeeded_at: datetime | None = None
    last_error_code: str | None = None
    last_error_message: str | None = None


class ServerCredential(WireModel):
    """Appaloft's credential block, describing the agent key instead of an SSH key."""

    kind: Literal["agent-key"] = "agent-key"
    credential_id: str | None
    credential_name: str | None
    username: str | None = None
    public_key_configured: bool
    private_key_configured: bool = False


class AgentState(WireModel):
    """Berth's addition to the server item: the agent link."""

    status: Literal["online", "offline", "never-connected"]
    last_seen_at: datetime | None
    connected_at: datetime | None
    version: str | None
    key_fingerprint: str | None
    enrolled_at: datetime | None
    facts: dict[str, Any] | None


class ServerItem(WireModel):
    """A server as listed and shown."""

    id: str
    name: str
    host: str | None
    port: int | None
    provider_key: str
    target_kind: str
    lifecycle_status: Literal["active", "inactive"]
    deactivated_at: datetime | None
    deactivation_reason: str | None
    edge_proxy: EdgeProxy
    credential: ServerCredential
    agent: AgentState
    created_at: datetime


class ServerList(WireModel):
    """``GET /servers``."""

    items: list[ServerItem]
    next_cursor: str | None = None


class ShowServerQuery(ApiRequest):
    """Query of ``GET /servers/{id}``."""

    include_rollups: bool = True


class StatusCount(WireModel):
    """A count per status value."""

    status: str
    count: int


class ResourceRollup(WireModel):
    """Resources deployed on the server."""

    total: int
    deployed_resource_ids: list[str]


class DeploymentRollup(WireModel):
    """Deployments that targeted the server."""

    total: int
    status_counts: list[StatusCount]
    latest_deployment_id: str | None
    latest_deployment_status: str | None


class DomainRollup(WireModel):
    """Domain bindings routed through the server."""

    total: int
    status_counts: list[StatusCount]
    latest_domain_binding_id: str | None
    latest_domain_binding_status: str | None


class ServerRollups(WireModel):
    """``rollups`` block of ``servers.show/v1``."""

    resources: ResourceRollup
    deployments: DeploymentRollup
    domains: DomainRollup


class ServerShowResponse(WireModel):
    """``servers.show/v1``."""

    schema_version: Literal["servers.show/v1"] = "servers.show/v1"
    server: ServerItem
    rollups: ServerRollups | None
    generated_at: datetime


class RenameServerRequest(ApiRequest):
    """``POST /servers/{id}/rename``."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class DeactivateServerRequest(ApiRequest):
    """``POST /servers/{id}/deactivate``."""

    reason: str | None = Field(default=None, max_length=500)


class Blocker(WireModel):
    """Something that keeps an entity from being deleted."""

    kind: str
    related_entity_id: str | None
    related_entity_type: str | None
    count: int


class ServerDeleteCheckResponse(WireModel):
    """``servers.delete-check/v1``."""

    schema_version: Literal["servers.delete-check/v1"] = "servers.delete-check/v1"
    server_id: str
    lifecycle_status: str
    eligible: bool
    blockers: list[Blocker]
    checked_at: datetime


class ServerConfirmation(WireModel):
    """Confirmation naming the server being deleted."""

    server_id: str = Field(
        max_length=ID_MAX_LENGTH, pattern=ID_PATTERN, description="must equal the path's serverId"
    )


class DeleteServerRequest(ApiRequest):
    """``DELETE /servers/{id}`` body."""

    confirmation: ServerConfirmation


class ConnectivityTestResponse(WireModel):
    """``POST /servers/{id}/connectivity-tests``: a real round trip through the agent."""

    server_id: str
    name: str
    host: str | None
    port: int | None
    provider_key: str
    checked_at: datetime
    status: Literal["healthy", "degraded", "unreachable"]
    checks: list[CheckResult]


# ---- agent enrollment ------------------------------------------------------------------------


class EnrollRequest(ApiRequest):
    """``POST /agent/v1/enroll``: the agent trades a join token for enrollment of its key."""

    join_token: str = Field(min_length=10, max_length=200)
    public_key: str = Field(min_length=10, max_length=100)


class EnrollResponse(WireModel):
    """Enrollment answer: which server the key now belongs to."""

    server_id: str
    server_name: str
    key_fingerprint: str
    protocol: str


# ---- audit events ----------------------------------------------------------------------------


# Berth's first names (``id``, ``occurredAt``) stay one more release beside Appaloft's.
_DEPRECATED: JsonDict = {"deprecated": True}


class AuditEventItem(WireModel):
    """One audit row, under Appaloft's names (``auditEventId``, ``createdAt``) and the old ones."""

    id: str = Field(description="Deprecated: use auditEventId.", json_schema_extra=_DEPRECATED)
    event_type: str
    aggregate_type: str
    aggregate_id: str | None
    actor_kind: str
    actor_id: str | None
    payload: dict[str, Any]
    request_id: str | None
    occurred_at: datetime = Field(
        description="Deprecated: use createdAt.", json_schema_extra=_DEPRECATED
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def audit_event_id(self) -> str:
        """Appaloft's name for the event id."""
        return self.id

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created_at(self) -> datetime:
        """Appaloft's name for when the mutation happened."""
        return self.occurred_at


class AuditEventList(WireModel):
    """``audit-events.list/v1``."""

    schema_version: Literal["audit-events.list/v1"] = "audit-events.list/v1"
    items: list[AuditEventItem]
    next_cursor: str | None = None
    generated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class AuditEventsQuery(PageQuery):
    """Query of ``GET /audit-events``."""

    aggregate_id: str | None = Field(default=None, max_length=64)
    event_type: str | None = Field(default=None, max_length=64)
