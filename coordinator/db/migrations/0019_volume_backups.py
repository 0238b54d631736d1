from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0018_task_exec')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StorageVolumeBackup',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('storage_volume_id', fields.CharField(db_index=True, max_length=40)),
                ('server_id', fields.CharField(max_length=40)),
                ('target', fields.CharField(default='coordinator', max_length=24)),
                ('stop_resource', fields.BooleanField(default=False)),
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
                ('restore_target_volume_id', fields.CharField(null=True, max_length=40)),
                ('restore_status', fields.CharField(null=True, max_length=16)),
                ('restore_requested_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('restore_completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('restore_failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('restore_failure_code', fields.CharField(null=True, max_length=64)),
                ('restore_failure_message', fields.CharField(null=True, max_length=2000)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'storage_volume_backups', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One backup of a Docker named volume: a tar archive encrypted on the coordinator.'},
            bases=['Model'],
        ),
    ]
