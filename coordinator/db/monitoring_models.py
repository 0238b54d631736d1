"""Tortoise models for runtime monitoring: raw samples, rollups, thresholds, job watermarks."""

from tortoise import Tortoise, fields
from tortoise.models import Model


class RuntimeSample(Model):
    """One agent sample as received (raw, kept for the raw retention window)

    ``id`` increases in arrival order, which the rollup job uses as its watermark.
    """

    id = fields.BigIntField(primary_key=True)
    sample_id = fields.CharField(max_length=64, unique=True)
    server_id = fields.CharField(max_length=40)
    sequence = fields.BigIntField()
    observed_at = fields.DatetimeField()
    received_at = fields.DatetimeField()
    interval_seconds = fields.FloatField()
    totals = fields.JSONField[dict[str, object]]()
    mounts = fields.JSONField[list[dict[str, object]]]()
    containers = fields.JSONField[list[dict[str, object]]]()
    warnings = fields.JSONField[list[str]]()

    class Meta:
        table = "runtime_samples"
        indexes = (("server_id", "observed_at"), ("observed_at",))


class SampleRollup(Model):
    """Aggregated samples of one scope over one bucket (five-minute or hour)

    ``sums`` and ``maxima`` map metric paths such as ``cpu.busyPercent`` to numbers, so
    averages are ``sums / sample_count``. A server scope row has ``scope_id == server_id``.
    """

    id = fields.BigIntField(primary_key=True)
    bucket = fields.CharField(max_length=16)
    bucket_start = fields.DatetimeField()
    scope_kind = fields.CharField(max_length=16)
    scope_id = fields.CharField(max_length=40)
    server_id = fields.CharField(max_length=40)
    sample_count = fields.IntField()
    sums = fields.JSONField[dict[str, float]]()
    maxima = fields.JSONField[dict[str, float]]()

    class Meta:
        table = "runtime_sample_rollups"
        unique_together = (("bucket", "scope_kind", "scope_id", "server_id", "bucket_start"),)
        indexes = (("scope_kind", "bucket", "bucket_start"),)


def sums_number_sql(path: str) -> str:
    """SQL for ``SampleRollup.sums[path]`` as a number (``path`` is a metric path from code,
    never from input)."""
    if Tortoise.get_connection("default").capabilities.dialect == "sqlite":
        return f'json_extract("sums", \'$."{path}"\')'
    return f"(\"sums\"->>'{path}')::double precision"


class MonitoringWatermark(Model):
    """Progress of a background monitoring job (rollups, retention), kept across restarts."""

    name = fields.CharField(primary_key=True, max_length=64)
    position = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "monitoring_watermarks"


class ThresholdPolicy(Model):
    """Threshold rules for one scope and the last evaluation (non-enforcing)

    The webhook secret is sealed with the keyring like any secret. ``evaluation`` holds the
    evaluation state including the per-rule streaks that keep it from flapping.
    """

    id = fields.CharField(primary_key=True, max_length=40)
    scope_kind = fields.CharField(max_length=16)
    scope_id = fields.CharField(max_length=40)
    rules = fields.JSONField[list[dict[str, object]]]()
    enabled = fields.BooleanField(default=True)
    webhook_url = fields.CharField(max_length=2000, null=True)
    webhook_secret_sealed = fields.TextField(null=True)
    evaluation = fields.JSONField[dict[str, object]](null=True)
    updated_at = fields.DatetimeField()
    updated_by_actor_id = fields.CharField(max_length=40)
    updated_by_actor_kind = fields.CharField(max_length=32)

    class Meta:
        table = "runtime_threshold_policies"
        unique_together = (("scope_kind", "scope_id"),)
