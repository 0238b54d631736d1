"""One deployment's rollout: artifact, candidates beside the old ones, health, switch, drain."""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.edge_protocol import Edge
from agent.http_client import Endpoint, fetch
from agent.mounts import prepare_for
from agent.recreate import Recreate
from agent.runtime import (
    DEPLOYMENT_LABEL,
    DOMAINS_LABEL,
    HOSTNAMES_LABEL,
    INTERNAL_PORT_LABEL,
    MANAGED_LABEL,
    PATH_PREFIX_LABEL,
    REPLICA_LABEL,
    RESOURCE_LABEL,
    ContainerRuntime,
    MountSpec,
    RunSpec,
    Started,
)
from shared.errors import ErrorBody, PlatformError, RuntimeFailed
from shared.messages import (
    DeployLogLine,
    DeployOutcome,
    DeployPlan,
    HealthSpec,
    LogLevel,
    ManagedContainer,
    Phase,
)

logger = logging.getLogger(__name__)

LineSink = Callable[[DeployLogLine], None]


class HealthFailed(PlatformError):
    """The candidate never passed its health check."""

    code = RuntimeFailed.code


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


class DeployLog:
    """Numbers, masks and hands on a deployment's log lines."""

    def __init__(self, sink: LineSink, secrets: list[str], first_sequence: int = 1) -> None:
        self._sink = sink
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.sequence = first_sequence - 1

    def mask(self, text: str) -> tuple[str, bool]:
        """Replace every secret value in ``text`` with ``****``."""
        masked = False
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "****")
                masked = True
        return text, masked

    def line(
        self,
        phase: Phase,
        message: str,
        *,
        level: LogLevel = "info",
        event: str | None = None,
        stream: str = "system",
    ) -> None:
        """Emit one line."""
        text, masked = self.mask(message)
        self.sequence += 1
        self._sink(
            DeployLogLine(
                sequence=self.sequence,
                timestamp=datetime.now(UTC),
                phase=phase,
                level=level,
                stream="stdout" if stream == "stdout" else "system",
                message=text[:8000],
                masked=masked,
                event=event,
            )
        )


@dataclass
class RolloutResult:
    """How a rollout ended."""

    outcome: DeployOutcome
    error: ErrorBody | None = None
    image_id: str | None = None
    container_ids: list[str] = field(default_factory=list)
    # Ids of the domain bindings the edge serves after this rollout (None: it never switched).
    routed_domains: list[str] | None = None


def container_name(plan: DeployPlan, replica: int) -> str:
    """``berth-<resourceSlug>-<deploymentId>-<n>``."""
    return f"berth-{plan.resource_slug}-{plan.deployment_id.lower()}-{replica}"


def plan_labels(plan: DeployPlan, replica: int) -> dict[str, str]:
    """Labels of a candidate: the coordinator's plus the ones the agent relies on."""
    labels = dict(plan.container.labels)
    labels.update(
        {
            MANAGED_LABEL: "true",
            RESOURCE_LABEL: plan.resource_id,
            DEPLOYMENT_LABEL: plan.deployment_id,
            "berth.project-id": plan.project_id,
            "berth.environment-id": plan.environment_id,
            REPLICA_LABEL: str(replica),
        }
    )
    if plan.container.internal_port is not None:
        labels[INTERNAL_PORT_LABEL] = str(plan.container.internal_port)
    if plan.route is not None:
        # Kept on the container so the agent can re-create routes after Caddy restarts.
        labels[HOSTNAMES_LABEL] = ",".join(plan.route.hostnames)
        labels[PATH_PREFIX_LABEL] = plan.route.path_prefix
        if plan.route.domains:
            labels[DOMAINS_LABEL] = json.dumps(
                [d.model_dump(mode="json", by_alias=True) for d in plan.route.domains]
            )
    return labels


@dataclass(frozen=True)
class HttpOutcome:
    """What one HTTP probe saw: the status code (None when no answer came) and why it failed."""

    passed: bool
    message: str
    status_code: int | None = None
    # None when the probe passed; one of the ``health-check-*`` codes otherwise.
    reason_code: str | None = None


