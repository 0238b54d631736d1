from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0021_backup_targets')]

    initial = False

    operations = [
        ops.AddField(
            model_name='BackupTarget',
            name='server_id',
            field=fields.CharField(null=True, max_length=40),
        ),
        ops.AddField(
            model_name='BackupTarget',
            name='path',
            field=fields.CharField(null=True, max_length=500),
        ),
    ]
