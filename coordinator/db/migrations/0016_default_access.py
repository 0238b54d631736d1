from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0015_backups')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DefaultAccessPolicy',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('scope_key', fields.CharField(max_length=60)),
                ('scope_kind', fields.CharField(max_length=24)),
                ('server_id', fields.CharField(null=True, max_length=40)),
                ('mode', fields.CharField(max_length=16)),
                ('base_domain', fields.CharField(null=True, max_length=253)),
                ('tls_mode', fields.CharField(default='on-demand', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'default_access_policies', 'app': 'models', 'unique_together': (('organization_id', 'scope_key'),), 'pk_attr': 'id', 'table_description': "One organization's policy for the whole system (``scope_key`` ``system``) or for one of"},
            bases=['Model'],
        ),
    ]
