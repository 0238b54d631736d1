"""Threshold policy routes: show a scope's policy with its evaluation, and create or replace it."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, Field

from coordinator.api.monitoring_schemas import ScopeQuery
from coordinator.api.routing import Call, route
from coordinator.api.schemas import ApiRequest
from coordinator.db.monitoring_models import ThresholdPolicy
from coordinator.monitoring import policies
from coordinator.monitoring.scope_targets import resolve_scope
from coordinator.monitoring.threshold_rules import (
    Comparator,
    State,
    allowed_metrics,
    ordering_problem,
)
from coordinator.monitoring.thresholds import EVALUATOR_KEY
from coordinator.monitoring.usage import MonitoringScope, make_scope
from coordinator.outbound import guard_for
from coordinator.secrets import MASK
from shared.errors import InvalidRequest
from shared.wire import WireModel

TAG = "runtime-monitoring"
Signal = Literal["cpu", "memory", "disk", "inode", "docker", "network"]


class ThresholdRule(WireModel):
    """One rule: alarm when ``signal.metric`` compares past ``warning`` / ``critical``."""

    rule_id: str | None = Field(default=None, min_length=1, max_length=64)
    signal: Signal
    metric: str = Field(min_length=1, max_length=64)
    warning: float
    critical: float
    comparator: Comparator = "greater-than-or-equal"


class ThresholdScope(WireModel):
    """The scope object of a policy body."""

    kind: Literal["server", "project", "environment", "resource", "deployment"]
    server_id: str | None = Field(default=None, max_length=40)
    project_id: str | None = Field(default=None, max_length=40)
    environment_id: str | None = Field(default=None, max_length=40)
    resource_id: str | None = Field(default=None, max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)


class SetThresholdsRequest(ApiRequest):
    """``POST /runtime-monitoring/thresholds``: replaces the scope's policy."""

    scope: ThresholdScope
    rules: list[ThresholdRule] = Field(min_length=1, max_length=50)
    enabled: bool = True
    webhook_url: AnyHttpUrl | None = None
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=500)


class ThresholdPolicyView(WireModel):
    """``runtime-monitoring-thresholds.policy/v1`` (the webhook secret only ever as ``****``)."""

    schema_version: Literal["runtime-monitoring-thresholds.policy/v1"] = (
        "runtime-monitoring-thresholds.policy/v1"
    )
    policy_id: str
    scope: MonitoringScope
    rules: list[ThresholdRule]
    enabled: bool
    webhook_url: str | None
    webhook_secret: str | None
    updated_at: datetime
    updated_by_actor_id: str
    updated_by_actor_kind: str


class PolicyResponse(WireModel):
    """Answer of the POST."""

    policy: ThresholdPolicyView


class Crossed(WireModel):
    """A rule currently past a boundary."""

    rule_id: str
    signal: str
    metric: str
    severity: Literal["warning", "critical"]
    observed_value: float | None
    boundary: float


class EvaluationSourceError(WireModel):
    """Why part of the evaluation is missing."""

    source: str
    code: str
    message: str
    retriable: bool


class Evaluation(WireModel):
    """The policy's current evaluation (``ok`` with no sample yet)."""

    state: State
    evaluated_at: datetime | None
    source_sample_id: str | None
    crossed: list[Crossed]
    next_actions: list[str]
    source_errors: list[EvaluationSourceError]


class ThresholdsShow(WireModel):
    """``runtime-monitoring-thresholds.show/v1``."""

    schema_version: Literal["runtime-monitoring-thresholds.show/v1"] = (
        "runtime-monitoring-thresholds.show/v1"
    )
    scope: MonitoringScope
    generated_at: datetime
    policy: ThresholdPolicyView
    evaluation: Evaluation


class ThresholdsQuery(ScopeQuery):
    """Find the policy by scope or by ``policyId``; ``window.*`` is accepted and unused."""

    policy_id: str | None = Field(default=None, max_length=40)
    window_from: str | None = Field(default=None, alias="window.from", max_length=40)
    window_to: str | None = Field(default=None, alias="window.to", max_length=40)


def policy_view(row: ThresholdPolicy) -> ThresholdPolicyView:
    """The API view of a stored policy."""
    return ThresholdPolicyView(
        policy_id=row.id,
        scope=make_scope(row.scope_kind, row.scope_id),  # type: ignore[arg-type]
        rules=[ThresholdRule.model_validate(rule) for rule in row.rules],
        enabled=row.enabled,
        webhook_url=row.webhook_url,
        webhook_secret=MASK if row.webhook_secret_sealed else None,
        updated_at=row.updated_at,
        updated_by_actor_id=row.updated_by_actor_id,
        updated_by_actor_kind=row.updated_by_actor_kind,
    )


def _next_actions(state: str, scope_kind: str) -> list[str]:
    if state == "ok":
        return []
    actions = ["inspect-runtime-usage", "inspect-runtime-monitoring-rollup"]
    if scope_kind == "server":
        actions.append("inspect-server-capacity")
    return actions


