from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0011_accounts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ScheduledTask',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('resource_id', fields.CharField(db_index=True, max_length=40)),
                ('schedule', fields.CharField(max_length=200)),
                ('timezone', fields.CharField(default='UTC', max_length=64)),
                ('command_intent', fields.TextField(unique=False)),
                ('timeout_seconds', fields.IntField()),
                ('retry_limit', fields.IntField(default=0)),
                ('concurrency_policy', fields.CharField(default='forbid', max_length=16)),
                ('missed_run_policy', fields.CharField(default='run-once', max_length=16)),
                ('status', fields.CharField(default='enabled', max_length=16)),
                ('ad_hoc', fields.BooleanField(default=False)),
                ('next_slot_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'scheduled_tasks', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A resource-owned command on a cron schedule, with its next slot in UTC (``next_slot_at``).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ScheduledTaskRun',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('task_id', fields.CharField(db_index=True, max_length=40)),
                ('resource_id', fields.CharField(db_index=True, max_length=40)),
                ('server_id', fields.CharField(null=True, max_length=40)),
                ('deployment_id', fields.CharField(null=True, max_length=40)),
                ('trigger_kind', fields.CharField(max_length=16)),
                ('slot_key', fields.CharField(max_length=64)),
                ('slot_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempt', fields.IntField(default=0)),
                ('status', fields.CharField(default='accepted', db_index=True, max_length=16)),
                ('skipped_reason', fields.CharField(null=True, max_length=64)),
                ('not_before', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('dispatched_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('stop_requested_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('exit_code', fields.IntField(null=True)),
                ('failure_summary', fields.TextField(null=True, unique=False)),
                ('log_count', fields.IntField(default=0)),
            ],
            options={'table': 'scheduled_task_runs', 'app': 'models', 'unique_together': (('task_id', 'slot_key', 'attempt'),), 'pk_attr': 'id', 'table_description': 'One attempt of a task: the slot it belongs to is recorded before it is dispatched, and'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ScheduledTaskRunLog',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('run_id', fields.CharField(max_length=40)),
                ('sequence', fields.IntField()),
                ('timestamp', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('stream', fields.CharField(max_length=8)),
                ('message', fields.TextField(unique=False)),
            ],
            options={'table': 'scheduled_task_run_logs', 'app': 'models', 'unique_together': (('run_id', 'sequence'),), 'pk_attr': 'id', 'table_description': "One line of a run's output (secrets already masked), numbered from 1 per run."},
            bases=['Model'],
        ),
    ]
