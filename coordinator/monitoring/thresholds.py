"""Threshold policies: the metric catalogue, rule validation, and the non-flapping evaluation.

Evaluation runs as an observer of the monitoring service, after each batch of samples is
committed. A rule's state moves only when the TWO newest samples both sit on the same side of
its current state (a single spike never flips it; recovery needs two calm samples too); the
policy's state is the worst rule state. On a change, a signed webhook goes out in the background.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Literal, Protocol

from aiohttp import web

from coordinator.appkeys import KEYRING_KEY
from coordinator.db import models
from coordinator.db.monitoring_models import ThresholdPolicy
from coordinator.ids import new_id
from coordinator.monitoring.usage import (
    CONTAINER_FIELD,
    TotalsMap,
    add_totals,
    container_totals,
    host_totals,
)
from coordinator.monitoring.webhooks import STATE_CHANGED_EVENT, Delivery, WebhookSender
from coordinator.secrets import Keyring, SecretError
from shared.messages.monitoring import Sample

logger = logging.getLogger(__name__)

State = Literal["ok", "warning", "critical"]
Comparator = Literal["greater-than-or-equal", "less-than-or-equal", "greater-than", "less-than"]
SEVERITY_RANK: Final[dict[str, int]] = {"ok": 0, "warning": 1, "critical": 2}
RANKED_STATES: Final[tuple[State, ...]] = ("ok", "warning", "critical")
# Sample batches waiting for evaluation; beyond this they are skipped (and counted), so a slow
# database never makes the ingest path wait on thresholds.
QUEUE_BOUND: Final = 10_000
# How many consecutive samples must agree before a rule changes state.
CONFIRMING_SAMPLES: Final = 2

# Metrics a server-scope rule may name, per signal (docs/thresholds.md says what each measures).
# The ``usedPercent`` metrics are derived: used / total * 100.
HOST_METRICS: Final[dict[str, frozenset[str]]] = {
    "cpu": frozenset(
        {"busyPercent", "containerCpuPercent", "loadAverage1m", "loadAverage5m", "loadAverage15m"}
    ),
    "memory": frozenset({"usedBytes", "availableBytes", "containerUsedBytes", "usedPercent"}),
    "disk": frozenset({"usedBytes", "availableBytes", "attributedBytes", "usedPercent"}),
    "inode": frozenset({"used", "available", "usedPercent"}),
    "docker": frozenset({"imageBytes", "buildCacheBytes", "containerWritableBytes"}),
    "network": frozenset({"rxBytes", "txBytes"}),
}
# Project, environment, resource and deployment scopes only have sums over their containers.
CONTAINER_METRICS: Final[dict[str, frozenset[str]]] = {
    "cpu": frozenset({"containerCpuPercent"}),
    "memory": frozenset({"containerUsedBytes"}),
    "disk": frozenset({"attributedBytes"}),
    "network": frozenset({"rxBytes", "txBytes"}),
}


def allowed_metrics(scope_kind: str) -> dict[str, frozenset[str]]:
    """The signal -> metrics a rule may name for a scope kind."""
    return dict(HOST_METRICS if scope_kind == "server" else CONTAINER_METRICS)


def metric_values(totals: TotalsMap) -> dict[str, float]:
    """Flatten totals to ``signal.metric`` paths and add the derived percent metrics."""
    values = {
        f"{signal}.{metric}": value
        for signal, block in totals.items()
        for metric, value in block.items()
    }
    for signal, used, total in (
        ("memory", "usedBytes", "totalBytes"),
        ("disk", "usedBytes", "totalBytes"),
        ("inode", "used", "total"),
    ):
        block = totals.get(signal, {})
        if block.get(total):
            values[f"{signal}.usedPercent"] = block.get(used, 0.0) / block[total] * 100
    return values


def crosses(value: float, boundary: float, comparator: str) -> bool:
    """Whether ``value`` is on the alarming side of ``boundary``."""
    match comparator:
        case "greater-than-or-equal":
            return value >= boundary
        case "greater-than":
            return value > boundary
        case "less-than-or-equal":
            return value <= boundary
        case _:
            return value < boundary


def ordering_problem(warning: float, critical: float, comparator: str) -> str | None:
    """Why the pair cannot work with ``comparator`` (critical must be the more extreme), or None."""
    if comparator.startswith("greater") and critical < warning:
        return "critical must be greater than or equal to warning for a greater-than comparator"
    if comparator.startswith("less") and critical > warning:
        return "critical must be less than or equal to warning for a less-than comparator"
    return None


def observed_severity(rule: dict[str, Any], value: float) -> State:
    """The severity one sample's value alone would have for ``rule``."""
    comparator = str(rule["comparator"])
    if crosses(value, float(rule["critical"]), comparator):
        return "critical"
    if crosses(value, float(rule["warning"]), comparator):
        return "warning"
    return "ok"


