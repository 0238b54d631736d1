from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0017_dns01')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ScheduledTask',
            name='execution_mode',
            field=fields.CharField(default='fresh-container', max_length=16),
        ),
    ]
