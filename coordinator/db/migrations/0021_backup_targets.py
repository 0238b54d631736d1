from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0020_task_run_failure_code')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BackupTarget',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=100)),
                ('kind', fields.CharField(max_length=24)),
                ('endpoint_url', fields.CharField(max_length=500)),
                ('region', fields.CharField(max_length=64)),
                ('bucket', fields.CharField(max_length=63)),
                ('prefix', fields.CharField(default='', max_length=200)),
                ('access_key_id', fields.CharField(max_length=200)),
                ('secret_access_key_encrypted', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'backup_targets', 'app': 'models', 'unique_together': (('organization_id', 'name'),), 'pk_attr': 'id', 'table_description': 'An S3-compatible bucket: endpoint, bucket, prefix, and a secret key sealed by the Keyring'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='DependencyBackup',
            name='backup_target_id',
            field=fields.CharField(null=True, max_length=40),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='backup_target_id',
            field=fields.CharField(null=True, max_length=40),
        ),
        ops.AddField(
            model_name='DependencyBackupPolicy',
            name='backup_target_id',
            field=fields.CharField(null=True, max_length=40),
        ),
    ]