def next_rule_state(current: State, recent: Sequence[State]) -> State:
    """Move only when the last ``CONFIRMING_SAMPLES`` all sit on one side of ``current``.

    The new state is the one of them nearest to ``current`` (ok, then warning then critical
    both above ok: the rule becomes warning, the level both samples confirm).
    """
    if len(recent) < CONFIRMING_SAMPLES:
        return current
    window = recent[-CONFIRMING_SAMPLES:]
    ranks = [SEVERITY_RANK[s] for s in window]
    here = SEVERITY_RANK[current]
    if all(r > here for r in ranks):
        return RANKED_STATES[min(ranks)]
    if all(r < here for r in ranks):
        return RANKED_STATES[max(ranks)]
    return current


def evaluate(
    rules: Sequence[dict[str, Any]],
    previous: dict[str, Any] | None,
    values: dict[str, float],
    *,
    sample_id: str,
    at: datetime,
) -> dict[str, Any]:
    """One evaluation step: the stored evaluation after one more sample."""
    before = previous or {}
    earlier_rules: dict[str, Any] = dict(before.get("rules") or {})
    rule_states: dict[str, Any] = {}
    crossed: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for rule in rules:
        rule_id = str(rule["ruleId"])
        path = f"{rule['signal']}.{rule['metric']}"
        kept = earlier_rules.get(rule_id) or {}
        current: State = kept.get("state", "ok")
        recent: list[State] = list(kept.get("recent", []))
        value = values.get(path)
        if value is None:
            # No reading is not a calm reading: the streak pauses instead of counting it.
            missing.append(
                {
                    "source": "monitoring-store",
                    "code": "metric-unavailable",
                    "message": f"the sample has no value for {path}",
                    "retriable": True,
                }
            )
        else:
            recent = [*recent, observed_severity(rule, value)][-CONFIRMING_SAMPLES:]
            current = next_rule_state(current, recent)
        rule_states[rule_id] = {"state": current, "recent": recent, "observedValue": value}
        if current != "ok":
            crossed.append(
                {
                    "ruleId": rule_id,
                    "signal": rule["signal"],
                    "metric": rule["metric"],
                    "severity": current,
                    "observedValue": value if value is not None else kept.get("observedValue"),
                    "boundary": rule[current],
                }
            )
    state = max(
        (r["state"] for r in rule_states.values()), key=SEVERITY_RANK.__getitem__, default="ok"
    )
    return {
        "state": state,
        "evaluatedAt": at.isoformat(),
        "sourceSampleId": sample_id,
        "crossed": crossed,
        "sourceErrors": missing,
        "rules": rule_states,
    }


def webhook_binding(policy_id: str) -> str:
    """Associated data tying a sealed webhook secret to its policy row."""
    return f"threshold-webhook:{policy_id}"


async def _organization_of(kind: str, target_id: str) -> str | None:
    """The organization owning a server, project, environment, resource or deployment."""
    match kind:
        case "server":
            server = await models.Server.get_or_none(id=target_id)
            return str(server.organization_id) if server else None  # type: ignore[attr-defined]
        case "project":
            project = await models.Project.get_or_none(id=target_id)
            return str(project.organization_id) if project else None  # type: ignore[attr-defined]
        case "environment":
            environment = await models.Environment.get_or_none(id=target_id)
            if environment is None:
                return None
            return await _organization_of("project", environment.project_id)  # type: ignore[attr-defined]
        case "resource":
            resource = await models.Resource.get_or_none(id=target_id)
            if resource is None:
                return None
            return await _organization_of("project", resource.project_id)  # type: ignore[attr-defined]
        case _:
            deployment = await models.Deployment.get_or_none(id=target_id)
            return deployment.organization_id if deployment else None


