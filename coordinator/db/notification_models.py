"""Issue 19 models: notification subscriptions and outbox, retention defaults, maintenance runs."""

from tortoise import fields
from tortoise.models import Model


class NotificationSubscription(Model):
    """Who is told about which events, over which channel (secrets sealed with the Keyring)."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    name = fields.CharField(max_length=120)
    # webhook | slack | discord | email (coordinator/notifications/channels.py)
    channel = fields.CharField(max_length=16)
    events = fields.JSONField[list[str]]()
    enabled = fields.BooleanField(default=True)
    url = fields.CharField(max_length=2000, null=True)
    secret_sealed = fields.TextField(null=True)
    # E-mail: recipients, sender and the SMTP relay (its password sealed in secret_sealed).
    email = fields.JSONField[dict[str, object]](null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    updated_by_actor_id = fields.CharField(max_length=64, null=True)
    updated_by_actor_kind = fields.CharField(max_length=32)

    class Meta:
        table = "notification_subscriptions"


class NotificationDelivery(Model):
    """One event to one subscription: queued, attempted with backoff, and its attempts' log."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    subscription_id = fields.CharField(max_length=40, db_index=True)
    # Deduplicates an event published twice (a replayed deployment result, a restart).
    event_id = fields.CharField(max_length=120)
    event_type = fields.CharField(max_length=64)
    payload = fields.JSONField[dict[str, object]]()
    # pending | retry-scheduled | succeeded | failed | canceled | dead-lettered
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    attempt_count = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True, db_index=True)
    last_status_code = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    error_code = fields.CharField(max_length=64, null=True)
    attempts = fields.JSONField[list[dict[str, object]]]()
    retry_of_id = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notification_deliveries"
        unique_together = (("subscription_id", "event_id"),)


class RetentionDefault(Model):
    """How long one organization keeps one history category, and whether the scheduled prune
    acts on it (coordinator/retention/)."""

    id = fields.CharField(primary_key=True, max_length=40)
    scope = fields.CharField(max_length=16, default="organization")
    organization_id = fields.CharField(max_length=40)
    category = fields.CharField(max_length=40)
    retention_days = fields.IntField()
    dry_run_scheduling_enabled = fields.BooleanField(default=True)
    destructive_scheduling_enabled = fields.BooleanField(default=False)
    enabled = fields.BooleanField(default=True)
    # The scheduled prune's last pass over this policy: {ranAt, dryRun, matchedCount, ...}.
    last_run = fields.JSONField[dict[str, object]](null=True)
    updated_at = fields.DatetimeField()
    updated_by_actor_id = fields.CharField(max_length=64, null=True)
    updated_by_actor_kind = fields.CharField(max_length=32)

    class Meta:
        table = "retention_defaults"
        unique_together = (("scope", "organization_id", "category"),)


class MaintenanceRun(Model):
    """One run of a maintenance job (source-archive pruning, a capacity prune) for the operator
    work ledger (coordinator/work_runs.py)."""

    id = fields.CharField(primary_key=True, max_length=40)
    # None: a coordinator-wide run (archive pruning spans every organization).
    organization_id = fields.CharField(max_length=40, null=True, db_index=True)
    operation_key = fields.CharField(max_length=64)
    server_id = fields.CharField(max_length=40, null=True)
    status = fields.CharField(max_length=16, db_index=True)
    started_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    error_code = fields.CharField(max_length=64, null=True)
    error_message = fields.TextField(null=True)
    details = fields.JSONField[dict[str, object]]()

    class Meta:
        table = "maintenance_runs"
