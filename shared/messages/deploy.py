"""Deployment messages: plans, acknowledgements, progress lines, results, cancellation."""

from datetime import datetime
from typing import Annotated, Literal

from shared.errors import ErrorBody
from shared.wire import Field, WireModel

# Capability an agent advertises in ``hello.capabilities`` when it can run deployment plans.
DEPLOY_CAPABILITY = "deploy.v1"

Phase = Literal[
    "detect",  # coordinator: resolve source, profiles, target
    "plan",  # coordinator: build the runtime plan and environment snapshot
    "dispatch",  # coordinator: hand the plan to the agent
    "fetch",  # agent: download and unpack the source archive
    "build",  # agent: docker build
    "pull",  # agent: use the local image or pull it
    "start",  # agent: start the candidate container(s)
    "health",  # agent: wait for the candidate's health check
    "switch",  # agent: point the edge proxy at the candidate
    "drain",  # agent: let the old container finish in-flight requests, then stop it
    "cleanup",  # agent: remove a failed or canceled candidate
    "reconcile",  # either side: settle a deployment after a restart or reconnect
]
LogLevel = Literal["debug", "info", "warn", "error"]
LogStream = Literal["system", "stdout", "stderr"]
DeployOutcome = Literal["succeeded", "failed", "canceled"]


class ImageArtifact(WireModel):
    """Run an image: the agent uses the local copy or pulls it."""

    kind: Literal["image"] = "image"
    image: str = Field(min_length=1, max_length=512)


class ArchiveArtifact(WireModel):
    """Build an image on the server from an uploaded source archive (gzip tar).

    The agent downloads it with ``GET {downloadPath}`` on the coordinator's origin and header
    ``Authorization: Bearer {downloadToken}``; the token is bound to this server, archive and
    deployment and expires quickly. The agent checks ``sha256`` before unpacking.
    """

    kind: Literal["archive"] = "archive"
    archive_id: str = Field(max_length=40)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)
    download_path: str = Field(max_length=200)
    download_token: str = Field(max_length=200)
    dockerfile_path: str = Field(default="Dockerfile", max_length=500)
    build_target: str | None = Field(default=None, max_length=200)
    image: str = Field(max_length=512, description="tag the agent gives the built image")


Artifact = Annotated[ImageArtifact | ArchiveArtifact, Field(discriminator="kind")]


class HealthSpec(WireModel):
    """HTTP health check the agent runs against a candidate before it receives traffic."""

    enabled: bool = True
    path: str = Field(default="/", max_length=500)
    port: int | None = Field(default=None, ge=1, le=65535, description="container port")
    interval_seconds: float = Field(default=2.0, gt=0, le=300)
    timeout_seconds: float = Field(default=2.0, gt=0, le=120)
    retries: int = Field(default=10, ge=1, le=1000)
    start_period_seconds: float = Field(default=0.0, ge=0, le=3600)
    expected_status_code: int | None = Field(
        default=None, ge=100, le=599, description="null accepts any 2xx or 3xx"
    )
    expected_response_text: str | None = Field(default=None, max_length=1000)


_HOST = r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$"


