"""Request and response models of the resource routes (Appaloft shapes, camelCase on the wire)."""

import posixpath
import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import Field, field_validator, model_validator

from coordinator.api.health_schemas import LatestRuntimeControl
from coordinator.api.resource_diagnostics import ResourceDiagnostic
from coordinator.api.resource_views import (
    AccessSummary,
    ResourceAccessProfile,
    ResourceHealthPolicy,
    ResourceNetworkProfile,
    ResourceRuntimeProfile,
    ResourceSource,
)
from coordinator.api.schemas import ApiRequest, PageQuery
from coordinator.variables import (
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    VALUE_MAX_LENGTH,
    Exposure,
    VariableEntry,
)
from shared.wire import WireModel

ResourceKind = Literal["application", "service", "worker"]
ResourceStatus = Literal["active", "archived"]

# Docker's reference grammar (distribution/reference): lowercase path components joined by
# "/", an optional registry host (with a dot, a port or "localhost") in front, a tag and a digest.
_COMPONENT: Final = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN: Final = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_NAME_RE: Final = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE: Final = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
_NAME_MAX: Final = 255


def _is_domain(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def split_image_reference(reference: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/team/app:1.2@sha256:...`` -> (name, tag, digest); ``ValueError`` if bad."""
    rest, _, digest = reference.partition("@")
    name, tag = rest, None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:  # a colon after the last "/" is a tag, not a registry port
        name, tag = rest[:colon], rest[colon + 1 :]
    check_image(name, tag, digest or None)
    return name, tag, digest or None


def check_image(name: str, tag: str | None, digest: str | None) -> None:
    """Raise ``ValueError`` unless name, tag and digest are what ``docker pull`` accepts."""
    first, _, remainder = name.partition("/")
    if remainder and not _is_domain(first) and first != first.lower():
        raise ValueError("repository name must be lowercase")
    if len(name) > _NAME_MAX or not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid image name {name!r}: lowercase letters, digits and separators (._-), "
            "optionally prefixed by a registry host[:port]/"
        )
    if "/" not in name and _is_domain(name) and name != name.lower():
        raise ValueError("repository name must be lowercase")
    if tag is not None and not _TAG_RE.fullmatch(tag):
        raise ValueError(f"invalid image tag {tag!r}: must match [\\w][\\w.-]{{0,127}}")
    if digest is not None and not _DIGEST_RE.fullmatch(digest):
        raise ValueError("invalid image digest: expected sha256:<64 lowercase hex>")


def _relative_path(value: str, what: str) -> str:
    """A path inside the source folder: relative, without ``..`` escaping the folder."""
    if not value or value.startswith("/") or "\\" in value or "\0" in value:
        raise ValueError(f"{what} must be a relative path inside the source")
    normal = posixpath.normpath(value)
    if normal == ".." or normal.startswith("../"):
        raise ValueError(f"{what} must not leave the source folder")
    return value


# ---- lifecycle -------------------------------------------------------------------------------


class CreateResourceRequest(ApiRequest):
    """``POST /resources``; the slug is derived from the name (unique per environment)."""

    project_id: str = Field(min_length=1, max_length=40)
    environment_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    kind: ResourceKind = "application"


class ListResourcesQuery(PageQuery):
    """Query of ``GET /resources``."""

    project_id: str | None = Field(default=None, max_length=40)
    environment_id: str | None = Field(default=None, max_length=40)
    include_preview_resources: bool = False


class CountResourcesQuery(ApiRequest):
    """Query of ``GET /resources/count``."""

    project_id: str | None = Field(default=None, max_length=40)
    environment_id: str | None = Field(default=None, max_length=40)
    include_preview_resources: bool = False


class ArchiveResourceRequest(ApiRequest):
    """``POST /resources/{id}/archive``."""

    reason: str | None = Field(default=None, max_length=500)


class ResourceConfirmation(WireModel):
    """Confirmation naming the resource being deleted by its slug (as in the reference)."""

    resource_slug: str = Field(max_length=100, description="must equal the resource's slug")


class DeleteResourceRequest(ApiRequest):
    """``DELETE /resources/{id}`` body."""

    confirmation: ResourceConfirmation


# ---- profiles --------------------------------------------------------------------------------


class RuntimeProfile(ApiRequest):
    """How the resource runs: strategy, command, limits and replica count."""

    strategy: Literal["auto", "dockerfile", "prebuilt-image"] = "auto"
    start_command: str | None = Field(default=None, min_length=1, max_length=4000)
    dockerfile_path: str = Field(default="Dockerfile", max_length=500)
    build_target: str | None = Field(default=None, min_length=1, max_length=200)
    cpus: float | None = Field(default=None, gt=0, le=512)
    memory_bytes: int | None = Field(default=None, ge=6 * 1024 * 1024)
    replicas: int = Field(default=1, ge=1, le=20)
    rollout_strategy: Literal["blue-green", "recreate"] = Field(
        default="blue-green",
        description="blue-green: new containers start beside the old ones; recreate: the old "
        "ones stop first (brief downtime, one writer on a volume at a time)",
    )

    @field_validator("dockerfile_path")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _relative_path(value, "dockerfilePath")


class NetworkProfile(ApiRequest):
    """Which container port serves traffic and whether the edge proxy exposes it."""

    internal_port: int = Field(ge=1, le=65535)
    upstream_protocol: Literal["http"] = "http"
    exposure_mode: Literal["reverse-proxy", "none"] = "reverse-proxy"
    target_service_name: str | None = Field(default=None, max_length=100)
    host_port: int | None = Field(default=None, ge=1, le=65535)


class AccessProfile(ApiRequest):
    """How generated access routes are made for the resource."""

    generated_access_mode: Literal["inherit", "disabled"] = "inherit"
    path_prefix: str = Field(default="/", max_length=200, pattern=r"^/[A-Za-z0-9._~/-]*$")


class HttpHealthCheck(ApiRequest):
    """The HTTP probe of a health policy."""

    method: Literal["GET", "HEAD"] = "GET"
    scheme: Literal["http", "https"] = "http"
    host: str | None = Field(default=None, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    path: str = Field(default="/", max_length=500, pattern=r"^/")
    expected_status_code: int | None = Field(default=None, ge=100, le=599)
    expected_response_text: str | None = Field(default=None, max_length=1000)


class HealthPolicy(ApiRequest):
    """When a candidate counts as healthy before it receives traffic."""

    enabled: bool = True
    type: Literal["http"] = "http"
    interval_seconds: float = Field(default=2, gt=0, le=300)
    timeout_seconds: float = Field(default=2, gt=0, le=120)
    retries: int = Field(default=10, ge=1, le=1000)
    start_period_seconds: float = Field(default=0, ge=0, le=3600)
    http: HttpHealthCheck = Field(default_factory=HttpHealthCheck)


class DockerImageSource(ApiRequest):
    """Run a prebuilt image; ``imageName`` may carry the tag/digest (``nginx:1.27``)."""

    kind: Literal["docker-image"]
    image_name: str = Field(min_length=1, max_length=512)
    image_tag: str | None = None
    image_digest: str | None = None
    display_name: str | None = Field(default=None, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        """A full reference in ``imageName`` is split into name, tag and digest."""
        if not isinstance(data, dict):
            return data
        names = [k for k in ("imageName", "image_name") if k in data]
        parts = ("imageTag", "image_tag", "imageDigest", "image_digest")
        if len(names) != 1 or not isinstance(data[names[0]], str):
            return data
        if any(data.get(k) is not None for k in parts):
            return data
        name, tag, digest = split_image_reference(data[names[0]])
        return {
            **data,
            names[0]: name,
            "imageTag": tag or (None if digest else "latest"),
            "imageDigest": digest,
        }

    @model_validator(mode="after")
    def _reference(self) -> "DockerImageSource":
        check_image(self.image_name, self.image_tag, self.image_digest)
        return self


class LocalFolderSource(ApiRequest):
    """Build from a folder uploaded with ``POST /resources/{id}/source/archive``."""

    kind: Literal["local-folder"]
    locator: str = Field(min_length=1, max_length=500)
    display_name: str | None = Field(default=None, max_length=200)
    base_directory: str = Field(default=".", max_length=500)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50)

    @field_validator("base_directory")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _relative_path(value, "baseDirectory")


Source = Annotated[DockerImageSource | LocalFolderSource, Field(discriminator="kind")]


class ConfigureRuntimeProfileRequest(ApiRequest):
    """``POST /resources/{id}/runtime-profile`` (replaces the profile; omitted fields default)."""

    runtime_profile: RuntimeProfile


class ConfigureNetworkProfileRequest(ApiRequest):
    """``POST /resources/{id}/network-profile``."""

    network_profile: NetworkProfile


class ConfigureAccessProfileRequest(ApiRequest):
    """``POST /resources/{id}/access-profile``."""

    access_profile: AccessProfile


class ConfigureHealthPolicyRequest(ApiRequest):
    """``POST /resources/{id}/health-policy``."""

    health_check: HealthPolicy


class ResetHealthPolicyRequest(ApiRequest):
    """``POST /resources/{id}/health-policy/reset`` (no fields)."""


class ConfigureSourceRequest(ApiRequest):
    """``POST /resources/{id}/source``; setting the same source twice changes nothing."""

    source: Source
    idempotency_key: str | None = Field(default=None, max_length=200)


# ---- reads -----------------------------------------------------------------------------------


class ResourceService(WireModel):
    """A service of the resource (v1: one web service per resource)."""

    name: str
    kind: str


class ResourceItem(WireModel):
    """A resource as listed and inside ``resources.show/v1``."""

    id: str
    project_id: str
    environment_id: str
    destination_id: str | None
    name: str
    slug: str
    kind: str
    description: str | None
    lifecycle_status: ResourceStatus
    created_at: datetime
    services: list[ResourceService]
    network_profile: ResourceNetworkProfile
    access_profile: ResourceAccessProfile
    deployment_count: int
    last_deployment_id: str | None
    last_deployment_status: str | None
    access_summary: AccessSummary
    latest_runtime_control: LatestRuntimeControl | None = None


class ResourceList(WireModel):
    """``GET /resources``."""

    items: list[ResourceItem]
    next_cursor: str | None = None


class ResourceLifecycle(WireModel):
    """Lifecycle block of ``resources.show/v1``."""

    status: ResourceStatus
    archived_at: datetime | None
    deleted_at: datetime | None


class LatestDeployment(WireModel):
    """The newest deployment of the resource."""

    id: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    server_id: str
    destination_id: str | None


class ResourceStorageAttachment(WireModel):
    """A storage volume mounted into the resource's containers."""

    id: str
    storage_volume_id: str
    storage_volume_name: str
    storage_volume_kind: Literal["named-volume", "bind-mount"]
    destination_path: str
    mount_mode: Literal["read-write", "read-only"]
    attached_at: datetime


class ResourceShowResponse(WireModel):
    """``resources.show/v1``; profiles have their defaults filled in."""

    schema_version: Literal["resources.show/v1"] = "resources.show/v1"
    resource: ResourceItem
    source: ResourceSource | None
    runtime_profile: ResourceRuntimeProfile
    network_profile: ResourceNetworkProfile
    access_profile: ResourceAccessProfile
    health_policy: ResourceHealthPolicy
    lifecycle: ResourceLifecycle
    latest_deployment: LatestDeployment | None
    access_summary: AccessSummary
    diagnostics: list[ResourceDiagnostic]
    storage_attachments: list[ResourceStorageAttachment] = Field(default_factory=list)
    generated_at: datetime


# ---- variables and secrets -------------------------------------------------------------------


def _value_size(value: str) -> str:
    if len(value.encode("utf-8")) > VALUE_MAX_LENGTH:
        raise ValueError("value exceeds 64 KiB")
    return value


class CreateSecretRequest(ApiRequest):
    """``POST /resources/{id}/secrets``."""

    key: str = Field(min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN)
    value: str
    exposure: Exposure = "runtime"

    @field_validator("value")
    @classmethod
    def _size(cls, value: str) -> str:
        return _value_size(value)


class RotateSecretRequest(ApiRequest):
    """``POST /resources/{id}/secrets/{key}``: replace the value of an existing secret."""

    value: str
    exposure: Exposure = "runtime"

    @field_validator("value")
    @classmethod
    def _size(cls, value: str) -> str:
        return _value_size(value)


class SecretQuery(ApiRequest):
    """Query naming the exposure of a secret (default ``runtime``)."""

    exposure: Exposure = "runtime"


class SecretCommandResponse(WireModel):
    """Answer of secret create, rotate and delete: never the value."""

    resource_id: str
    key: str
    exposure: str


class SecretItem(VariableEntry):
    """A secret as read: ``value`` is always ``"****"``."""

    resource_id: str


class SecretList(WireModel):
    """``resources.secrets.list/v1``."""

    schema_version: Literal["resources.secrets.list/v1"] = "resources.secrets.list/v1"
    resource_id: str
    items: list[SecretItem]
    generated_at: datetime


class SecretShow(WireModel):
    """``resources.secrets.show/v1``."""

    schema_version: Literal["resources.secrets.show/v1"] = "resources.secrets.show/v1"
    secret: SecretItem
    generated_at: datetime


class ConfigOverride(WireModel):
    """A resource entry that replaces an environment entry with the same key and exposure."""

    key: str
    exposure: str
    scope: str
    overridden_scope: str


class EffectiveConfigResponse(WireModel):
    """``resources.effective-config/v1`` (secret values masked)."""

    schema_version: Literal["resources.effective-config/v1"] = "resources.effective-config/v1"
    resource_id: str
    environment_id: str
    owned_entries: list[VariableEntry]
    effective_entries: list[VariableEntry]
    overrides: list[ConfigOverride]
    precedence: list[str]
    generated_at: datetime


# ---- source archives -------------------------------------------------------------------------


class SourceArchiveResponse(WireModel):
    """Answer of ``POST /resources/{id}/source/archive``."""

    id: str
    sha256: str
    size_bytes: int
    file_count: int
