"""Threshold rules: the metric catalogue, comparators, rule validation, and one evaluation step
(pure functions; ``thresholds.py`` runs them over incoming samples)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Literal

from coordinator.monitoring.usage import (
    TotalsMap,
)

State = Literal["ok", "warning", "critical"]
Comparator = Literal["greater-than-or-equal", "less-than-or-equal", "greater-than", "less-than"]
SEVERITY_RANK: Final[dict[str, int]] = {"ok": 0, "warning": 1, "critical": 2}
RANKED_STATES: Final[tuple[State, ...]] = ("ok", "warning", "critical")
# How many consecutive samples must agree before a rule changes state.
CONFIRMING_SAMPLES: Final = 2
# What container-scope rules can read (the ``container_totals`` figures), and how often a running
# sum over servers is recomputed from its parts.
SUMMED_METRICS: Final = (
    ("cpu", "containerCpuPercent"),
    ("memory", "containerUsedBytes"),
    ("disk", "attributedBytes"),
    ("network", "rxBytes"),
    ("network", "txBytes"),
    ("containers", "count"),
)
# The stored-row (camelCase) key of each container scope's id, as ``AttributionCheck`` reads it.
LABEL_KEY: Final = {
    "project": "projectId",
    "environment": "environmentId",
    "resource": "resourceId",
    "deployment": "deploymentId",
}

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


def rule_states(evaluation: dict[str, Any] | None) -> dict[str, str]:
    """Each rule's state in a stored evaluation (streaks and values left out)."""
    rules: dict[str, Any] = (evaluation or {}).get("rules") or {}
    return {rule_id: str(kept.get("state", "ok")) for rule_id, kept in rules.items()}
