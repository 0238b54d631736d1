from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_domain_bindings')]

    initial = False

    operations = [
        ops.AddField(
            model_name='DomainBinding',
            name='proxy_readiness',
            field=fields.CharField(default='not-ready', max_length=16),
        ),
    ]