class DomainRoute(WireModel):
    """A user's domain binding as an edge route: serve the resource, or redirect to ``redirectTo``.

    ``ownershipToken`` is set while the binding waits for an HTTP ownership proof: the edge then
    answers ``/.well-known/berth-domain/<token>`` on that host with the token itself.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$", description="the binding's id")
    # Names and paths end up in Caddy's JSON, where `{...}` would be a placeholder (e.g.
    # `{env.X}` in a redirect's Location): only the characters the coordinator lets through.
    domain_name: str = Field(max_length=253, pattern=_HOST)
    path_prefix: str = Field(default="/", max_length=200, pattern=r"^/[^{}\s\\]*$")
    redirect_to: str | None = Field(default=None, max_length=253, pattern=_HOST)
    redirect_status: int | None = Field(default=None, ge=300, le=399)
    tls_mode: Literal["auto", "imported", "disabled"] = "auto"
    ownership_token: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,100}$")
    on_demand: bool = Field(
        default=False,
        description="a generated default-access name: its certificate is obtained on the first "
        "HTTPS request (after the agent's ask check), not when the route is added; older "
        "coordinators omit it",
    )
    certificate_only: bool = Field(
        default=False,
        description="served only with a certificate the edge already holds (e.g. a wildcard "
        "for the base domain, imported or issued over DNS-01); the edge never orders one for it",
    )


class RouteSpec(WireModel):
    """How the edge proxy on the server reaches the resource."""

    hostnames: list[str] = Field(max_length=20)
    path_prefix: str = Field(default="/", max_length=200)
    domains: list[DomainRoute] = Field(
        default_factory=list,
        max_length=200,
        description="the resource's domain bindings; older coordinators omit it",
    )


class VolumeMount(WireModel):
    """A storage volume to mount into every candidate.

    A ``named-volume`` is a Docker volume the agent creates (labelled ``berth.*``) when missing;
    a ``bind-mount`` is a host directory, mounted only when it lies under a directory the
    agent's local configuration allows (``BERTH_AGENT_BIND_MOUNT_ROOTS``), whatever the plan says.
    """

    volume_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    kind: Literal["named-volume", "bind-mount"]
    source: str = Field(
        min_length=1, max_length=1000, description="Docker volume name or host directory"
    )
    destination: str = Field(min_length=2, max_length=1000, pattern=r"^/")
    read_only: bool = False


RolloutStrategy = Literal["blue-green", "recreate"]


class ContainerSpec(WireModel):
    """What to run. ``environment`` carries decrypted secrets: it only travels this link."""

    command: str | None = Field(default=None, max_length=4000, description="run with /bin/sh -c")
    internal_port: int | None = Field(default=None, ge=1, le=65535)
    environment: dict[str, str] = Field(default_factory=dict)
    secret_keys: list[str] = Field(default_factory=list, description="keys to mask in logs")
    cpus: float | None = Field(default=None, gt=0, le=512)
    memory_bytes: int | None = Field(default=None, ge=6 * 1024 * 1024)
    replicas: int = Field(default=1, ge=1, le=20)
    labels: dict[str, str] = Field(default_factory=dict)
    stop_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    drain_seconds: float = Field(default=2.0, ge=0, le=600)
    networks: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="extra Docker networks to join (bound dependency resources'); older "
        "coordinators omit it",
    )
    mounts: list[VolumeMount] = Field(
        default_factory=list, max_length=50, description="older coordinators omit it"
    )
    host_port: int | None = Field(
        default=None, ge=1, le=65535, description="also publish internalPort here on every address"
    )


class DeployPlan(WireModel):
    """Coordinator → agent request: apply this plan. Answered by ``deploy_accepted``.

    The agent records ``deploymentId`` durably before it answers, so a plan that is sent again
    (after a reconnect or a coordinator restart) is acknowledged but never applied twice.
    """

    type: Literal["deploy_plan"] = "deploy_plan"
    id: int
    deployment_id: str = Field(max_length=40)
    organization_id: str = Field(max_length=40)
    project_id: str = Field(max_length=40)
    environment_id: str = Field(max_length=40)
    resource_id: str = Field(max_length=40)
    resource_slug: str = Field(max_length=100)
    artifact: Artifact
    container: ContainerSpec
    health: HealthSpec
    route: RouteSpec | None = None
    rollout_strategy: RolloutStrategy = Field(
        default="blue-green",
        description="blue-green: start beside the old containers, then switch; recreate: stop "
        "the old containers first (brief downtime). Older coordinators omit it",
    )


class DeployAccepted(WireModel):
    """Agent → coordinator reply to ``deploy_plan``.

    ``alreadyKnown`` is true when the agent had this deployment before; ``outcome`` is then set
    if it already finished (its ``deploy_result`` is sent again until acknowledged).
    ``acceptedAt``: when the agent first recorded the plan; the coordinator shows it as
    ``startedAt``.
    """

    type: Literal["deploy_accepted"] = "deploy_accepted"
    id: int
    re: int
    deployment_id: str = Field(max_length=40)
    already_known: bool = False
    outcome: DeployOutcome | None = None
    accepted_at: datetime | None = Field(
        default=None,
        description="when the agent first recorded the plan (its clock); older agents omit it",
    )


class DeployCancel(WireModel):
    """Coordinator → agent request: stop a deployment; answered by ``deploy_cancel_ack``."""

    type: Literal["deploy_cancel"] = "deploy_cancel"
    id: int
    deployment_id: str = Field(max_length=40)


class DeployCancelAck(WireModel):
    """Agent → coordinator reply to ``deploy_cancel``.

    ``canceling``: the task is being canceled, a ``deploy_result`` with ``canceled`` follows.
    ``finished``: too late, its result stands. ``unknown``: the agent never had it.
    """

    type: Literal["deploy_cancel_ack"] = "deploy_cancel_ack"
    id: int
    re: int
    deployment_id: str = Field(max_length=40)
    state: Literal["canceling", "finished", "unknown"]


class DeployLogLine(WireModel):
    """One line of deployment output, secrets already masked by the agent.

    ``sequence`` counts from 1 per deployment on the agent. A line with ``event`` set is also a
    timeline event (``phase-started``, ``health-passed``, ``traffic-switched``, ...).
    """

    sequence: int = Field(ge=1)
    timestamp: datetime
    phase: Phase
    level: LogLevel = "info"
    stream: LogStream = "system"
    message: str = Field(max_length=8000)
    masked: bool = False
    event: str | None = Field(default=None, max_length=64)


class DeployProgress(WireModel):
    """Agent → coordinator, unsolicited, no reply: new lines of a running deployment.

    Lines can arrive twice (the agent replays a deployment's journal after a reconnect until its
    result is acknowledged); the coordinator keeps each ``sequence`` once.
    """

    type: Literal["deploy_progress"] = "deploy_progress"
    id: int
    deployment_id: str = Field(max_length=40)
    lines: list[DeployLogLine] = Field(min_length=1, max_length=500)


class DeployResult(WireModel):
    """Agent → coordinator: the deployment ended. Answered by ``deploy_result_ack``.

    Sent again after every reconnect until acknowledged, so an outcome is never lost. It always
    follows the deployment's last ``deploy_progress`` (also when replayed), so the coordinator
    stores the outcome after every line; ``finishedAt`` and ``startedAt`` are the agent's clock.
    """

    type: Literal["deploy_result"] = "deploy_result"
    id: int
    deployment_id: str = Field(max_length=40)
    outcome: DeployOutcome
    error: ErrorBody | None = None
    image_id: str | None = Field(default=None, max_length=200, description="what ran, for rollback")
    container_ids: list[str] = Field(default_factory=list, max_length=20)
    last_sequence: int = Field(default=0, ge=0)
    finished_at: datetime
    started_at: datetime | None = Field(
        default=None, description="when the agent accepted the plan; older agents omit it"
    )
    routed_domains: list[str] | None = Field(
        default=None,
        max_length=200,
        description="ids of the plan's domain bindings the edge now serves; null when the "
        "rollout never switched traffic (older agents omit it)",
    )


class DeployResultAck(WireModel):
    """Coordinator → agent reply to ``deploy_result``: stored; the agent may forget it."""

    type: Literal["deploy_result_ack"] = "deploy_result_ack"
    id: int
    re: int
    deployment_id: str = Field(max_length=40)