async def http_probe(host_port: int, health: HealthSpec, path: str | None = None) -> HttpOutcome:
    """One HTTP probe of 127.0.0.1:<host_port><path>."""
    target = path or health.path
    if not target.startswith("/"):
        target = "/" + target
    try:
        # One connection per probe, never reused, redirects not followed.
        async with asyncio.timeout(health.timeout_seconds):
            answer = await fetch(Endpoint("127.0.0.1", host_port), "GET", target)
        status, body = answer.status, answer.text
    except TimeoutError:
        return HttpOutcome(
            False,
            f"timed out after {health.timeout_seconds:g} s on {target}",
            reason_code="health-check-timeout",
        )
    except (OSError, ValueError) as exc:
        return HttpOutcome(
            False,
            f"{type(exc).__name__} on {target}: {exc}",
            reason_code="health-check-connection-failed",
        )
    expected = health.expected_status_code
    if expected is not None and status != expected:
        return HttpOutcome(
            False,
            f"HTTP {status} from {target} (expected {expected})",
            status,
            "health-check-status-mismatch",
        )
    if expected is None and not 200 <= status < 400:
        return HttpOutcome(
            False, f"HTTP {status} from {target}", status, "health-check-status-mismatch"
        )
    if health.expected_response_text and health.expected_response_text not in body:
        return HttpOutcome(
            False,
            f"HTTP {status} from {target} without the expected text",
            status,
            "health-check-response-text-missing",
        )
    return HttpOutcome(True, f"HTTP {status} from {target}", status)


async def http_check(
    host_port: int, health: HealthSpec, path: str | None = None
) -> tuple[bool, str]:
    """One HTTP probe of 127.0.0.1:<host_port><path>; returns (passed, what happened)."""
    outcome = await http_probe(host_port, health, path)
    return outcome.passed, outcome.message


# Fetches and builds an archive artifact, returning the image id (agent/artifacts.py).
ArtifactBuilder = Callable[[DeployPlan, DeployLog], Awaitable[str]]
# One health probe of a host port: (passed, what happened). Tests substitute their own.
HealthProbe = Callable[[int, HealthSpec], Awaitable[tuple[bool, str]]]


async def _probe_default(host_port: int, health: HealthSpec) -> tuple[bool, str]:
    return await http_check(host_port, health)


