from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0024_volume_backup_verification')]

    initial = False

    operations = [
        ops.AddField(
            model_name='DependencyBackupPolicy',
            name='verify_after_backup',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='StorageVolumeBackupPolicy',
            name='verify_after_backup',
            field=fields.BooleanField(default=False),
        ),
    ]
