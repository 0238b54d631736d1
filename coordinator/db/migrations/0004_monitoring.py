from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_deployments')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MonitoringWatermark',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('position', fields.BigIntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'monitoring_watermarks', 'app': 'models', 'pk_attr': 'name', 'table_description': 'Progress of a background monitoring job (rollups, retention), kept across restarts.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RuntimeSample',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('sample_id', fields.CharField(unique=True, max_length=64)),
                ('server_id', fields.CharField(max_length=40)),
                ('sequence', fields.BigIntField()),
                ('observed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('interval_seconds', fields.FloatField()),
                ('totals', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('mounts', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('containers', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('warnings', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'runtime_samples', 'app': 'models', 'indexes': [Index(fields=['server_id', 'observed_at']), Index(fields=['observed_at'])], 'pk_attr': 'id', 'table_description': 'One agent sample as received (raw, kept for the raw retention window)'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SampleRollup',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bucket', fields.CharField(max_length=16)),
                ('bucket_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('scope_kind', fields.CharField(max_length=16)),
                ('scope_id', fields.CharField(max_length=40)),
                ('server_id', fields.CharField(max_length=40)),
                ('sample_count', fields.IntField()),
                ('sums', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('maxima', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'runtime_sample_rollups', 'app': 'models', 'unique_together': (('bucket', 'scope_kind', 'scope_id', 'server_id', 'bucket_start'),), 'indexes': [Index(fields=['scope_kind', 'bucket', 'bucket_start'])], 'pk_attr': 'id', 'table_description': 'Aggregated samples of one scope over one bucket (five-minute or hour)'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ThresholdPolicy',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('scope_kind', fields.CharField(max_length=16)),
                ('scope_id', fields.CharField(max_length=40)),
                ('rules', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('enabled', fields.BooleanField(default=True)),
                ('webhook_url', fields.CharField(null=True, max_length=2000)),
                ('webhook_secret_sealed', fields.TextField(null=True, unique=False)),
                ('evaluation', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_by_actor_id', fields.CharField(max_length=40)),
                ('updated_by_actor_kind', fields.CharField(max_length=32)),
            ],
            options={'table': 'runtime_threshold_policies', 'app': 'models', 'unique_together': (('scope_kind', 'scope_id'),), 'pk_attr': 'id', 'table_description': 'Threshold rules for one scope and the last evaluation (non-enforcing)'},
            bases=['Model'],
        ),
    ]
