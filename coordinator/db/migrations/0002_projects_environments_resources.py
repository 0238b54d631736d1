from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Project',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='projects', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('slug', fields.CharField(max_length=100)),
                ('description', fields.CharField(null=True, max_length=2000)),
                ('lifecycle_status', fields.CharField(default='active', max_length=16)),
                ('archived_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('archive_reason', fields.CharField(null=True, max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'projects', 'app': 'models', 'unique_together': (('organization', 'slug'),), 'pk_attr': 'id', 'table_description': 'A group of environments and resources.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Environment',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='environments', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('kind', fields.CharField(default='production', max_length=32)),
                ('parent_environment_id', fields.CharField(null=True, max_length=40)),
                ('lifecycle_status', fields.CharField(default='active', max_length=16)),
                ('locked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lock_reason', fields.CharField(null=True, max_length=500)),
                ('archived_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('archive_reason', fields.CharField(null=True, max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'environments', 'app': 'models', 'unique_together': (('project', 'name'),), 'pk_attr': 'id', 'table_description': 'A named stage of a project (production, staging...) that owns variables.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Resource',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='resources', on_delete=OnDelete.CASCADE)),
                ('environment', fields.ForeignKeyField('models.Environment', source_field='environment_id', db_constraint=True, to_field='id', related_name='resources', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('slug', fields.CharField(max_length=100)),
                ('kind', fields.CharField(default='application', max_length=32)),
                ('description', fields.CharField(null=True, max_length=2000)),
                ('lifecycle_status', fields.CharField(default='active', max_length=16)),
                ('archived_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('source', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('runtime_profile', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('network_profile', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('health_policy', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('access_profile', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'resources', 'app': 'models', 'unique_together': (('environment', 'slug'),), 'pk_attr': 'id', 'table_description': 'A deployable application with its source and runtime, network and health profiles.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Variable',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('owner_kind', fields.CharField(max_length=16)),
                ('owner_id', fields.CharField(db_index=True, max_length=40)),
                ('key', fields.CharField(max_length=255)),
                ('exposure', fields.CharField(default='runtime', max_length=16)),
                ('kind', fields.CharField(default='plain-config', max_length=32)),
                ('is_secret', fields.BooleanField(default=False)),
                ('value', fields.TextField(null=True, unique=False)),
                ('ciphertext', fields.TextField(null=True, unique=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'variables', 'app': 'models', 'unique_together': (('owner_kind', 'owner_id', 'key', 'exposure'),), 'pk_attr': 'id', 'table_description': 'A configuration entry owned by an environment or a resource (secrets encrypted).'},
            bases=['Model'],
        ),
    ]
