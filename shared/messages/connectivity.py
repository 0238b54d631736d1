"""Connectivity test: the coordinator asks, the agent runs its local checks and answers."""

from typing import Literal

from shared.wire import Field, WireModel

CheckStatus = Literal["passed", "failed", "skipped"]


class CheckResult(WireModel):
    """One named check with its outcome and how long it took."""

    name: str = Field(max_length=64)
    status: CheckStatus
    message: str = Field(max_length=1000)
    duration_ms: float = Field(ge=0)
    metadata: dict[str, str] = Field(default_factory=dict)
    # Additive (older agents omit them): the HTTP status a health probe saw (None when no
    # answer came or the check is not HTTP) and a stable code for why it did not pass.
    status_code: int | None = Field(default=None, ge=100, le=599)
    reason_code: str | None = Field(default=None, max_length=64)


class ConnectivityCheck(WireModel):
    """Coordinator → agent request: run the local checks now."""

    type: Literal["connectivity_check"] = "connectivity_check"
    id: int


class ConnectivityReport(WireModel):
    """Agent → coordinator reply to ``ConnectivityCheck`` (``re`` is the request id)."""

    type: Literal["connectivity_report"] = "connectivity_report"
    id: int
    re: int
    checks: list[CheckResult] = Field(max_length=32)
