"""Threshold policies: the metric catalogue, rule validation, and the non-flapping evaluation.

Evaluation runs as an observer of the monitoring service, after samples are committed. A rule's
state moves only when the TWO newest samples both sit on the same side of its current state (a
single spike never flips it; recovery needs two calm samples too); the policy's state is the
worst rule state. On a change, a signed webhook goes out in the background. Policies and
streaks live in memory, so a sample costs no query; evaluations are written when a rule's state
changes and by a periodic flush.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import orjson
from aiohttp import web
from tortoise.transactions import in_transaction

from coordinator.appkeys import KEYRING_KEY
from coordinator.db.monitoring_models import ThresholdPolicy
from coordinator.ids import new_id
from coordinator.monitoring.attribution import AttributionCheck
from coordinator.monitoring.threshold_rules import (
    CONFIRMING_SAMPLES,
    LABEL_KEY,
    SUMMED_METRICS,
    evaluate,
    metric_values,
    rule_states,
    webhook_binding,
)
from coordinator.monitoring.usage import (
    CONTAINER_FIELD,
    TotalsMap,
    container_totals,
    model_host_totals,
)
from coordinator.monitoring.webhooks import (
    STATE_CHANGED_EVENT,
    Delivery,
    WebhookSender,
    state_change_payload,
)
from coordinator.outbound import guard_for
from coordinator.secrets import Keyring, SecretError
from shared.messages.monitoring import ContainerUsage, Sample

logger = logging.getLogger(__name__)

# Streaks and observed values are written at least this often (state changes at once), so a
# restart loses at most this much of a streak.
FLUSH_SECONDS: Final = 60.0
FINAL_FLUSH_TIMEOUT: Final = 5.0
_TABLE: Final = ThresholdPolicy._meta.db_table
RESUM_EVERY: Final = 1000


class ScopeSum:
    """The container sums of one scope over servers: each server's newest contribution.

    Kept as a running total (add the new part, subtract the one it replaces) so a sample costs
    the same however many servers a scope spans; summed afresh now and then against drift.
    """

    def __init__(self) -> None:
        self._parts: dict[str, tuple[float, ...]] = {}
        self._total = [0.0] * len(SUMMED_METRICS)
        self._updates = 0

    def put(self, server_id: str, totals: TotalsMap) -> None:
        """Replace ``server_id``'s contribution with ``totals`` (``container_totals``)."""
        part = tuple(totals.get(signal, {}).get(metric, 0.0) for signal, metric in SUMMED_METRICS)
        before = self._parts.get(server_id)
        self._parts[server_id] = part
        self._updates += 1
        if self._updates % RESUM_EVERY == 0:
            self._total = [sum(column) for column in zip(*self._parts.values(), strict=True)]
            return
        for index, value in enumerate(part):
            self._total[index] += value - (before[index] if before else 0.0)

    def values(self) -> dict[str, float]:
        """The summed ``signal.metric`` values, as rules read them."""
        return {f"{s}.{m}": v for (s, m), v in zip(SUMMED_METRICS, self._total, strict=True)}


@dataclass(eq=False)
class LivePolicy:
    """An enabled policy as the evaluator holds it, with its current evaluation.

    ``dirty`` means the evaluation in memory is newer than the stored one: streaks and values
    move with every sample but are only written on a rule state change or by the periodic flush.
    """

    id: str
    kind: str
    scope_id: str
    rules: list[dict[str, Any]]
    webhook_url: str | None
    webhook_secret_sealed: str | None
    evaluation: dict[str, Any] | None
    dirty: bool = False


class ObservedService(Protocol):
    """What thresholds need of the monitoring service."""

    def add_observer(self, callback: Any, wants: Any = None) -> None:
        """Register ``callback(server_id, samples)``, awaited after samples are committed."""


