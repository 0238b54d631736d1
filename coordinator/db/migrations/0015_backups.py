from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0014_organizations')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DependencyBackup',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('dependency_resource_id', fields.CharField(db_index=True, max_length=40)),
                ('server_id', fields.CharField(max_length=40)),
                ('dependency_kind', fields.CharField(max_length=24)),
                ('provider_key', fields.CharField(max_length=40)),
                ('target', fields.CharField(default='coordinator', max_length=24)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('attempt_id', fields.CharField(max_length=40)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('artifact_handle', fields.CharField(null=True, max_length=300)),
                ('size_bytes', fields.BigIntField(null=True)),
                ('plain_bytes', fields.BigIntField(null=True)),
                ('sha256', fields.CharField(null=True, max_length=64)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failure_code', fields.CharField(null=True, max_length=64)),
                ('failure_message', fields.CharField(null=True, max_length=2000)),
                ('restore_attempt_id', fields.CharField(null=True, max_length=40)),
                ('restore_status', fields.CharField(null=True, max_length=16)),
                ('restore_requested_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('restore_completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('restore_failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('restore_failure_code', fields.CharField(null=True, max_length=64)),
                ('restore_failure_message', fields.CharField(null=True, max_length=2000)),
                ('verification_status', fields.CharField(null=True, max_length=16)),
                ('verification_requested_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('verified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('verification_tables', fields.IntField(null=True)),
                ('verification_rows', fields.BigIntField(null=True)),
                ('verification_message', fields.CharField(null=True, max_length=2000)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'dependency_backups', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One backup of a dependency resource: an encrypted artifact in a target (issue 16).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DependencyBackupPolicy',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('dependency_resource_id', fields.CharField(unique=True, max_length=40)),
                ('version', fields.IntField(default=1)),
                ('provider_key', fields.CharField(max_length=40)),
                ('schedule_interval_hours', fields.IntField()),
                ('retention_days', fields.IntField()),
                ('keep_count', fields.IntField(null=True)),
                ('retry_on_failure', fields.BooleanField(default=True)),
                ('enabled', fields.BooleanField(default=True)),
                ('last_run_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('next_run_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('last_backup_id', fields.CharField(null=True, max_length=40)),
                ('retried_backup_id', fields.CharField(null=True, max_length=40)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'dependency_backup_policies', 'app': 'models', 'pk_attr': 'id', 'table_description': 'When to back up one dependency resource and how long to keep its backups (one policy per'},
            bases=['Model'],
        ),
    ]