class ObservedService(Protocol):
    """What thresholds need of the monitoring service."""

    def add_observer(self, callback: Any) -> None:
        """Register ``callback(server_id, samples)``, awaited after samples are committed."""


@lru_cache(maxsize=8)
def _watched_kinds(scopes: frozenset[tuple[str, str]]) -> frozenset[str]:
    """The container scope kinds among policy scopes (cached: the index changes rarely)."""
    return frozenset(kind for kind, _ in scopes if kind in CONTAINER_FIELD)


class ThresholdEvaluator:
    """Evaluates enabled policies against each committed sample and notifies on state changes.

    The observer callback runs in the ingest writer's path, so it only matches the samples
    against an in-memory index of policy scopes and queues the few that matter; a worker task
    (``running``) does the database work.
    """

    def __init__(self, keyring: Keyring, sender: WebhookSender) -> None:
        self.keyring = keyring
        self.sender = sender
        self._queue: asyncio.Queue[tuple[str, list[Sample]]] = asyncio.Queue(QUEUE_BOUND)
        # Enabled policy scopes, (kind, id); None until loaded, reloaded after every change.
        self._scopes: frozenset[tuple[str, str]] | None = None
        self._version = 0
        self.dropped_batches = 0
        # Scopes spanning servers sum every server's newest contribution (kept in memory; after
        # a restart a server counts again from its next sample).
        self._contributions: dict[tuple[str, str], dict[str, TotalsMap]] = {}
        # Organizations never change for a row, so these caches need no invalidation.
        self._organizations: dict[str, str | None] = {}
        self._scope_organizations: dict[tuple[str, str], str | None] = {}

    def policies_changed(self) -> None:
        """Called after a policy is written: reload the scope index before the next match."""
        self._version += 1
        self._scopes = None

    async def on_samples(self, server_id: str, samples: list[Sample]) -> None:
        """Observer callback: queue the samples that touch a policy scope; never blocks."""
        scopes = self._scopes
        if scopes is not None and not any(
            self._touched(server_id, sample, scopes) for sample in samples
        ):
            return
        try:
            self._queue.put_nowait((server_id, samples))
        except asyncio.QueueFull:
            self.dropped_batches += 1
            logger.warning(
                "threshold queue full: %d samples of %s skipped", len(samples), server_id
            )

    def _touched(
        self, server_id: str, sample: Sample, scopes: frozenset[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """The indexed scopes a sample feeds (including ones this server fed before)."""
        keys = {("server", server_id)}
        # Only look at the labels of kinds some policy watches (usually none: server policies).
        fields = [(kind, CONTAINER_FIELD[kind]) for kind in _watched_kinds(scopes)]
        for container in sample.containers if fields else ():
            for kind, field in fields:
                owner = getattr(container, field)
                if owner:
                    keys.add((kind, owner))
        keys.update(k for k, per_server in self._contributions.items() if server_id in per_server)
        return keys & scopes

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Evaluate queued samples in order until the context exits."""
        async with asyncio.TaskGroup() as tasks:
            worker = tasks.create_task(self._work())
            try:
                yield
            finally:
                worker.cancel()

    async def _work(self) -> None:
        while True:
            server_id, samples = await self._queue.get()
            try:
                scopes = self._scopes
                if scopes is None:
                    version = self._version
                    rows = await ThresholdPolicy.filter(enabled=True).values_list(
                        "scope_kind", "scope_id"
                    )
                    scopes = frozenset((str(kind), str(scope_id)) for kind, scope_id in rows)
                    if version == self._version:  # no change landed while loading
                        self._scopes = scopes
                for sample in samples:
                    await self._evaluate_sample(server_id, sample, scopes)
            except Exception:
                logger.exception("threshold evaluation failed for server %s", server_id)

    async def _evaluate_sample(
        self, server_id: str, sample: Sample, scopes: frozenset[tuple[str, str]]
    ) -> None:
        touched = self._touched(server_id, sample, scopes)
        if not touched:
            return
        policies: list[ThresholdPolicy] = []
        for kind, scope_id in sorted(touched):
            policy = await ThresholdPolicy.get_or_none(
                enabled=True, scope_kind=kind, scope_id=scope_id
            )
            if policy is not None and (
                kind == "server" or await self._same_organization(server_id, policy)
            ):
                policies.append(policy)
        host = host_totals(sample.totals.model_dump(mode="json", by_alias=True))
        for policy in policies:
            if policy.scope_kind == "server":
                totals = host
            else:
                field = CONTAINER_FIELD[policy.scope_kind]
                mine = [c for c in sample.containers if getattr(c, field) == policy.scope_id]
                per_server = self._contributions.setdefault(
                    (policy.scope_kind, policy.scope_id), {}
                )
                per_server[server_id] = container_totals(mine)
                totals = {}
                for part in per_server.values():
                    add_totals(totals, part)
            await self._apply(policy, metric_values(totals), sample)

    async def _same_organization(self, server_id: str, policy: ThresholdPolicy) -> bool:
        """Labels come from the agent: only count them for scopes of the server's own
        organization, so one tenant's agent cannot move another tenant's thresholds."""
        key = (policy.scope_kind, policy.scope_id)
        if server_id not in self._organizations:
            self._organizations[server_id] = await _organization_of("server", server_id)
        if key not in self._scope_organizations:
            self._scope_organizations[key] = await _organization_of(*key)
        return self._organizations[server_id] == self._scope_organizations[key] is not None

    async def _apply(
        self, policy: ThresholdPolicy, values: dict[str, float], sample: Sample
    ) -> None:
        previous = policy.evaluation or {}
        after = evaluate(
            policy.rules, previous, values, sample_id=sample.sample_id, at=datetime.now(UTC)
        )
        await ThresholdPolicy.filter(id=policy.id).update(evaluation=after)
        before_state = previous.get("state", "ok")
        if after["state"] != before_state:
            self._notify(policy, str(before_state), after, sample)

    def _notify(
        self, policy: ThresholdPolicy, before: str, after: dict[str, Any], sample: Sample
    ) -> None:
        if not policy.webhook_url or not policy.webhook_secret_sealed:
            return
        try:
            secret = self.keyring.decrypt(policy.webhook_secret_sealed, webhook_binding(policy.id))
        except SecretError:
            logger.warning("threshold policy %s: webhook secret cannot be decrypted", policy.id)
            return
        payload = {
            "event": STATE_CHANGED_EVENT,
            "deliveryId": new_id("whk"),
            "policyId": policy.id,
            "scope": {"kind": policy.scope_kind, f"{policy.scope_kind}Id": policy.scope_id},
            "previousState": before,
            "state": after["state"],
            "crossed": after["crossed"],
            "sampleId": sample.sample_id,
            "observedAt": sample.observed_at.isoformat(),
            "sentAt": datetime.now(UTC).isoformat(),
        }
        self.sender.submit(
            Delivery(
                delivery_id=str(payload["deliveryId"]),
                url=policy.webhook_url,
                secret=secret,
                event=STATE_CHANGED_EVENT,
                payload=payload,
            )
        )


EVALUATOR_KEY: web.AppKey[ThresholdEvaluator] = web.AppKey("threshold_evaluator")


def install(app: web.Application, service: ObservedService) -> None:
    """Attach threshold evaluation to the monitoring ``service`` and run its webhook sender."""
    evaluator = ThresholdEvaluator(app[KEYRING_KEY], WebhookSender())
    app[EVALUATOR_KEY] = evaluator
    service.add_observer(evaluator.on_samples)

    async def thresholds_ctx(app: web.Application) -> AsyncIterator[None]:
        # Appended after the database context, so it stops (reverse order) before the DB closes.
        async with evaluator.sender.running(), evaluator.running():
            yield

    app.cleanup_ctx.append(thresholds_ctx)
