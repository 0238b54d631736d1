from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0023_volume_backup_policies')]

    initial = False

    operations = [
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='manifest_entries',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='manifest_file_bytes',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='manifest_files',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='manifest_paths_sha256',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='verification_file_bytes',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='verification_files',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='verification_message',
            field=fields.CharField(null=True, max_length=2000),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='verification_requested_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='verification_status',
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name='StorageVolumeBackup',
            name='verified_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
