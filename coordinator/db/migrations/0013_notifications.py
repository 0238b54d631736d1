from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0012_scheduled_tasks')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MaintenanceRun',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(null=True, db_index=True, max_length=40)),
                ('operation_key', fields.CharField(max_length=64)),
                ('server_id', fields.CharField(null=True, max_length=40)),
                ('status', fields.CharField(db_index=True, max_length=16)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('error_code', fields.CharField(null=True, max_length=64)),
                ('error_message', fields.TextField(null=True, unique=False)),
                ('details', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'maintenance_runs', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One run of a maintenance job (source-archive pruning, a capacity prune) for the operator'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='NotificationDelivery',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('subscription_id', fields.CharField(db_index=True, max_length=40)),
                ('event_id', fields.CharField(max_length=120)),
                ('event_type', fields.CharField(max_length=64)),
                ('payload', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('status', fields.CharField(default='pending', db_index=True, max_length=16)),
                ('attempt_count', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('last_status_code', fields.IntField(null=True)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('error_code', fields.CharField(null=True, max_length=64)),
                ('attempts', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('retry_of_id', fields.CharField(null=True, max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notification_deliveries', 'app': 'models', 'unique_together': (('subscription_id', 'event_id'),), 'pk_attr': 'id', 'table_description': "One event to one subscription: queued, attempted with backoff, and its attempts' log."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='NotificationSubscription',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=120)),
                ('channel', fields.CharField(max_length=16)),
                ('events', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('enabled', fields.BooleanField(default=True)),
                ('url', fields.CharField(null=True, max_length=2000)),
                ('secret_sealed', fields.TextField(null=True, unique=False)),
                ('email', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_by_actor_id', fields.CharField(null=True, max_length=64)),
                ('updated_by_actor_kind', fields.CharField(max_length=32)),
            ],
            options={'table': 'notification_subscriptions', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Who is told about which events, over which channel (secrets sealed with the Keyring).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RetentionDefault',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('scope', fields.CharField(default='organization', max_length=16)),
                ('organization_id', fields.CharField(max_length=40)),
                ('category', fields.CharField(max_length=40)),
                ('retention_days', fields.IntField()),
                ('dry_run_scheduling_enabled', fields.BooleanField(default=True)),
                ('destructive_scheduling_enabled', fields.BooleanField(default=False)),
                ('enabled', fields.BooleanField(default=True)),
                ('last_run', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_by_actor_id', fields.CharField(null=True, max_length=64)),
                ('updated_by_actor_kind', fields.CharField(max_length=32)),
            ],
            options={'table': 'retention_defaults', 'app': 'models', 'unique_together': (('scope', 'organization_id', 'category'),), 'pk_attr': 'id', 'table_description': 'How long one organization keeps one history category, and whether the scheduled prune'},
            bases=['Model'],
        ),
    ]
