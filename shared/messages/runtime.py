"""What runs on a server: inventory after connect, runtime control, live resource probes."""

from datetime import datetime
from typing import Literal

from shared.errors import ErrorBody
from shared.messages.connectivity import CheckResult
from shared.messages.deploy import (
    DeployAccepted,
    DeployCancel,
    DeployCancelAck,
    DeployOutcome,
    DeployPlan,
    DeployProgress,
    DeployResult,
    DeployResultAck,
)
from shared.messages.typeset import message_types
from shared.wire import Field, WireModel

ContainerState = Literal["created", "running", "paused", "restarting", "exited", "dead", "removing"]
RuntimeOperation = Literal["stop", "start", "restart"]


class ManagedContainer(WireModel):
    """A Berth-managed container as the agent reads it from Docker (labels are the truth)."""

    container_id: str = Field(max_length=80)
    name: str = Field(max_length=200)
    resource_id: str = Field(max_length=40)
    deployment_id: str = Field(max_length=40)
    replica: int = Field(default=0, ge=0)
    state: ContainerState
    image: str = Field(max_length=512)
    host_port: int | None = Field(default=None, ge=1, le=65535)
    serving: bool = Field(default=False, description="the edge proxy routes traffic to it")
    created_at: datetime | None = None


class KnownDeployment(WireModel):
    """A deployment in the agent's journal: still running, or finished with an unacked result."""

    deployment_id: str = Field(max_length=40)
    state: Literal["running", "finished"]
    outcome: DeployOutcome | None = None
    accepted_at: datetime | None = Field(
        default=None, description="when the agent accepted the plan; older agents omit it"
    )


class Inventory(WireModel):
    """Agent → coordinator, unsolicited, right after ``welcome``: what actually runs here.

    The coordinator reconciles its deployments for this server against it (plans it thinks
    were acknowledged but the agent does not know, outcomes it missed).
    """

    type: Literal["inventory"] = "inventory"
    id: int
    containers: list[ManagedContainer] = Field(max_length=2000)
    deployments: list[KnownDeployment] = Field(max_length=2000)


class RuntimeControl(WireModel):
    """Coordinator → agent request: stop, start or restart a resource's containers."""

    type: Literal["runtime_control"] = "runtime_control"
    id: int
    resource_id: str = Field(max_length=40)
    operation: RuntimeOperation


class RuntimeControlResult(WireModel):
    """Agent → coordinator reply to ``runtime_control``."""

    type: Literal["runtime_control_result"] = "runtime_control_result"
    id: int
    re: int
    resource_id: str = Field(max_length=40)
    operation: RuntimeOperation
    status: Literal["succeeded", "failed"]
    containers: list[ManagedContainer] = Field(default_factory=list, max_length=100)
    error: ErrorBody | None = None
    started_at: datetime
    completed_at: datetime


class ResourceProbe(WireModel):
    """Coordinator → agent request: inspect a resource's containers and run its health check."""

    type: Literal["resource_probe"] = "resource_probe"
    id: int
    resource_id: str = Field(max_length=40)
    health_path: str | None = Field(default=None, max_length=500)
    health_port: int | None = Field(default=None, ge=1, le=65535)
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class ResourceProbeResult(WireModel):
    """Agent → coordinator reply to ``resource_probe``."""

    type: Literal["resource_probe_result"] = "resource_probe_result"
    id: int
    re: int
    resource_id: str = Field(max_length=40)
    containers: list[ManagedContainer] = Field(default_factory=list, max_length=100)
    checks: list[CheckResult] = Field(default_factory=list, max_length=32)
    observed_at: datetime


# The deployments capability's frames (plans, cancels, results, inventory, runtime control and
# probes), in the order the protocol unions list them.
DeploymentsAgentMessage = (
    DeployAccepted
    | DeployCancelAck
    | DeployProgress
    | DeployResult
    | Inventory
    | RuntimeControlResult
    | ResourceProbeResult
)
DeploymentsCoordinatorMessage = (
    DeployPlan | DeployCancel | DeployResultAck | RuntimeControl | ResourceProbe
)
DEPLOY_AGENT_TYPES = message_types(DeploymentsAgentMessage)
DEPLOY_COORDINATOR_TYPES = message_types(DeploymentsCoordinatorMessage)
