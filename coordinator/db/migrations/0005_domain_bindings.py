from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_monitoring')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DomainBinding',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='domain_bindings', on_delete=OnDelete.CASCADE)),
                ('project_id', fields.CharField(db_index=True, max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('resource', fields.ForeignKeyField('models.Resource', source_field='resource_id', db_constraint=True, to_field='id', related_name='domain_bindings', on_delete=OnDelete.CASCADE)),
                ('server_id', fields.CharField(null=True, max_length=40)),
                ('destination_id', fields.CharField(null=True, max_length=40)),
                ('domain_name', fields.CharField(max_length=253)),
                ('path_prefix', fields.CharField(default='/', max_length=200)),
                ('proxy_kind', fields.CharField(default='caddy', max_length=16)),
                ('tls_mode', fields.CharField(default='auto', max_length=16)),
                ('certificate_policy', fields.CharField(default='auto', max_length=16)),
                ('redirect_to', fields.CharField(null=True, max_length=253)),
                ('redirect_status', fields.IntField(null=True)),
                ('status', fields.CharField(default='pending_verification', max_length=24)),
                ('ownership_token', fields.CharField(max_length=64)),
                ('ownership_method', fields.CharField(null=True, max_length=16)),
                ('ownership_confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('dns_observation', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('verification_attempt_count', fields.IntField(default=0)),
                ('latest_verification_attempt_id', fields.CharField(null=True, max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'domain_bindings', 'app': 'models', 'unique_together': (('domain_name', 'path_prefix'),), 'pk_attr': 'id', 'table_description': 'A custom domain (plus optional path prefix) routed to a resource: issue 15, first step.'},
            bases=['Model'],
        ),
    ]
