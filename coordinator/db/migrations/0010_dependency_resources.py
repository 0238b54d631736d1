from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0009_storage_volumes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DependencyBinding',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('resource_id', fields.CharField(db_index=True, max_length=40)),
                ('dependency_resource_id', fields.CharField(db_index=True, max_length=40)),
                ('target_name', fields.CharField(max_length=100)),
                ('status', fields.CharField(default='active', max_length=16)),
                ('secret_version', fields.IntField(default=1)),
                ('rotated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('previous_secret_version', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('removed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'dependency_bindings', 'app': 'models', 'pk_attr': 'id', 'table_description': "A dependency resource injected into a resource's deployments as env ``target_name``."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DependencyProvisioningPlan',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('server_id', fields.CharField(null=True, max_length=40)),
                ('kind', fields.CharField(max_length=24)),
                ('name', fields.CharField(max_length=100)),
                ('status', fields.CharField(default='planned', max_length=16)),
                ('summary', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('accepted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('dependency_resource_id', fields.CharField(null=True, max_length=40)),
                ('failure_code', fields.CharField(null=True, max_length=64)),
                ('failure_message', fields.CharField(null=True, max_length=2000)),
            ],
            options={'table': 'dependency_provisioning_plans', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A planned provisioning: nothing runs until it is accepted (``acknowledgeMutation``).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DependencyResource',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization_id', fields.CharField(db_index=True, max_length=40)),
                ('project_id', fields.CharField(max_length=40)),
                ('environment_id', fields.CharField(max_length=40)),
                ('server_id', fields.CharField(null=True, max_length=40)),
                ('name', fields.CharField(max_length=100)),
                ('slug', fields.CharField(max_length=100)),
                ('kind', fields.CharField(max_length=24)),
                ('source_mode', fields.CharField(max_length=24)),
                ('provider_key', fields.CharField(max_length=40)),
                ('description', fields.CharField(default='', max_length=500)),
                ('lifecycle_status', fields.CharField(default='provisioning', max_length=16)),
                ('image', fields.CharField(null=True, max_length=512)),
                ('host', fields.CharField(max_length=253)),
                ('port', fields.IntField()),
                ('database_name', fields.CharField(null=True, max_length=100)),
                ('username', fields.CharField(null=True, max_length=100)),
                ('sealed_connection_url', fields.TextField(unique=False)),
                ('secret_version', fields.IntField(default=1)),
                ('publish_port', fields.BooleanField(default=False)),
                ('host_port', fields.IntField(null=True)),
                ('cpus', fields.FloatField(null=True)),
                ('memory_bytes', fields.BigIntField(null=True)),
                ('realization_status', fields.CharField(default='pending', max_length=16)),
                ('attempt_id', fields.CharField(null=True, max_length=40)),
                ('attempted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('container_id', fields.CharField(null=True, max_length=80)),
                ('realized_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failure_code', fields.CharField(null=True, max_length=64)),
                ('failure_message', fields.CharField(null=True, max_length=2000)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'dependency_resources', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A database a resource can bind: run by Berth on a server, or imported by URL (issue 16)'},
            bases=['Model'],
        ),
    ]
