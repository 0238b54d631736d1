"""Threshold policies: find one by id or scope, and create or replace a scope's policy."""

from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from coordinator import audit
from coordinator.auth import Principal
from coordinator.db.monitoring_models import ThresholdPolicy
from coordinator.ids import new_id
from coordinator.monitoring.threshold_rules import webhook_binding
from coordinator.monitoring.usage import MonitoringScope
from coordinator.secrets import Keyring
from shared.errors import InvalidRequest, NotFound


async def by_id(policy_id: str) -> ThresholdPolicy:
    """The policy ``policy_id`` (the caller checks it may see its scope), else 404."""
    row = await ThresholdPolicy.get_or_none(id=policy_id)
    if row is None:
        raise NotFound(f"threshold policy {policy_id!r} not found")
    return row


async def of_scope(scope: MonitoringScope) -> ThresholdPolicy:
    """The policy of a scope, else 404."""
    row = await ThresholdPolicy.get_or_none(scope_kind=scope.kind, scope_id=scope.target_id)
    if row is None:
        raise NotFound(f"no threshold policy for {scope.kind} {scope.target_id!r}")
    return row


async def save(
    actor: Principal,
    keyring: Keyring,
    request_id: str,
    organization_id: str,
    scope: MonitoringScope,
    rules: list[dict[str, Any]],
    *,
    enabled: bool,
    webhook_url: str | None,
    webhook_secret: str | None,
) -> ThresholdPolicy:
    """Create or replace the scope's policy (its webhook secret sealed) with an audit event."""
    now = datetime.now(UTC)
    async with in_transaction():
        row = await ThresholdPolicy.get_or_none(scope_kind=scope.kind, scope_id=scope.target_id)
        policy_id = row.id if row else new_id("thp")
        sealed = row.webhook_secret_sealed if row else None
        if webhook_secret is not None:
            sealed = keyring.encrypt(webhook_secret, webhook_binding(policy_id))
        url = webhook_url
        if url is None:
            sealed = None  # no endpoint, no secret kept for it
        elif sealed is None:
            raise InvalidRequest("webhookUrl needs a webhookSecret (16+ characters) to sign with")
        values: dict[str, Any] = {
            "rules": rules,
            "enabled": enabled,
            "webhook_url": url,
            "webhook_secret_sealed": sealed,
            "updated_at": now,
            "updated_by_actor_id": actor.actor_id,
            "updated_by_actor_kind": actor.kind,
        }
        if row is None:
            row = await ThresholdPolicy.create(
                id=policy_id,
                scope_kind=scope.kind,
                scope_id=scope.target_id,
                evaluation=None,
                **values,
            )
        else:
            await ThresholdPolicy.filter(id=row.id).update(**values)
            row = await ThresholdPolicy.get(id=row.id)
        await audit.record(
            actor=actor,
            event_type="runtime-monitoring.thresholds-set",
            aggregate_type="threshold-policy",
            aggregate_id=row.id,
            payload={
                "scope": scope.model_dump(mode="json", by_alias=True, exclude_none=True),
                "rules": rules,
                "enabled": enabled,
                "webhookUrl": url,
                "webhookSecretChanged": webhook_secret is not None,
            },
            request_id=request_id,
            organization_id=organization_id,
        )
    return row
