"""Request and response models of the domain-binding routes (Appaloft shapes)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from coordinator.api.certificate_schemas import CertificateItem
from coordinator.api.resource_views import GeneratedAccessRoute
from coordinator.api.schemas import ApiRequest
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from shared.wire import WireModel

TlsMode = Literal["auto", "imported", "disabled"]
ProxyKind = Literal["none", "caddy"]
CertificatePolicy = Literal["auto", "manual", "disabled"]
RedirectStatus = Literal[301, 302, 307, 308]
BindingStatus = Literal["pending_verification", "bound"]
OwnershipMethod = Literal["dns-txt", "http-token", "manual"]

_Id = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
_OptionalId = Field(default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
_Domain = Field(min_length=1, max_length=300)


class CreateDomainBindingRequest(ApiRequest):
    """``POST /domain-bindings``: the reference's body plus path, redirect and TLS choices."""

    project_id: str = _Id
    environment_id: str = _Id
    resource_id: str = _Id
    server_id: str | None = _OptionalId
    destination_id: str | None = _OptionalId
    domain_name: str = _Domain
    path_prefix: str | None = Field(default=None, max_length=200)
    proxy_kind: ProxyKind = "caddy"
    tls_mode: TlsMode = "auto"
    certificate_policy: CertificatePolicy = "auto"
    redirect_to: str | None = Field(default=None, min_length=1, max_length=300)
    redirect_status: RedirectStatus | None = None


class ListDomainBindingsQuery(ApiRequest):
    """Query of ``GET /domain-bindings``."""

    project_id: str | None = _OptionalId
    environment_id: str | None = _OptionalId
    resource_id: str | None = _OptionalId
    limit: int = Field(default=100, ge=1, le=500)


class ConfigureRouteRequest(ApiRequest):
    """``POST /domain-bindings/{id}/route``: serve (no ``redirectTo``) or redirect to a binding."""

    redirect_to: str | None = Field(default=None, min_length=1, max_length=300)
    redirect_status: RedirectStatus | None = None


class OwnershipConfirmationRequest(ApiRequest):
    """How ownership is proven: the DNS TXT token (default), the HTTP token, or an override."""

    method: OwnershipMethod = "dns-txt"
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class VerificationRetryRequest(ApiRequest):
    """``POST /domain-bindings/{id}/verification-retries`` takes no fields."""


class DeleteConfirmation(ApiRequest):
    """The id being deleted, typed again."""

    domain_binding_id: str = _Id


class DeleteDomainBindingRequest(ApiRequest):
    """``DELETE /domain-bindings/{id}``."""

    confirmation: DeleteConfirmation


class DnsObservation(WireModel):
    """Expected vs observed DNS targets of the binding's name."""

    status: Literal[
        "pending", "matched", "mismatched", "not-found", "lookup-failed", "target-unknown"
    ]
    expected_targets: list[str]
    observed_targets: list[str]
    checked_at: datetime | None
    message: str
    reason_code: str | None = None


class OwnershipChallenge(WireModel):
    """Where to publish the token that proves control of the domain (Berth addition)."""

    method: OwnershipMethod | None
    token: str
    dns_record_name: str
    dns_record_type: Literal["TXT"] = "TXT"
    http_path: str
    confirmed_at: datetime | None


class DomainBindingItem(WireModel):
    """A binding as listed and shown."""

    id: str
    project_id: str
    environment_id: str
    resource_id: str
    server_id: str | None
    destination_id: str | None
    domain_name: str
    path_prefix: str
    proxy_kind: ProxyKind
    tls_mode: TlsMode
    redirect_to: str | None
    redirect_status: RedirectStatus | None
    certificate_policy: CertificatePolicy
    status: BindingStatus
    dns_observation: DnsObservation
    verification_attempt_count: int
    ownership: OwnershipChallenge
    created_at: datetime


class DomainBindingList(WireModel):
    """``GET /domain-bindings``."""

    items: list[DomainBindingItem]


class DeleteSafetyEntry(WireModel):
    """Something that blocks (or warns about) deleting a binding."""

    kind: str
    severity: Literal["blocking", "warning"]
    message: str
    related_entity_type: str
    related_entity_id: str
    count: int


class DeleteSafety(WireModel):
    """``GET /domain-bindings/{id}/delete-check``."""

    domain_binding_id: str
    safe_to_delete: bool
    blockers: list[DeleteSafetyEntry]
    warnings: list[DeleteSafetyEntry]
    preserves_generated_access: bool = True
    preserves_deployment_snapshots: bool = True
    preserves_server_applied_route_audit: bool = True


class RouteIntent(WireModel):
    """What the edge should do for the binding's host and path."""

    host: str
    path_prefix: str
    protocol: Literal["http", "https"]
    route_behavior: Literal["serve", "redirect"]
    redirect_to: str | None
    redirect_status: RedirectStatus | None


class RouteContext(WireModel):
    """Where the route leads."""

    resource_id: str
    deployment_id: str | None
    server_id: str | None
    destination_id: str | None
    runtime_target_kind: str | None


class RouteProxy(WireModel):
    """Whether the edge proxy must carry the route and whether it does."""

    intent: Literal["required", "not-required"]
    applied: Literal["not-configured"]
    provider_key: str | None


class CopySafeSummary(WireModel):
    """A one-line status a user may paste into a ticket."""

    status: Literal["available", "blocked"]
    code: str | None
    phase: str | None
    message: str


class DomainRouteObservation(WireModel):
    """When the server's edge was seen serving the route: the applying deployment's report."""

    source: Literal["resource-access-summary"] = "resource-access-summary"
    observed_at: datetime
    request_id: str | None = None
    deployment_id: str


class RouteIntentStatus(WireModel):
    """``route-intent-status/v1`` of the binding's route."""

    schema_version: Literal["route-intent-status/v1"] = "route-intent-status/v1"
    route_id: str
    diagnostic_id: str
    source: Literal["domain-binding"]
    intent: RouteIntent
    context: RouteContext
    proxy: RouteProxy
    domain_verification: Literal["pending", "verified"]
    tls: Literal["pending", "disabled", "not-applicable"]
    runtime_health: Literal["unknown"]
    latest_observation: DomainRouteObservation | None = None
    blocking_reason: str | None
    recommended_action: str
    copy_safe_summary: CopySafeSummary


class RouteReadiness(WireModel):
    """Whether the binding's route can serve, and the route itself."""

    status: Literal["ready", "not-ready"]
    route_behavior: Literal["serve", "redirect"]
    selected_route: RouteIntentStatus
    context_routes: list[RouteIntentStatus]


class DomainBindingShow(WireModel):
    """``GET /domain-bindings/{id}``."""

    binding: DomainBindingItem
    route_readiness: RouteReadiness
    # The resource's newest generated route: where it stays reachable whatever the binding does.
    generated_access_fallback: GeneratedAccessRoute | None
    # ``unknown`` only for bindings stored before agents reported what their edge serves.
    proxy_readiness: Literal["unknown", "ready", "not-ready"] = "unknown"
    certificates: list[CertificateItem] = Field(default_factory=list)
    delete_safety: DeleteSafety


class VerificationAttemptResponse(WireModel):
    """Ownership confirmation and verification retry acknowledgement."""

    id: str
    verification_attempt_id: str
