"""Tortoise models for scheduled tasks: definitions, run attempts (one per slot and attempt) and
run output, kept apart from deployment and runtime logs."""

from tortoise import fields
from tortoise.models import Model


class ScheduledTask(Model):
    """A resource-owned command on a cron schedule, with its next slot in UTC (``next_slot_at``)."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40)
    environment_id = fields.CharField(max_length=40)
    resource_id = fields.CharField(max_length=40, db_index=True)
    schedule = fields.CharField(max_length=200)
    timezone = fields.CharField(max_length=64, default="UTC")
    command_intent = fields.TextField()
    timeout_seconds = fields.IntField()
    retry_limit = fields.IntField(default=0)
    concurrency_policy = fields.CharField(max_length=16, default="forbid")
    missed_run_policy = fields.CharField(max_length=16, default="run-once")
    status = fields.CharField(max_length=16, default="enabled")
    # One-off tasks (``berth run``) have no schedule and never fire on their own.
    ad_hoc = fields.BooleanField(default=False)
    # ``fresh-container`` (a new container from the deployment's image) or ``exec`` (docker
    # exec in the resource's running container).
    execution_mode = fields.CharField(max_length=16, default="fresh-container")
    next_slot_at = fields.DatetimeField(null=True, db_index=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "scheduled_tasks"


class ScheduledTaskRun(Model):
    """One attempt of a task: the slot it belongs to is recorded before it is dispatched, and
    ``(task_id, slot_key, attempt)`` is unique, so a slot fires at most once even when two
    coordinators (or one restarted mid-tick) try."""

    id = fields.CharField(primary_key=True, max_length=40)
    organization_id = fields.CharField(max_length=40, db_index=True)
    project_id = fields.CharField(max_length=40)
    environment_id = fields.CharField(max_length=40)
    task_id = fields.CharField(max_length=40, db_index=True)
    resource_id = fields.CharField(max_length=40, db_index=True)
    server_id = fields.CharField(max_length=40, null=True)
    deployment_id = fields.CharField(max_length=40, null=True)
    trigger_kind = fields.CharField(max_length=16)
    # The slot as an ISO UTC string, or ``manual:<run id>`` for run-now (unique either way).
    slot_key = fields.CharField(max_length=64)
    slot_at = fields.DatetimeField(null=True)
    attempt = fields.IntField(default=0)
    status = fields.CharField(max_length=16, default="accepted", db_index=True)
    skipped_reason = fields.CharField(max_length=64, null=True)
    # When an accepted run may be dispatched (a retry waits out its backoff).
    not_before = fields.DatetimeField()
    dispatched_at = fields.DatetimeField(null=True)
    stop_requested_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    exit_code = fields.IntField(null=True)
    failure_summary = fields.TextField(null=True)
    # ``TaskRunFailureCode`` of a failed run (null before migration 0020: derived when read).
    failure_code = fields.CharField(max_length=32, null=True)
    log_count = fields.IntField(default=0)

    class Meta:
        table = "scheduled_task_runs"
        unique_together = (("task_id", "slot_key", "attempt"),)


class ScheduledTaskRunLog(Model):
    """One line of a run's output (secrets already masked), numbered from 1 per run."""

    id = fields.BigIntField(primary_key=True)
    run_id = fields.CharField(max_length=40)
    sequence = fields.IntField()
    timestamp = fields.DatetimeField()
    stream = fields.CharField(max_length=8)
    message = fields.TextField()

    class Meta:
        table = "scheduled_task_run_logs"
        unique_together = (("run_id", "sequence"),)
