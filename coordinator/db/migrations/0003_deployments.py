from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_projects_environments_resources')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ArchiveDownloadToken',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('archive_id', fields.CharField(db_index=True, max_length=40)),
                ('server_id', fields.CharField(max_length=40)),
                ('deployment_id', fields.CharField(max_length=40)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'archive_download_tokens', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Short-lived credential that lets one server fetch one archive for one deployment.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Deployment',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(db_index=True, max_length=40)),
                ('environment_id', fields.CharField(db_index=True, max_length=40)),
                ('resource_id', fields.CharField(db_index=True, max_length=40)),
                ('server_id', fields.CharField(db_index=True, max_length=40)),
                ('status', fields.CharField(default='created', db_index=True, max_length=24)),
                ('trigger_kind', fields.CharField(default='create', max_length=24)),
                ('source_deployment_id', fields.CharField(null=True, max_length=40)),
                ('rollback_of_deployment_id', fields.CharField(null=True, max_length=40)),
                ('rollback_candidate_deployment_id', fields.CharField(null=True, max_length=40)),
                ('runtime_plan', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('environment_snapshot', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('artifact', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('plan_sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('plan_acked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancel_requested_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('error_code', fields.CharField(null=True, max_length=64)),
                ('error_message', fields.TextField(null=True, unique=False)),
                ('event_count', fields.IntField(default=0)),
                ('log_count', fields.IntField(default=0)),
                ('created_by', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('archived_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'deployments', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One attempt to run a resource on a server: a durable job with an immutable plan snapshot.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DeploymentEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('deployment_id', fields.CharField(max_length=40)),
                ('sequence', fields.IntField()),
                ('emitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('source', fields.CharField(default='domain-event', max_length=24)),
                ('event_type', fields.CharField(max_length=64)),
                ('phase', fields.CharField(max_length=24)),
                ('status', fields.CharField(max_length=24)),
                ('retriable', fields.BooleanField(default=False)),
                ('summary', fields.TextField(unique=False)),
            ],
            options={'table': 'deployment_events', 'app': 'models', 'unique_together': (('deployment_id', 'sequence'),), 'pk_attr': 'id', 'table_description': 'Timeline entry of a deployment, numbered from 1 without gaps per deployment.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DeploymentLog',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('deployment_id', fields.CharField(max_length=40)),
                ('sequence', fields.IntField()),
                ('timestamp', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('source', fields.CharField(default='berth', max_length=24)),
                ('phase', fields.CharField(max_length=24)),
                ('level', fields.CharField(max_length=8)),
                ('stream', fields.CharField(default='system', max_length=8)),
                ('message', fields.TextField(unique=False)),
                ('masked', fields.BooleanField(default=False)),
                ('agent_sequence', fields.IntField(null=True)),
            ],
            options={'table': 'deployment_logs', 'app': 'models', 'unique_together': (('deployment_id', 'sequence'), ('deployment_id', 'agent_sequence')), 'pk_attr': 'id', 'table_description': 'Pull, build and start output of a deployment, one row per line, secrets already masked.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SourceArchive',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('resource_id', fields.CharField(db_index=True, max_length=40)),
                ('sha256', fields.CharField(max_length=64)),
                ('size_bytes', fields.BigIntField()),
                ('file_count', fields.IntField(default=0)),
                ('locator', fields.CharField(null=True, max_length=500)),
                ('created_by', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'source_archives', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An uploaded source folder (gzip tar) a resource builds from, stored under the data dir.'},
            bases=['Model'],
        ),
    ]
