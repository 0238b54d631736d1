"""Request and response models of the project and environment routes (Appaloft shapes)."""

from datetime import datetime
from typing import Literal

from pydantic import Field, RootModel, field_validator

from coordinator.api.schemas import ApiRequest, Blocker, PageQuery
from coordinator.ids import ID_MAX_LENGTH, ID_PATTERN
from coordinator.variables import (
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    VALUE_MAX_LENGTH,
    Exposure,
    VariableEntry,
    VariableKind,
)
from shared.wire import WireModel

ProjectStatus = Literal["active", "archived"]
EnvironmentStatus = Literal["active", "locked", "archived"]
EnvironmentKind = Literal["production", "staging", "development", "preview", "local"]

# Environment names end up in runtime names (containers, networks), so they stay shell-safe.
_ENVIRONMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_REASON_MAX = 500

# ---- projects --------------------------------------------------------------------------------


class CreateProjectRequest(ApiRequest):
    """``POST /projects``; the slug is derived from the name."""

    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)


class ProjectItem(WireModel):
    """A project as listed and shown."""

    id: str
    organization_id: str
    name: str
    slug: str
    description: str | None
    lifecycle_status: ProjectStatus
    archived_at: datetime | None
    archive_reason: str | None
    created_at: datetime


class ProjectList(WireModel):
    """``GET /projects``."""

    items: list[ProjectItem]
    next_cursor: str | None = None


class ListProjectsQuery(PageQuery):
    """Query of ``GET /projects``."""

    lifecycle_status: ProjectStatus | None = None


class RenameProjectRequest(ApiRequest):
    """``POST /projects/{id}/rename``; the slug follows the new name."""

    name: str = Field(min_length=1, max_length=100)


class ProjectDescriptionRequest(ApiRequest):
    """``POST /projects/{id}/description``; omitting ``description`` clears it."""

    description: str | None = Field(default=None, max_length=2000)


class ArchiveRequest(ApiRequest):
    """Body of project and environment ``archive`` and of environment ``lock``."""

    reason: str | None = Field(default=None, max_length=_REASON_MAX)


class ProjectDeleteCheckResponse(WireModel):
    """``projects.delete-check/v1``."""

    schema_version: Literal["projects.delete-check/v1"] = "projects.delete-check/v1"
    project_id: str
    lifecycle_status: ProjectStatus
    eligible: bool
    blockers: list[Blocker]
    checked_at: datetime


class ProjectConfirmation(WireModel):
    """Confirmation naming the project being deleted."""

    project_id: str = Field(
        max_length=ID_MAX_LENGTH, pattern=ID_PATTERN, description="must equal the path's projectId"
    )


class DeleteProjectRequest(ApiRequest):
    """``DELETE /projects/{id}`` body."""

    confirmation: ProjectConfirmation


# ---- environments ----------------------------------------------------------------------------


class CreateEnvironmentRequest(ApiRequest):
    """``POST /environments``."""

    project_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=100, pattern=_ENVIRONMENT_NAME)
    kind: EnvironmentKind = "production"


class EnvironmentItem(WireModel):
    """An environment as listed and shown; secrets in ``maskedVariables`` read ``"****"``."""

    id: str
    project_id: str
    name: str
    kind: str
    parent_environment_id: str | None
    lifecycle_status: EnvironmentStatus
    locked_at: datetime | None
    lock_reason: str | None
    archived_at: datetime | None
    archive_reason: str | None
    created_at: datetime
    masked_variables: list[VariableEntry]


class EnvironmentList(WireModel):
    """``GET /environments``."""

    items: list[EnvironmentItem]
    next_cursor: str | None = None


class ListEnvironmentsQuery(PageQuery):
    """Query of ``GET /environments``."""

    project_id: str | None = Field(default=None, max_length=40)
    lifecycle_status: EnvironmentStatus | None = None


class CountEnvironmentsQuery(ApiRequest):
    """Query of ``GET /environments/count``."""

    project_id: str | None = Field(default=None, max_length=40)


class RenameEnvironmentRequest(ApiRequest):
    """``POST /environments/{id}/rename``."""

    name: str = Field(min_length=1, max_length=100, pattern=_ENVIRONMENT_NAME)


class CloneEnvironmentRequest(ApiRequest):
    """``POST /environments/{id}/clone``: a new environment with the source's variables."""

    target_name: str = Field(min_length=1, max_length=100, pattern=_ENVIRONMENT_NAME)


class SetVariableRequest(ApiRequest):
    """``POST /environments/{id}/variables`` (an upsert on ``key`` + ``exposure``)."""

    key: str = Field(min_length=1, max_length=KEY_MAX_LENGTH, pattern=KEY_PATTERN)
    value: str
    kind: VariableKind = "plain-config"
    exposure: Exposure
    is_secret: bool = False

    @field_validator("value")
    @classmethod
    def _value_size(cls, value: str) -> str:
        if len(value.encode("utf-8")) > VALUE_MAX_LENGTH:
            raise ValueError("value exceeds 64 KiB")
        return value


class DeleteVariableRequest(ApiRequest):
    """``DELETE /environments/{id}/variables/{key}`` body."""

    exposure: Exposure


class EffectivePrecedenceResponse(WireModel):
    """``environments.effective-precedence/v1`` (values masked)."""

    schema_version: Literal["environments.effective-precedence/v1"] = (
        "environments.effective-precedence/v1"
    )
    environment_id: str
    project_id: str
    owned_entries: list[VariableEntry]
    effective_entries: list[VariableEntry]
    precedence: list[str]
    generated_at: datetime


class EnvironmentDiffEntry(WireModel):
    """One key + exposure that differs between two environments (values masked)."""

    key: str
    exposure: str
    left: VariableEntry | None
    right: VariableEntry | None
    change: Literal["added", "removed", "changed"]


class EnvironmentDiff(RootModel[list[EnvironmentDiffEntry]]):
    """``GET /environments/{id}/diff/{otherId}``: a bare array, as in the reference."""