class Rollout:
    """Runs one plan. ``switched`` tells a canceller whether it is too late to roll back."""

    def __init__(
        self,
        plan: DeployPlan,
        runtime: ContainerRuntime,
        edge: Edge | None,
        log: DeployLog,
        builder: ArtifactBuilder | None = None,
        probe: HealthProbe | None = None,
        bind_roots: tuple[str, ...] = (),
    ) -> None:
        self.plan = plan
        self._bind_roots = bind_roots
        self._mounts: tuple[MountSpec, ...] = ()
        self._recreate = Recreate(runtime, log, plan.container.stop_grace_seconds)
        self._probe = probe or _probe_default
        self._runtime = runtime
        self._edge = edge
        self.routed_domains: list[str] | None = None
        self._log = log
        self._builder = builder
        self.candidates: list[Started] = []
        self.switched = False

    async def run(self) -> RolloutResult:
        """Apply the plan; a failure or cancel removes the candidates and keeps the old ones.

        Cancellation is re-raised after the cleanup, so the owner decides what it means.
        """
        phase: Phase = "build" if self.plan.artifact.kind == "archive" else "pull"
        old: list[ManagedContainer] = []
        image_id = ""
        try:
            image_id = await self._artifact()
            old = [
                c
                for c in await self._runtime.list_managed(self.plan.resource_id)
                if c.deployment_id != self.plan.deployment_id
            ]
            phase = "start"
            self._mounts = await prepare_for(
                plan_of=self.plan, runtime=self._runtime, roots=self._bind_roots, log=self._log
            )
            if self.plan.rollout_strategy == "recreate":
                await self._recreate.stop_old(old)
            elif self.plan.container.host_port is not None:
                await self._free_host_port(old)
            await self._start_candidates()
            phase = "health"
            await self._health()
            phase = "switch"
            await self._switch()
        except asyncio.CancelledError:
            if not self.switched:
                await self._cleanup("the deployment was canceled", level="warn")
                await self._recreate.restart_old()
                raise
            # Past the switch the new version serves: finish the drain instead of undoing it.
            _uncancel()
            return await self._succeed(old, image_id, cut_short=True)
        except PlatformError as exc:
            self._log.line(phase, exc.message, level="error", event="phase-failed")
            if not self.switched:
                await self._cleanup("removing the failed candidate", level="info")
                await self._recreate.restart_old()
            return RolloutResult("failed", error=self._masked(exc))
        except Exception as exc:
            logger.exception("deployment %s crashed", self.plan.deployment_id)
            self._log.line(phase, f"agent error: {exc}", level="error", event="phase-failed")
            if not self.switched:
                await self._cleanup("removing the failed candidate", level="info")
                await self._recreate.restart_old()
            return RolloutResult("failed", error=self._masked(PlatformError(f"agent error: {exc}")))
        return await self._succeed(old, image_id)

    def _masked(self, exc: PlatformError) -> ErrorBody:
        # The result is stored and shown like a log line: it must not carry a secret either.
        body = exc.to_body()
        message, _ = self._log.mask(body.message)
        # Only a reason code survives: the coordinator records it as the failure's code.
        reason = body.details.get("reasonCode")
        details = {"reasonCode": reason} if isinstance(reason, str) else {}
        return body.model_copy(update={"message": message[:2000], "details": details})

    async def _artifact(self) -> str:
        artifact = self.plan.artifact
        if artifact.kind == "archive":
            if self._builder is None:
                raise RuntimeFailed("this agent cannot build source archives")
            self._log.line("fetch", "fetching the source archive", event="phase-started")
            return await self._builder(self.plan, self._log)
        self._log.line("pull", f"using image {artifact.image}", event="phase-started")
        image_id = await self._runtime.image_id(artifact.image)
        if image_id is None:
            self._log.line("pull", f"image {artifact.image} is not local: pulling it")
            image_id = await self._runtime.pull(artifact.image)
            self._log.line("pull", f"pulled {artifact.image}", event="image-pulled")
        else:
            self._log.line("pull", f"image {artifact.image} is present locally")
        return image_id

    def _image(self) -> str:
        return self.plan.artifact.image

    async def _start_candidates(self) -> None:
        spec = self.plan.container
        if self.plan.route is not None and spec.internal_port is None:
            raise RuntimeFailed("the resource is exposed through the edge but has no internal port")
        ports: list[int] = []
        if spec.internal_port is not None:
            ports.append(spec.internal_port)
        if self.plan.health.port is not None and self.plan.health.port not in ports:
            ports.append(self.plan.health.port)
        self._log.line(
            "start", f"starting {spec.replicas} candidate container(s)", event="phase-started"
        )
        for replica in range(1, spec.replicas + 1):
            name = container_name(self.plan, replica)
            started = await self._runtime.run(
                RunSpec(
                    name=name,
                    image=self._image(),
                    command=spec.command,
                    environment=dict(spec.environment),
                    labels=plan_labels(self.plan, replica),
                    cpus=spec.cpus,
                    memory_bytes=spec.memory_bytes,
                    ports=tuple(ports),
                    networks=tuple(spec.networks),
                    mounts=self._mounts,
                    published=(
                        ((spec.internal_port, spec.host_port),)
                        if spec.host_port is not None and spec.internal_port is not None
                        else ()
                    ),
                )
            )
            self.candidates.append(started)
            ports_text = ", ".join(f"{c}->127.0.0.1:{h}" for c, h in started.host_ports.items())
            self._log.line(
                "start",
                f"started {name} ({started.container_id[:12]}) {ports_text}".rstrip(),
                event="candidate-started",
            )

    async def _free_host_port(self, old: list[ManagedContainer]) -> None:
        """A host port cannot be bound by two containers: stop the old ones first."""
        port = self.plan.container.host_port
        running = [c for c in old if c.state == "running"]
        if port is None or not running:
            return
        # Only one container can hold the port, so the resource is down until the new one is up;
        # the same bookkeeping as ``recreate``: a failed candidate starts them again.
        await self._recreate.stop_old(running, why=f"host port {port}")

    def _probe_port(self, started: Started) -> int | None:
        port = self.plan.health.port or self.plan.container.internal_port
        return started.host_ports.get(port) if port is not None else None

    async def _health(self) -> None:
        health = self.plan.health
        self._log.line(
            "health", "waiting for the candidate to become healthy", event="phase-started"
        )
        if health.start_period_seconds > 0:
            await asyncio.sleep(health.start_period_seconds)
        for started in self.candidates:
            await self._health_one(started, health)
        self._log.line("health", "all candidates are healthy", event="health-passed")

    async def _exited(self, started: Started) -> str | None:
        for container in await self._runtime.list_managed(self.plan.resource_id):
            if container.container_id == started.container_id:
                return None if container.state in ("running", "created") else container.state
        return "removed"

    async def _health_one(self, started: Started, health: HealthSpec) -> None:
        port = self._probe_port(started)
        if not health.enabled or port is None:
            state = await self._exited(started)
            if state is not None:
                raise HealthFailed(f"candidate {started.name} is {state}")
            self._log.line("health", f"{started.name} is running (no HTTP check)")
            return
        last = ""
        for attempt in range(1, health.retries + 1):
            begun = time.monotonic()
            passed, last = await self._probe(port, health)
            if passed:
                self._log.line("health", f"{started.name}: {last} (attempt {attempt})")
                return
            self._log.line(
                "health",
                f"{started.name}: attempt {attempt}/{health.retries}: {last}",
                level="warn",
            )
            state = await self._exited(started)
            if state is not None:
                raise HealthFailed(
                    f"health check failed: candidate {started.name} is {state} "
                    f"after {attempt} attempt(s): {last}"
                )
            if attempt < health.retries:
                await asyncio.sleep(max(0.0, health.interval_seconds - (time.monotonic() - begun)))
        raise HealthFailed(f"health check failed after {health.retries} attempts: {last}")

    async def _switch(self) -> None:
        route = self.plan.route
        if route is None or self._edge is None or not route.hostnames:
            self._log.line("switch", "no edge route: nothing to switch", event="phase-started")
            self.switched = True
            self.routed_domains = []
            return
        upstreams = []
        for started in self.candidates:
            port = started.host_ports.get(self.plan.container.internal_port or 0)
            if port is not None:
                upstreams.append(f"127.0.0.1:{port}")
        self._log.line(
            "switch",
            f"routing {', '.join(route.hostnames)} to the candidates",
            event="phase-started",
        )
        change = asyncio.ensure_future(
            self._edge.set_upstreams(
                self.plan.resource_id, route.hostnames, route.path_prefix, upstreams, route.domains
            )
        )
        try:
            await asyncio.shield(change)
        except asyncio.CancelledError:
            # Caddy may already route to the candidates: finish the change rather than
            # remove containers that serve traffic; the cancel then only shortens the drain.
            await change
            self.switched = True
            raise
        self.switched = True
        self.routed_domains = [domain.id for domain in route.domains]
        self._log.line(
            "switch", f"traffic switched to {', '.join(upstreams)}", event="traffic-switched"
        )

    async def _succeed(
        self, old: list[ManagedContainer], image_id: str, *, cut_short: bool = False
    ) -> RolloutResult:
        await self._drain(old, cut_short=cut_short)
        return RolloutResult(
            "succeeded",
            image_id=image_id,
            container_ids=[c.container_id for c in self.candidates],
            routed_domains=self.routed_domains,
        )

    async def _drain(self, old: list[ManagedContainer], *, cut_short: bool) -> None:
        spec = self.plan.container
        if self._recreate.stopped:
            # ``recreate`` stopped them before the start: no traffic left to drain.
            cut_short = True
        if old and not cut_short:
            self._log.line(
                "drain",
                f"draining {len(old)} old container(s) for {spec.drain_seconds:g} s",
                event="phase-started",
            )
            try:
                await asyncio.sleep(spec.drain_seconds)
            except asyncio.CancelledError:
                # Once traffic is switched the deployment has succeeded: a cancel only
                # shortens the wait, it never leaves old containers behind.
                _uncancel()
                self._log.line("drain", "canceled after the switch: drain cut short", level="warn")
        for container in old:
            try:
                await self._runtime.stop(container.container_id, spec.stop_grace_seconds)
                await self._runtime.remove(container.container_id)
                self._log.line(
                    "drain", f"removed old container {container.name}", event="old-removed"
                )
            except PlatformError as exc:
                self._log.line(
                    "drain", f"could not remove {container.name}: {exc.message}", level="warn"
                )
        self._log.line("drain", "deployment succeeded", event="deployment-succeeded")

    async def _cleanup(self, why: str, *, level: LogLevel) -> None:
        self._log.line("cleanup", why, level=level, event="phase-started")
        for started in self.candidates:
            try:
                await self._runtime.remove(started.container_id)
                self._log.line(
                    "cleanup", f"removed candidate {started.name}", event="candidate-removed"
                )
            except PlatformError as exc:
                self._log.line(
                    "cleanup", f"could not remove {started.name}: {exc.message}", level="warn"
                )
        # A container may exist even though run() failed (e.g. no port): remove by label too.
        known = {s.container_id for s in self.candidates}
        for container in await self._runtime.list_managed(self.plan.resource_id):
            if (
                container.deployment_id == self.plan.deployment_id
                and container.container_id not in known
            ):
                with contextlib.suppress(PlatformError):
                    await self._runtime.remove(container.container_id)
                    self._log.line(
                        "cleanup", f"removed candidate {container.name}", event="candidate-removed"
                    )
