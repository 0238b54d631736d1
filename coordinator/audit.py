"""Audit trail: one append-only row per mutation, with secrets redacted before storage."""

from datetime import UTC, datetime
from typing import Any, Final

from coordinator.auth import Principal
from coordinator.db import models
from coordinator.ids import new_id

# Keys whose values never reach the audit log, whatever the caller passes.
_SECRET_KEYS: Final = frozenset(
    {"token", "apitoken", "jointoken", "secret", "password", "value", "privatekey", "signature"}
)


def redact(payload: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Return a copy of ``payload`` with secret-looking keys replaced, and the keys replaced."""
    clean: dict[str, Any] = {}
    redacted: list[str] = []
    for key, value in payload.items():
        if key.lower().replace("_", "") in _SECRET_KEYS:
            clean[key] = "****"
            redacted.append(key)
        elif isinstance(value, dict):
            clean[key], inner = redact(value)
            redacted.extend(f"{key}.{k}" for k in inner)
        else:
            clean[key] = value
    return clean, redacted


async def record(
    *,
    actor: Principal | None,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str | None,
    payload: dict[str, Any] | None = None,
    request_id: str | None = None,
    actor_kind: str | None = None,
    actor_id: str | None = None,
    organization_id: str | None = None,
) -> None:
    """Append one audit event; call inside the mutation's transaction so both land or neither."""
    clean, redacted = redact(payload or {})
    if redacted:
        clean["redactedFields"] = redacted
    _ = await models.AuditEvent.create(
        id=new_id("aud"),
        organization_id=organization_id or (actor.organization_id if actor else None),
        actor_kind=actor_kind or (actor.kind if actor else "system"),
        actor_id=actor_id or (actor.actor_id if actor else None),
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        payload=clean,
        request_id=request_id,
        occurred_at=datetime.now(UTC),
    )