def evaluation_view(row: ThresholdPolicy, live: dict[str, Any] | None = None) -> Evaluation:
    """The API view of an evaluation (see ``monitoring.thresholds.evaluate``).

    ``live`` is the evaluator's in-memory one: newer than the row, which is only written when a
    rule changes state and by the periodic flush.
    """
    stored: dict[str, Any] = live or row.evaluation or {}
    state = str(stored.get("state", "ok"))
    errors = [EvaluationSourceError.model_validate(e) for e in stored.get("sourceErrors", [])]
    if not stored:
        errors.append(
            EvaluationSourceError(
                source="monitoring-store",
                code="no-samples",
                message="no sample has been evaluated against this policy yet",
                retriable=True,
            )
        )
    return Evaluation(
        state=state,  # type: ignore[arg-type]
        evaluated_at=stored.get("evaluatedAt"),
        source_sample_id=stored.get("sourceSampleId"),
        crossed=[Crossed.model_validate(c) for c in stored.get("crossed", [])],
        next_actions=_next_actions(state, row.scope_kind),
        source_errors=errors,
    )


def _validated_rules(kind: str, rules: list[ThresholdRule]) -> list[dict[str, Any]]:
    """Rules with ids, or ``InvalidRequest`` listing every problem found."""
    allowed = allowed_metrics(kind)
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    stored: list[dict[str, Any]] = []
    for index, rule in enumerate(rules):
        where = f"rules.{index}"
        metrics = allowed.get(rule.signal, frozenset())
        if rule.metric not in metrics:
            known = ", ".join(sorted(metrics)) or "none"
            problems.append(
                {
                    "field": f"{where}.metric",
                    "message": f"{rule.signal}.{rule.metric} is not a {kind} metric "
                    f"(known for {rule.signal}: {known})",
                }
            )
        problem = ordering_problem(rule.warning, rule.critical, rule.comparator)
        if problem:
            problems.append({"field": f"{where}.critical", "message": problem})
        rule_id = rule.rule_id or f"{rule.signal}-{rule.metric}"
        if rule_id in seen:
            problems.append({"field": f"{where}.ruleId", "message": f"duplicate ruleId {rule_id}"})
        seen.add(rule_id)
        stored.append(rule.model_copy(update={"rule_id": rule_id}).model_dump(by_alias=True))
    if problems:
        raise InvalidRequest("threshold rules are invalid", details={"problems": problems})
    return stored


@route(
    "POST",
    "/runtime-monitoring/thresholds",
    summary="Create or replace the threshold policy of a scope (non-enforcing)",
    tag=TAG,
    permission="runtime-monitoring:write",
    body=SetThresholdsRequest,
    response=PolicyResponse,
)
async def set_thresholds(call: Call) -> PolicyResponse:
    """Validate rules against the metric catalogue, seal the webhook secret, audit the change."""
    body = call.body(SetThresholdsRequest)
    scope = MonitoringScope.model_validate(body.scope.model_dump())
    if not scope.target_id:
        raise InvalidRequest(f"a {scope.kind} scope needs scope.{scope.kind}Id")
    target = await resolve_scope(call.actor, scope)
    rules = _validated_rules(scope.kind, body.rules)
    if body.webhook_url is not None:
        # What the URL alone shows is refused here; names are checked again at each delivery.
        guard_for(call.request.app).check_url(str(body.webhook_url), field_name="webhookUrl")
    row = await policies.save(
        call.actor,
        call.keyring,
        call.request_id,
        target.organization_id,
        scope,
        rules,
        enabled=body.enabled,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        webhook_secret=body.webhook_secret,
    )
    evaluator = call.request.app.get(EVALUATOR_KEY)
    if evaluator is not None:
        evaluator.policies_changed()
    return PolicyResponse(policy=policy_view(row))


@route(
    "GET",
    "/runtime-monitoring/thresholds",
    summary="Show a scope's threshold policy and its current evaluation",
    tag=TAG,
    permission="runtime-monitoring:read",
    query=ThresholdsQuery,
    response=ThresholdsShow,
)
async def show_thresholds(call: Call) -> ThresholdsShow:
    """Find by ``policyId`` or scope; 404 when the scope has no policy."""
    query = call.query(ThresholdsQuery)
    scope = query.nested_scope()
    if query.policy_id:
        row = await policies.by_id(query.policy_id)
        found = make_scope(row.scope_kind, row.scope_id)  # type: ignore[arg-type]
        if scope is not None and scope != found:
            raise InvalidRequest("policyId belongs to another scope than the one given")
        scope = found
    if scope is None:
        raise InvalidRequest("name the scope (scope.kind and its id) or policyId")
    # Visibility first: a policy of a hidden scope looks as absent as the scope itself.
    await resolve_scope(call.actor, scope)
    row = await policies.of_scope(scope)
    evaluator = call.request.app.get(EVALUATOR_KEY)
    live = evaluator.live_evaluation(row.id) if evaluator is not None and row.enabled else None
    return ThresholdsShow(
        scope=scope,
        generated_at=datetime.now(UTC),
        policy=policy_view(row),
        evaluation=evaluation_view(row, live),
    )
