from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0022_backup_target_dirs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StorageVolumeBackupPolicy',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('storage_volume_id', fields.CharField(unique=True, max_length=40)),
                ('version', fields.IntField(default=1)),
                ('schedule_interval_hours', fields.IntField()),
                ('retention_days', fields.IntField()),
                ('keep_count', fields.IntField(null=True)),
                ('retry_on_failure', fields.BooleanField(default=True)),
                ('enabled', fields.BooleanField(default=True)),
                ('stop_resource', fields.BooleanField(default=False)),
                ('last_run_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('next_run_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('last_backup_id', fields.CharField(null=True, max_length=40)),
                ('retried_backup_id', fields.CharField(null=True, max_length=40)),
                ('backup_target_id', fields.CharField(null=True, max_length=40)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'storage_volume_backup_policies', 'app': 'models', 'pk_attr': 'id', 'table_description': 'When to back up one named volume and how long to keep its backups (one policy per'},
            bases=['Model'],
        ),
    ]