class ThresholdEvaluator:
    """Evaluates enabled policies against committed samples and notifies on state changes.

    Policies live in memory (loaded once, reloaded after a POST). The observer callback only
    keeps the newest ``CONFIRMING_SAMPLES`` samples of each server that feeds a policy; a worker
    (``running``) evaluates them in passes. A pass costs no query unless a rule changes state
    (then one write) or a container names a resource the attribution cache has not seen.
    """

    def __init__(
        self, keyring: Keyring, sender: WebhookSender, *, flush_seconds: float = FLUSH_SECONDS
    ) -> None:
        self.keyring = keyring
        self.sender = sender
        self.flush_seconds = flush_seconds
        self._policies: dict[tuple[str, str], LivePolicy] = {}
        self._by_id: dict[str, LivePolicy] = {}
        self._container_kinds: tuple[str, ...] = ()
        self._version = 0
        self._loaded_version = -1
        self._pending: dict[str, list[Sample]] = {}
        self._ready = asyncio.Event()
        # The same check ingest uses for the ``attributionTrusted`` flag of stored rows: the
        # observer gets the wire samples, which do not carry it.
        self._attribution = AttributionCheck()
        # Scopes spanning servers sum every server's newest contribution (kept in memory; after
        # a restart a server counts again from its next sample).
        self._contributions: dict[tuple[str, str], ScopeSum] = {}
        self._fed_by: dict[str, set[tuple[str, str]]] = {}
        # Other capabilities (notifications) hear about state changes; called during a pass,
        # so they must not block (spawn, queue).
        self.state_observers: list[Callable[[dict[str, Any]], None]] = []
        self.evaluated_samples = 0
        self.superseded_samples = 0
        self.stored_evaluations = 0

    def policies_changed(self) -> None:
        """Called after a policy is written: reload the policies before the next pass."""
        self._version += 1

    def live_evaluation(self, policy_id: str) -> dict[str, Any] | None:
        """The current evaluation of an enabled policy (newer than the stored one), if loaded."""
        policy = self._by_id.get(policy_id)
        return policy.evaluation if policy is not None else None

    def wants_samples(self, server_id: str, samples: list[Sample]) -> bool:
        """Whether samples of ``server_id`` may matter (asked by the writer on arrival): they
        may feed a policy, or the policies changed and are not reloaded yet."""
        return self._loaded_version != self._version or self._feeds_policy(server_id, samples)

    async def on_samples(self, server_id: str, samples: list[Sample]) -> None:
        """Observer callback: keep the newest samples of a server that feeds a policy."""
        if not self.wants_samples(server_id, samples):
            return
        kept = [*self._pending.get(server_id, ()), *samples]
        # Older samples cannot move a state any more: only the newest two are compared.
        self.superseded_samples += max(0, len(kept) - CONFIRMING_SAMPLES)
        self._pending[server_id] = kept[-CONFIRMING_SAMPLES:]
        self._ready.set()

    def _feeds_policy(self, server_id: str, samples: list[Sample]) -> bool:
        """Whether the samples may touch a policy (by label; the pass checks trust)."""
        if ("server", server_id) in self._policies or server_id in self._fed_by:
            return True
        policies = self._policies
        return any(
            (kind, owner) in policies
            for sample in samples
            for container in sample.containers
            for kind in self._container_kinds
            if (owner := getattr(container, CONTAINER_FIELD[kind]))
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Evaluate in passes until the context exits, then store what is not stored yet."""
        async with asyncio.TaskGroup() as tasks:
            worker = tasks.create_task(self._work())
            try:
                yield
            finally:
                worker.cancel()
        try:
            async with asyncio.timeout(FINAL_FLUSH_TIMEOUT):
                await self.flush()
        except Exception:  # the streaks restart from the stored evaluation; states were stored
            logger.exception("storing threshold evaluations at shutdown failed")

    async def _work(self) -> None:
        next_flush = time.monotonic() + self.flush_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_flush - time.monotonic())):
                    _ = await self._ready.wait()
            try:
                if self._ready.is_set():
                    await self.evaluate_pending()
                if time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + self.flush_seconds
                    await self.flush()
            except Exception:
                logger.exception("threshold evaluation failed")

    async def evaluate_pending(self) -> None:
        """One pass: evaluate the kept samples of every server, store rule state changes."""
        self._ready.clear()
        policies = await self._current_policies()
        work, self._pending = self._pending, {}
        if self._container_kinds:
            await self._attribution.load([s for samples in work.values() for s in samples])
        changed: dict[str, LivePolicy] = {}
        now = datetime.now(UTC)
        for server_id, samples in work.items():
            organization = None
            if self._container_kinds:
                organization = await self._attribution.organization_of(server_id)
            for sample in samples:
                self.evaluated_samples += 1
                host = policies.get(("server", server_id))
                if host is not None:
                    values = metric_values(model_host_totals(sample.totals))
                    self._advance(host, values, sample, changed, now)
                if self._container_kinds:
                    self._evaluate_containers(server_id, sample, organization, changed, now)
        if changed:
            await self._store(list(changed.values()))

    def _evaluate_containers(
        self,
        server_id: str,
        sample: Sample,
        organization: str | None,
        changed: dict[str, LivePolicy],
        now: datetime,
    ) -> None:
        groups = self._trusted_groups(sample, organization)
        fed = self._fed_by.get(server_id, set())
        for key in sorted((groups.keys() & self._policies.keys()) | fed):
            policy = self._policies.get(key)
            if policy is None:
                continue
            self._fed_by.setdefault(server_id, set()).add(key)
            scope_sum = self._contributions.setdefault(key, ScopeSum())
            # A scope whose containers are gone counts zero here, so its rules can recover.
            scope_sum.put(server_id, container_totals(groups.get(key, [])))
            self._advance(policy, scope_sum.values(), sample, changed, now)

    def _trusted_groups(
        self, sample: Sample, organization: str | None
    ) -> dict[tuple[str, str], list[ContainerUsage]]:
        """The sample's containers by watched scope, counting only trusted attributions.

        Labels come from the agent: a container counts only when its resource belongs to the
        server's organization and its other labels agree with that resource (``trusted`` also
        fills the project and environment a label left out).
        """
        groups: dict[tuple[str, str], list[ContainerUsage]] = {}
        for container in sample.containers:
            if not container.resource_id:
                continue  # never trusted: no resource to check the other labels against
            labels: dict[str, Any] = {
                LABEL_KEY[kind]: getattr(container, field)
                for kind, field in CONTAINER_FIELD.items()
            }
            if not self._attribution.trusted(organization, labels):
                continue
            for kind in self._container_kinds:
                owner = labels.get(LABEL_KEY[kind])
                if owner:
                    groups.setdefault((kind, str(owner)), []).append(container)
        return groups

    def _advance(
        self,
        policy: LivePolicy,
        values: dict[str, float],
        sample: Sample,
        changed: dict[str, LivePolicy],
        now: datetime,
    ) -> None:
        before = policy.evaluation or {}
        after = evaluate(policy.rules, before, values, sample_id=sample.sample_id, at=now)
        policy.evaluation, policy.dirty = after, True
        if rule_states(after) != rule_states(before):
            changed[policy.id] = policy
        previous_state = str(before.get("state", "ok"))
        if after["state"] != previous_state:
            self._notify(policy, previous_state, after, sample)
            self._tell_observers(policy, previous_state, after, sample)

    async def _current_policies(self) -> dict[tuple[str, str], LivePolicy]:
        """The enabled policies, reloaded (one query) when a POST changed them."""
        if self._loaded_version == self._version:
            return self._policies
        version = self._version
        rows = await ThresholdPolicy.filter(enabled=True).values(
            "id", "scope_kind", "scope_id", "rules", "webhook_url", "webhook_secret_sealed",
            "evaluation",
        )  # fmt: skip
        fresh: dict[tuple[str, str], LivePolicy] = {}
        for row in rows:
            known = self._by_id.get(str(row["id"]))
            fresh[(str(row["scope_kind"]), str(row["scope_id"]))] = LivePolicy(
                id=str(row["id"]),
                kind=str(row["scope_kind"]),
                scope_id=str(row["scope_id"]),
                rules=list(row["rules"]),
                webhook_url=row["webhook_url"],
                webhook_secret_sealed=row["webhook_secret_sealed"],
                # Memory is never older than the row: only this evaluator writes evaluations.
                evaluation=known.evaluation if known else row["evaluation"],
                dirty=known.dirty if known else False,
            )
        by_id = {policy.id: policy for policy in fresh.values()}
        # A disabled policy keeps its latest evaluation for when it is enabled again.
        await self._store([p for p in self._by_id.values() if p.dirty and p.id not in by_id])
        for key in self._contributions.keys() - fresh.keys():
            del self._contributions[key]
        self._fed_by = {
            server_id: kept
            for server_id, keys in self._fed_by.items()
            if (kept := keys & fresh.keys())
        }
        self._policies, self._by_id = fresh, by_id
        self._container_kinds = tuple(sorted({k for k, _ in fresh if k in CONTAINER_FIELD}))
        self._loaded_version = version
        return fresh

    async def flush(self) -> None:
        """Store every evaluation that moved since it was last stored."""
        await self._store([p for p in self._by_id.values() if p.dirty])

    async def _store(self, policies: Sequence[LivePolicy]) -> None:
        """Write evaluations in one transaction (a plain batched UPDATE, no ORM objects)."""
        written = [(p, p.evaluation) for p in policies if p.evaluation is not None]
        if not written:
            return
        async with in_transaction() as connection:
            marks = ("?", "?") if connection.capabilities.dialect == "sqlite" else ("$1", "$2")
            sql = f'UPDATE "{_TABLE}" SET "evaluation" = {marks[0]} WHERE "id" = {marks[1]}'  # noqa: S608
            await connection.execute_many(
                sql, [[orjson.dumps(evaluation).decode(), p.id] for p, evaluation in written]
            )
        self.stored_evaluations += len(written)
        for policy, evaluation in written:
            if policy.evaluation is evaluation:  # not moved on while the write was in flight
                policy.dirty = False

    def _tell_observers(
        self, policy: LivePolicy, before: str, after: dict[str, Any], sample: Sample
    ) -> None:
        change = {
            "policyId": policy.id,
            "scopeKind": policy.kind,
            "scopeId": policy.scope_id,
            "previousState": before,
            "state": after["state"],
            "crossed": after.get("crossed", []),
            "sampleId": sample.sample_id,
            "observedAt": sample.observed_at.isoformat(),
        }
        for observer in self.state_observers:
            try:
                observer(change)
            except Exception:
                logger.exception("a threshold state observer failed")

    def _notify(
        self, policy: LivePolicy, before: str, after: dict[str, Any], sample: Sample
    ) -> None:
        if not policy.webhook_url or not policy.webhook_secret_sealed:
            return
        try:
            secret = self.keyring.decrypt(policy.webhook_secret_sealed, webhook_binding(policy.id))
        except SecretError:
            logger.warning("threshold policy %s: webhook secret cannot be decrypted", policy.id)
            return
        delivery_id = new_id("whk")
        payload = state_change_payload(
            delivery_id=delivery_id,
            policy_id=policy.id,
            scope={"kind": policy.kind, f"{policy.kind}Id": policy.scope_id},
            previous_state=before,
            evaluation=after,
            sample_id=sample.sample_id,
            observed_at=sample.observed_at,
        )
        self.sender.submit(
            Delivery(
                delivery_id=delivery_id,
                url=policy.webhook_url,
                secret=secret,
                event=STATE_CHANGED_EVENT,
                payload=payload,
            )
        )


EVALUATOR_KEY: web.AppKey[ThresholdEvaluator] = web.AppKey("threshold_evaluator")


def install(app: web.Application, service: ObservedService) -> None:
    """Attach threshold evaluation to the monitoring ``service`` and run its webhook sender."""
    guard = guard_for(app)
    evaluator = ThresholdEvaluator(app[KEYRING_KEY], WebhookSender(guard=guard))
    app[EVALUATOR_KEY] = evaluator
    service.add_observer(evaluator.on_samples, evaluator.wants_samples)

    async def thresholds_ctx(app: web.Application) -> AsyncIterator[None]:
        # Appended after the database context, so it stops (reverse order) before the DB closes.
        async with evaluator.sender.running(), evaluator.running():
            yield

    app.cleanup_ctx.append(thresholds_ctx)
