from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0019_volume_backups')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ScheduledTaskRun',
            name='failure_code',
            field=fields.CharField(null=True, max_length=32),
        ),
    ]
